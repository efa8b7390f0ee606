"""docs/model-quality.md under the evaluation protocol: every case side by side, and the
time-to-detection chart (a plain SVG, drawn here so the docs need no plotting library)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from models.evaluation.faults import CURVE_H, FaultQuality, KindQuality, within
from models.evaluation.filter_life import JOB_BELOW_DAYS, PREMATURE_LEFT, TARGETS, StageQuality
from models.evaluation.protocol import CaseResult, Sizes

_STAGES = {
    ("purifier", "main"): "Air purifier filter",
    ("water_purifier", "sediment"): "Water purifier sediment",
    ("water_purifier", "carbon"): "Water purifier carbon",
    ("water_purifier", "ro"): "Water purifier RO membrane",
    ("air_conditioner", "main"): "Air conditioner filter",
}
_TYPES = {
    "purifier": "Air purifier",
    "water_purifier": "Water purifier",
    "air_conditioner": "Air conditioner",
    "dehumidifier": "Dehumidifier",
}
TARGET_F1, TARGET_DELAY_H, TARGET_FALSE = 0.9, 24.0, 1.0


@dataclass(frozen=True)
class Training:
    """What the judged models were trained on, for the report."""

    filter_life: str  # e.g. "2,000 devices × 365 days from 2026-01-01, seed 11, imperfect"
    health: str
    seconds: float


def _n(x: float, spec: str = ".1f") -> str:
    return "–" if not math.isfinite(x) else format(x, spec)


def _p(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:.0f} %"


def _delay(hours: float) -> str:
    if math.isnan(hours):
        return "–"
    if math.isinf(hours):
        return "never"
    return f"{hours / 24:.1f} d"


def protocol_text(sizes: Sizes, results: Sequence[CaseResult] = ()) -> list[str]:
    """The protocol, as the report states it (written before the models are judged)."""
    starts = sorted({r.case.start for r in results})
    when = (
        ", ".join(f"{d:%-d %B %Y}" for d in starts)
        if starts
        else "the first of January, April, July or October 2027"
    )
    rate = (
        f"a {100 * sizes.faulty_share:.0f} % share of devices given one fault"
        if sizes.faulty_share is not None
        else f"{sizes.faults_per_100_device_years:g} faults per 100 device-years"
    )
    return [
        "## The protocol",
        "",
        "Written down before any model was changed; every figure below follows it.",
        "",
        "1. **Training** is what `fleetcare train` does: a simulated fleet from 2026-01-01, as "
        "imperfect as a real one (units off their datasheet, sensor errors, gaps, homes that "
        "change, late installs: [simulator.md](simulator.md)).",
        "2. **Evaluation fleets differ in seed, start month and year**: each case is a fleet of "
        f"another seed starting on {when}, imperfect and (where reported) clean: the clean "
        "figures show what imperfection costs, only the imperfect ones say what a maker's "
        "fleet would see.",
        f"3. **Filter life**: {sizes.devices:,} devices for {sizes.days} days per case. Filters "
        "are replaced the moment they are spent, so every exhaustion's true date is known. "
        "The date error is taken from the scoring pass 14 (and 30, 7) days before each "
        "exhaustion. A unit's first week after its install is left out (its wear state is "
        "new). *Rated* is what the appliance itself would say (rated run hours, litres or "
        "months), turned into days at the unit's **long-run** usage (its mean since first "
        "seen; the weekly mean before it has a week).",
        f"4. **Jobs** replay the built-in rule on every filter life, those still in service "
        f"at the run's end included: a job when the predicted days left fall to "
        f"{JOB_BELOW_DAYS:g} or fewer, the visit booked two days before the predicted date "
        "(at least a day, at most a week after the job opens). An exhaustion is *covered* "
        "only when its job opened at least 3 days ahead **and** the visit came before the "
        f"filter was spent. A job is *premature* when more than {100 * PREMATURE_LEFT:.0f} % "
        "of the filter's life was left at the visit; every job visited within the run "
        "counts. *Late*: the visit came after the filter was spent.",
        f"5. **Faults** come at a realistic rate ({rate}, kind uniform among those the health "
        f"model covers, onset uniform from 12 days after the unit's install to 12 days "
        f"before the end) on {sizes.fault_devices:,} devices for {sizes.fault_days} days per "
        "case, so precision is what a service team would see. An alert starts when the "
        "daily score reaches 1 with a fault named and ends below 0.8. A fault is *detected* "
        "when an alert naming it starts after its onset; an alert naming a fault the device "
        "does not have (yet) is *false*. The **delay is over every fault**, a miss counted "
        "as never detected: the median is *never* when half or more are missed. Healthy "
        "device-days run from the install to the onset (or the end).",
        "",
    ]


def render(
    results: Sequence[CaseResult],
    sizes: Sizes,
    *,
    command: str,
    training: Training,
    chart: str | None = "model-detection.svg",
) -> str:
    cols = [r.case.name for r in results]
    head = "| stage | " + " | ".join(cols) + " |"
    rule = "|---|" + "---:|" * len(cols)
    took = sum(r.seconds for r in results)
    lines = [
        "# Model quality: filter life and faults, judged so they cannot flatter",
        "",
        "Produced by:",
        "",
        "```",
        command,
        "```",
        "",
        f"Models: filter life trained on {training.filter_life}; health on {training.health} "
        f"(training took {training.seconds:.0f} s). Evaluation: {len(results)} cases, "
        f"{took / 60:.0f} min of simulation and scoring in all.",
        "",
        *protocol_text(sizes, results),
        "## Filter life",
        "",
        "### Date error 14 days before each exhaustion: ours / rated life (MAE, days)",
        "",
        head,
        rule,
    ]
    keys = [q.key for q in results[0].stages] if results else []

    def row(key: tuple[str, str], cell: Callable[[StageQuality], str]) -> str:
        cells = []
        for r in results:
            q = next((q for q in r.stages if q.key == key), None)
            cells.append("–" if q is None else cell(q))
        return f"| {_STAGES.get(key, '.'.join(key))} | " + " | ".join(cells) + " |"

    for key in keys:
        lines.append(row(key, lambda q: f"{_n(q.mae[14])} / {_n(q.mae_rated[14])}"))
    lines += [
        "",
        "Exhaustions judged per case: "
        + "; ".join(
            f"{r.case.name}: " + ", ".join(f"{q.exhaustions}" for q in r.stages) for r in results
        )
        + " (stages in the table's order).",
        "",
        "### 30 and 7 days before: ours (MAE, days)",
        "",
        head,
        rule,
    ]
    for key in keys:
        lines.append(row(key, lambda q: f"{_n(q.mae[30])} · {_n(q.mae[7])}"))
    lines += [
        "",
        "### Jobs: covered / premature / late",
        "",
        head,
        rule,
    ]
    for key in keys:
        lines.append(row(key, lambda q: f"{_p(q.covered)} / {_p(q.premature)} / {_p(q.late)}"))
    lines += ["", "### The same jobs opened by rated life: covered / premature", "", head, rule]
    for key in keys:
        lines.append(row(key, lambda q: f"{_p(q.covered_rated)} / {_p(q.premature_rated)}"))
    lines += ["", "### The 80 % band holds the truth", "", head, rule]
    for key in keys:
        lines.append(row(key, lambda q: _p(q.band_coverage)))
    lines += ["", "## Faults", ""]
    lines += _fault_cases(results, lambda r: r.faults)
    if chart:
        lines += [
            "",
            "### Time to detection",
            "",
            f"![The share of every fault named within each time of its onset, per case]({chart})",
            "",
            "The share of every fault named (the right kind) within each time of its onset; a "
            "fault never named stays below the line for good.",
        ]
    noisy = [r for r in results if r.case.noisy] or list(results)
    lines += [
        "",
        f"### Per fault kind, the {'imperfect' if noisy[0].case.noisy else 'clean'} cases together",
        "",
    ]
    lines += _fault_kinds(noisy, lambda r: r.faults)
    general = [r for r in results if r.general is not None]
    if general:
        lines += [
            "",
            "## Faults from data alone: the general detector",
            "",
            "The same fault fleets, and beside each a fleet a quarter its size of the "
            "families known only from their profiles (the dehumidifier, with the generic "
            "fault kinds: a sensor drifting, stuck or stepping, a broken relation, spikes, "
            "dropouts), judged by the general streaming detector alone "
            "([anomaly.md](anomaly.md)): no physics, no fault labels, one detector per "
            "device started on its install day, reading one number a day per numeric "
            "metric of its profile (a gauge's daily mean, a counter's daily growth). It names "
            "no fault kind: any alarm after the onset counts as detected; every other "
            "alarm is false, and the false ones are counted per family in the "
            '"(no fault)" rows (so a fault kind has no precision of its own). This is what '
            "a new product category, known only from its profile, would get on its first "
            "day. At a few false alarms per 1,000 device-days a device is likely to alarm by "
            "chance in the months after an onset, so late detections mean little: read the "
            "≤ 24 h and ≤ 7 d columns.",
            "",
        ]
        lines += _judged(general, lambda r: r.general, "###", named=False)
    named = [r for r in results if r.named is not None]
    if named:
        lines += [
            "",
            "### With the fault namer: trained on technicians' verdicts",
            "",
            "The same alarms, each named by its family's fault namer "
            "(`models.anomaly.naming`): trained on every alarm of the training fleets, "
            "each labelled as a technician would find it (the device's fault if it came "
            "after the onset, no fault otherwise), from evidence any profile has (which "
            "statistic fired, how far and which way each metric stood from its own "
            "baseline and from its region's peers that day, the share of the day "
            "missing). An alarm it is sure is no fault raises nothing; the others are "
            "judged as the health model's are: detected only when they name the device's "
            "fault, false when they name another.",
            "",
        ]
        lines += _judged(named, lambda r: r.named, "####", named=True)
    lines += ["", "## Against the targets", ""]
    lines += _targets(results)
    lines.append("")
    return "\n".join(lines)


def _judged(
    results: Sequence[CaseResult],
    pick: Callable[[CaseResult], FaultQuality | None],
    heading: str,
    named: bool,
) -> list[str]:
    """A detector's table of cases, then its kinds over the imperfect cases together."""
    noisy = [r for r in results if r.case.noisy] or list(results)
    return [
        *_fault_cases(results, pick),
        "",
        f"{heading} Per fault kind, the imperfect cases together",
        "",
        *_fault_kinds(noisy, pick, named=named),
    ]


