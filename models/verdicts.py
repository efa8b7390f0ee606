"""What a technician's verdict on a job teaches the models: the fault confirmed, or none."""

from __future__ import annotations

NONE = "none"  # the verdict "no fault found", and the classifiers' healthy class


def verdict_kind(outcome: str, confirmed_fault: str | None) -> str | None:
    """What a completed job's verdict teaches: the fault a fix confirmed, NONE when no
    fault was found, None when it says neither (a follow-up, a fix naming no fault)."""
    if outcome == "no_fault_found":
        return NONE
    if outcome == "fixed":
        return confirmed_fault or None
    return None
