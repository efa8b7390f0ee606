"""Anomaly detectors with the score and the learned threshold kept apart, as scikit-learn
does it: `score_samples` (higher is more normal) and `offset_` (the threshold learned from
the training data), `decision_function = score_samples - offset_` (negative: anomalous),
`predict` (-1 anomalous, 1 normal).

`RobustResidualDetector` is the robust-statistics detector: per feature, the median and
the scaled median absolute deviation of the training data; a sample's score is minus its
largest robust z-score, over the features it has (NaN: missing, no evidence). A few
outliers in the training data barely move it (unlike a mean and standard deviation),
which matters when the history it learns from already holds the start of a fault.

`score_series` is the general entry point: any univariate or multivariate series with
timestamps, from the fleet or from elsewhere, scored against a baseline period.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

MAD_TO_SIGMA = 1.4826  # a normal distribution's MAD is 0.6745 sigma


class RobustResidualDetector(OutlierMixin, BaseEstimator):  # type: ignore[misc]
    """Median/MAD detector. `contamination` is the share of the training data taken as
    anomalous when the threshold is learned; `min_scale` keeps a feature that never
    moved in training from turning every later wobble into an infinite score. With
    `tail` (a quantile, e.g. 0.999) each feature is scaled by that quantile of its
    distance from the median instead of the MAD: features with heavy tails then weigh
    no more than the others in the largest z-score."""

    def __init__(
        self, contamination: float = 0.01, min_scale: float = 1e-6, tail: float | None = None
    ) -> None:
        self.contamination = contamination
        self.min_scale = min_scale
        self.tail = tail

    def fit(self, X: ArrayLike, y: Any = None) -> Self:
        if not 0.0 < self.contamination < 0.5:
            raise ValueError(
                f"contamination must be in (0, 0.5), got {self.contamination}: it is the "
                "share of the training data taken as anomalous"
            )
        data = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a feature never seen: NaN
            self.center_ = np.nan_to_num(np.nanmedian(data, axis=0))
            off = np.abs(data - self.center_)
            if self.tail is None:
                spread = MAD_TO_SIGMA * np.nan_to_num(np.nanmedian(off, axis=0))
            else:
                spread = np.nan_to_num(np.nanquantile(off, self.tail, axis=0))
        self.scale_ = np.maximum(spread, self.min_scale)
        self.offset_ = float(np.quantile(self._scores(data), self.contamination))
        return self

    def _scores(self, data: NDArray[np.float64]) -> NDArray[np.float64]:
        z = np.abs(data - self.center_) / self.scale_
        return np.asarray(-np.nan_to_num(z, nan=0.0).max(axis=1))

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Minus the largest robust z-score of each sample: higher is more normal. A
        missing feature (NaN) is no evidence either way."""
        check_is_fitted(self)
        return self._scores(
            validate_data(self, X, dtype=np.float64, reset=False, ensure_all_finite="allow-nan")
        )

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """The score against the learned threshold: negative is anomalous."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: ArrayLike) -> NDArray[np.int_]:
        return np.where(self.decision_function(X) < 0, -1, 1)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


@dataclass(frozen=True, slots=True)
class SeriesScores:
    ts: NDArray[Any]
    score: NDArray[np.float64]  # higher is more normal
    threshold: float  # the learned one: a score below it is anomalous
    anomalous: NDArray[np.bool_]


def score_series(
    ts: ArrayLike,
    values: ArrayLike,
    *,
    baseline: slice | None = None,
    detector: Any = None,
) -> SeriesScores:
    """Score a time series (n samples, one column or several) against a baseline period
    (default: its first half), with any detector that follows the scikit-learn outlier
    API (default: `RobustResidualDetector`). Rows with a missing value score as NaN and
    are not flagged."""
    stamps = np.asarray(ts)
    data = np.asarray(values, dtype=np.float64)
    if data.ndim == 1:
        data = data[:, None]
    if len(stamps) != len(data):
        raise ValueError(f"{len(stamps)} timestamps for {len(data)} samples")
    base = data[baseline if baseline is not None else slice(0, max(2, len(data) // 2))]
    base = base[~np.isnan(base).any(axis=1)]
    if len(base) < 2:
        raise ValueError("the baseline needs at least two complete samples")
    model = detector if detector is not None else RobustResidualDetector()
    model.fit(base)
    complete = ~np.isnan(data).any(axis=1)
    score = np.full(len(data), np.nan)
    score[complete] = model.score_samples(data[complete])
    threshold = float(model.offset_)
    return SeriesScores(stamps, score, threshold, complete & (score < threshold))