def _fault_cases(
    results: Sequence[CaseResult], pick: Callable[[CaseResult], FaultQuality | None]
) -> list[str]:
    lines = [
        "| case | devices | faults | detected | false alerts | precision | recall | F1 "
        "| named ≤ 24 h | ≤ 7 d | median delay | false alerts per 1,000 healthy device-days |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        q = pick(r)
        if q is None:
            continue
        t = q.total()
        lines.append(
            f"| {r.case.name} | {q.devices or r.fault_devices:,} | {t.faults} | {t.detected} | "
            f"{t.false_alerts} | {_n(t.precision, '.2f')} | {_n(t.recall, '.2f')} | "
            f"{_n(t.f1, '.2f')} | {_p(t.within(24))} | {_p(t.within(168))} | "
            f"{_delay(t.median_delay_h)} | {_n(q.false_per_1000, '.2f')} |"
        )
    return lines


def _fault_kinds(
    results: Sequence[CaseResult],
    pick: Callable[[CaseResult], FaultQuality | None],
    named: bool = True,
) -> list[str]:
    """Per fault kind, pooled over `results`. `named=False`: the detector names no kind,
    so a kind has no false alerts or precision of its own (they are in its family's
    "(no fault)" row)."""
    lines = [
        "| device | fault | faults | detected | false alerts | precision | recall "
        "| named ≤ 24 h | ≤ 7 d | median delay |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pooled: dict[tuple[str, str], KindQuality] = {}
    for r in results:
        q = pick(r)
        for k in q.kinds if q is not None else []:
            p = pooled.setdefault(
                (k.device_type, k.kind), KindQuality(k.device_type, k.kind, 0, 0, 0)
            )
            p.faults += k.faults
            p.detected += k.detected
            p.false_alerts += k.false_alerts
            p.delays_h += k.delays_h
    for k in pooled.values():
        own = named or not k.faults  # a "(no fault)" row keeps its false alerts
        false = str(k.false_alerts) if own else "–"
        precision = _n(k.precision, ".2f") if named else "–"
        lines.append(
            f"| {_TYPES.get(k.device_type, k.device_type)} | {k.kind} | {k.faults} | "
            f"{k.detected} | {false} | {precision} | "
            f"{_n(k.recall, '.2f')} | {_p(k.within(24))} | {_p(k.within(168))} | "
            f"{_delay(k.median_delay_h)} |"
        )
    return lines


KEPT = "<!-- the sections below are not written by `fleetcare evaluate`: it keeps them -->"


def kept_sections(previous: str) -> str:
    """What a report being rewritten keeps of the one it replaces: everything from the
    `KEPT` marker on (sections measured by other commands, with their own commands)."""
    at = previous.find(KEPT)
    return "\n" + previous[at:] if at >= 0 else ""


def _targets(results: Sequence[CaseResult]) -> list[str]:
    """How many cases meet each of the targets the models were built for."""
    out = []
    n = len(results)
    for key, name in _STAGES.items():
        rows = [q for r in results for q in r.stages if q.key == key]
        if not rows:
            continue
        mae = sum(q.mae[14] <= TARGETS["mae14"] for q in rows)
        cov = sum(q.covered >= TARGETS["covered"] for q in rows)
        pre = sum(q.premature <= TARGETS["premature"] for q in rows)
        out.append(
            f"* **{name}**: MAE at 14 days ≤ 2 d in {mae} of {n} cases; covered ≥ 95 % in "
            f"{cov}; premature ≤ 5 % in {pre}."
        )
    f1 = sum(r.faults.total().f1 >= TARGET_F1 for r in results)
    delay = sum(r.faults.total().median_delay_h <= TARGET_DELAY_H for r in results)
    false = sum(r.faults.false_per_1000 <= TARGET_FALSE for r in results)
    out.append(
        f"* **Faults**: F1 ≥ {TARGET_F1} in {f1} of {n} cases; median delay ≤ 1 day in "
        f"{delay}; ≤ {TARGET_FALSE:g} false alert per 1,000 healthy device-days in {false}."
    )
    return out


# -- the chart ------------------------------------------------------------------------------
_COLOURS = {1: "#1f77b4", 4: "#2ca02c", 7: "#d62728", 10: "#ff7f0e"}


def detection_chart(results: Sequence[CaseResult]) -> str:
    """An SVG of each case's time-to-detection curve: the share of every fault named
    within 6 hours … 30 days (log scale) of its onset."""
    w, h, left, right, top, bottom = 720, 400, 60, 190, 20, 50
    pw, ph = w - left - right, h - top - bottom
    lo, hi = math.log(CURVE_H[0]), math.log(CURVE_H[-1])

    def x(hours: float) -> float:
        return left + (math.log(hours) - lo) / (hi - lo) * pw

    def y(share: float) -> float:
        return top + (1 - share) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
    ]
    for share in (0, 0.25, 0.5, 0.75, 1.0):
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(share):.1f}" y2="{y(share):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{left - 8}" y="{y(share) + 4:.1f}" text-anchor="end">'
            f"{100 * share:.0f} %</text>"
        )
    for hours in CURVE_H:
        label = f"{hours} h" if hours < 48 else f"{hours // 24} d"
        parts.append(
            f'<line x1="{x(hours):.1f}" x2="{x(hours):.1f}" y1="{top}" y2="{top + ph}" '
            'stroke="#eee"/>'
            f'<text x="{x(hours):.1f}" y="{top + ph + 18}" text-anchor="middle">{label}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{h - 8}" text-anchor="middle">time from the onset '
        "(log scale)</text>"
        f'<text x="14" y="{top + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2})">faults named</text>'
    )
    for k, r in enumerate(results):
        t = r.faults.total()
        points = [(hours, within(t.delays_h, t.faults, hours)) for hours in CURVE_H]
        path = " ".join(f"{x(a):.1f},{y(b if math.isfinite(b) else 0):.1f}" for a, b in points)
        colour = _COLOURS.get(r.case.start.month, "#555")
        dash = "" if r.case.noisy else ' stroke-dasharray="6 4"'
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        ly = top + 16 + 18 * k
        parts.append(
            f'<line x1="{left + pw + 14}" x2="{left + pw + 40}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text x="{left + pw + 46}" y="{ly}">{r.case.name}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
