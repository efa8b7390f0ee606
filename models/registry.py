"""The model registry: trained models as versions on disk, one of them active.

```
models/                                  (the registry root, e.g. fleetcare-data/models)
  filter_life/
    ACTIVE                               the active version's name
    20261124T154600Z-3f9c2a/
      model.pkl                          the fitted estimator
      meta.json                          data window, feature schema, metrics, params
```

A version is written to a temporary directory and renamed into place, and `ACTIVE` is
replaced atomically, so a reader never sees half a model. The feature schema is kept
with the model: loading it for features of another shape is refused, not mis-scored.
Pickles are only ever read from this registry's own directory, which the engine wrote.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import secrets
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class RegistryError(Exception):
    pass


class UnknownModel(RegistryError):
    pass


class FeatureMismatch(RegistryError):
    pass


@dataclass(frozen=True, slots=True)
class ModelVersion:
    name: str
    version: str
    created_at: str  # ISO time, UTC
    data_start: str  # the training data's window, ISO
    data_end: str
    features: list[str]
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def save(
        self,
        name: str,
        model: object,
        *,
        features: Sequence[str],
        data_start: datetime,
        data_end: datetime,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        activate: bool = True,
        now: datetime | None = None,
    ) -> ModelVersion:
        if not _NAME.match(name):
            raise RegistryError(f"model name {name!r} must match {_NAME.pattern}")
        now = now or datetime.now(UTC)
        version = f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        meta = ModelVersion(
            name=name,
            version=version,
            created_at=now.isoformat(),
            data_start=data_start.isoformat(),
            data_end=data_end.isoformat(),
            features=list(features),
            metrics={k: float(v) for k, v in (metrics or {}).items()},
            params=dict(params or {}),
        )
        home = self.root / name
        home.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=home))
        try:
            with (staging / "model.pkl").open("wb") as f:
                pickle.dump(model, f, protocol=pickle.HIGHEST_PROTOCOL)
            (staging / "meta.json").write_text(json.dumps(asdict(meta), indent=1))
            staging.rename(home / version)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if activate:
            self.activate(name, version)
        return meta

    def versions(self, name: str) -> list[ModelVersion]:
        home = self.root / name
        if not home.is_dir():
            return []
        out = []
        for d in sorted(home.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and (d / "meta.json").exists():
                out.append(ModelVersion(**json.loads((d / "meta.json").read_text())))
        return out

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if d.is_dir() and self.versions(d.name))

    def active(self, name: str) -> ModelVersion | None:
        pointer = self.root / name / "ACTIVE"
        if not pointer.exists():
            return None
        version = pointer.read_text().strip()
        return next((v for v in self.versions(name) if v.version == version), None)

    def activate(self, name: str, version: str) -> None:
        if not any(v.version == version for v in self.versions(name)):
            known = ", ".join(v.version for v in self.versions(name)) or "none"
            raise UnknownModel(f"{name} has no version {version!r}; versions: {known}")
        pointer = self.root / name / "ACTIVE"
        tmp = pointer.with_suffix(".tmp")
        tmp.write_text(version + "\n")
        os.replace(tmp, pointer)

    def load(
        self, name: str, version: str | None = None, *, features: Sequence[str] | None = None
    ) -> tuple[Any, ModelVersion]:
        """The model and its metadata: the active version unless one is named. With
        `features`, refuse a model trained on another feature schema."""
        meta = (
            self.active(name)
            if version is None
            else next((v for v in self.versions(name) if v.version == version), None)
        )
        if meta is None:
            what = "no active version" if version is None else f"no version {version!r}"
            raise UnknownModel(f"model {name!r} has {what}: train it first (`fleetcare train`)")
        if features is not None and list(features) != meta.features:
            raise FeatureMismatch(
                f"{name} {meta.version} was trained on features {meta.features}, "
                f"not {list(features)}: retrain it"
            )
        with (self.root / name / meta.version / "model.pkl").open("rb") as f:
            return pickle.load(f), meta
