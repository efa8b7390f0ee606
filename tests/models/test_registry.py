"""The model registry round-trips versions, switches the active one atomically, and
refuses a model trained on another feature schema."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.registry import FeatureMismatch, ModelRegistry, RegistryError, UnknownModel

T = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


class Linear:
    """A stand-in estimator: anything picklable is a model to the registry."""

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def predict(self, x: float) -> float:
        return self.slope * x


def test_versions_round_trip_and_the_newest_is_active(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    first = reg.save("filter_life", Linear(2.0), features=["dose", "hours"],
                     data_start=T, data_end=T, metrics={"mae_14d": 1.5}, now=T)  # fmt: skip
    second = reg.save("filter_life", Linear(3.0), features=["dose", "hours"],
                      data_start=T, data_end=T, now=datetime(2026, 11, 25, tzinfo=UTC))  # fmt: skip
    assert [v.version for v in reg.versions("filter_life")] == [first.version, second.version]
    model, meta = reg.load("filter_life")
    assert meta == second and model.predict(2) == 6.0
    reg.activate("filter_life", first.version)
    model, meta = reg.load("filter_life", features=["dose", "hours"])
    assert model.predict(2) == 4.0 and meta.metrics == {"mae_14d": 1.5}
    assert reg.names() == ["filter_life"]


def test_what_cannot_be_loaded_says_why(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(UnknownModel, match="train it first"):
        reg.load("anomaly")
    reg.save("anomaly", Linear(1.0), features=["a"], data_start=T, data_end=T, activate=False)
    with pytest.raises(UnknownModel, match="no active version"):
        reg.load("anomaly")
    with pytest.raises(UnknownModel, match="no version 'nope'"):
        reg.activate("anomaly", "nope")
    (version,) = reg.versions("anomaly")
    reg.activate("anomaly", version.version)
    with pytest.raises(FeatureMismatch, match="retrain"):
        reg.load("anomaly", features=["a", "b"])
    with pytest.raises(RegistryError, match="must match"):
        reg.save("Bad Name", Linear(1.0), features=[], data_start=T, data_end=T)


def test_a_failed_save_leaves_no_half_version(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(Exception):  # noqa: B017 - whatever pickle raises
        reg.save("filter_life", lambda x: x, features=[], data_start=T, data_end=T)
    assert reg.versions("filter_life") == []
    assert [p.name for p in (tmp_path / "filter_life").iterdir()] == []
