"""Reports as CSV: one column per dataclass field, in field order; None is empty."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import fields
from typing import Any


def dataclass_csv(row_type: type[Any], rows: Iterable[Any]) -> str:
    out = io.StringIO()
    names = [f.name for f in fields(row_type)]
    w = csv.writer(out)
    w.writerow(names)
    for r in rows:
        w.writerow(["" if getattr(r, n) is None else getattr(r, n) for n in names])
    return out.getvalue()
