"""Detectors follow scikit-learn's estimator contract, keep score and threshold apart,
resist outliers in their training data, and beat chance on a faulty simulated unit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.utils.estimator_checks import parametrize_with_checks

from models.detectors import RobustResidualDetector, score_series


@parametrize_with_checks([RobustResidualDetector()])  # type: ignore[untyped-decorator]
def test_the_scikit_learn_contract(estimator: object, check: object) -> None:
    check(estimator)  # type: ignore[operator]


def test_score_and_learned_threshold_are_apart() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(0, 1, (2000, 2))
    det = RobustResidualDetector(contamination=0.05).fit(train)
    assert np.mean(det.predict(train) == -1) == pytest.approx(0.05, abs=0.01)
    far = np.array([[8.0, 0.0], [0.1, -0.2]])
    np.testing.assert_allclose(det.decision_function(far), det.score_samples(far) - det.offset_)
    assert list(det.predict(far)) == [-1, 1]


def test_outliers_in_the_training_data_barely_move_it() -> None:
    rng = np.random.default_rng(2)
    clean = rng.normal(10, 1, (1000, 1))
    dirty = np.vstack([clean, np.full((50, 1), 60.0)])  # 5 % of a fault already in history
    a, b = RobustResidualDetector().fit(clean), RobustResidualDetector().fit(dirty)
    assert abs(a.center_[0] - b.center_[0]) < 0.2 and abs(a.scale_[0] - b.scale_[0]) < 0.2


def test_bad_contamination_is_refused() -> None:
    with pytest.raises(ValueError, match="share of the training data"):
        RobustResidualDetector(contamination=0.7).fit(np.zeros((5, 1)))


def test_score_series_flags_a_drift_in_a_plain_series() -> None:
    rng = np.random.default_rng(3)
    ts = np.arange(500) * 60_000
    values = rng.normal(0.24, 0.005, 500)  # motor mA per rpm of a healthy fan
    values[400:] += np.linspace(0, 0.1, 100)  # a bearing starts to drag
    values[10] = np.nan
    scores = score_series(ts, values)
    assert np.isnan(scores.score[10]) and not scores.anomalous[10]
    assert scores.anomalous[:400].mean() < 0.05 and scores.anomalous[450:].mean() > 0.9
    # any detector with the scikit-learn outlier API plugs in
    iso = score_series(ts, np.column_stack([values, values * 2]),
                       detector=IsolationForest(random_state=0))  # fmt: skip
    assert iso.anomalous[470:].mean() > 0.8
    with pytest.raises(ValueError, match="timestamps"):
        score_series(ts[:3], values)
