// The console's charts (uPlot) and live updates (server-sent events). Charts read the
// same API the apps use; the session cookie authenticates them.
"use strict";

const DAY = 86400;

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`${url}: ${r.status}`);
  return r.json();
}

function sized(el, height) {
  return { width: Math.max(280, el.clientWidth || 480), height: height };
}

function markPlugin(at) {
  // a vertical line where the job was raised
  return {
    hooks: {
      draw: (u) => {
        if (at == null) return;
        const x = u.valToPos(at, "x", true);
        const ctx = u.ctx;
        ctx.save();
        ctx.strokeStyle = "#c0392b";
        ctx.setLineDash([4, 4]);
        ctx.beginPath();
        ctx.moveTo(x, u.bbox.top);
        ctx.lineTo(x, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.restore();
      },
    },
  };
}

const COLOURS = ["#2c7be5", "#e67e22", "#27ae60", "#8e44ad"];

async function drawTelemetry(el) {
  if (el.dataset.drawn) return;
  el.dataset.drawn = "pending";
  const end = el.dataset.end ? Number(el.dataset.end) : Date.now() / 1000;
  const start = el.dataset.start ? Number(el.dataset.start) : end - Number(el.dataset.days || 7) * DAY;
  const iso = (s) => new Date(s * 1000).toISOString();
  const named = JSON.parse(el.dataset.metrics || "[]"); // the metrics the evidence names
  const only = named.map((m) => `&metric=${encodeURIComponent(m)}`).join("");
  const url = `/api/v1/devices/${encodeURIComponent(el.dataset.device)}/telemetry?start=${iso(start)}&end=${iso(end)}&points=200${only}`;
  try {
    const data = await getJSON(url);
    const xs = [...new Set(data.series.flatMap((s) => s.points.map((p) => Date.parse(p.ts) / 1000)))].sort((a, b) => a - b);
    const cols = data.series.map((s) => {
      const by = new Map(s.points.map((p) => [Date.parse(p.ts) / 1000, p.value]));
      return xs.map((x) => (by.has(x) ? by.get(x) : null));
    });
    const series = [{}].concat(
      data.series.map((s, i) => ({ label: `${s.metric} (${s.unit})`, stroke: COLOURS[i % 4], scale: i === 0 ? "y" : "y2", spanGaps: false }))
    );
    const axes = [{}, { scale: "y" }];
    if (data.series.length > 1) axes.push({ scale: "y2", side: 1, grid: { show: false } });
    const mark = el.dataset.mark ? Number(el.dataset.mark) : null;
    el.innerHTML = "";
    if (!xs.length) {
      el.textContent = "No telemetry in this window.";
    } else {
      new uPlot({ ...sized(el, 220), series, axes, scales: { x: { time: true } }, plugins: [markPlugin(mark)] }, [xs, ...cols], el);
    }
    el.dataset.drawn = "1";
    el.dataset.points = String(xs.length);
  } catch (err) {
    el.textContent = `Chart unavailable: ${err.message}`;
    el.dataset.drawn = "error";
  }
}

function drawFilterCurves(el) {
  const curves = JSON.parse(el.dataset.curves || "[]");
  if (!curves.length) {
    el.textContent = "No filter-life prediction yet.";
    el.dataset.drawn = "1";
    return;
  }
  // per stage: 100 % at the last replacement (or as far back as the condition implies),
  // today's condition, 0 % at the predicted exhaustion; the band's ends at 0 %
  const xs = new Set();
  const lines = curves.map((c) => {
    const used = 100 - (c.condition ?? 0);
    // no replacement on record: go back at the rate the prediction implies
    const rate = (c.condition ?? 0) > 0 ? c.condition / Math.max(c.exhausted - c.now, DAY) : null;
    const start = c.replaced ?? (rate ? c.now - used / rate : c.now - 30 * DAY);
    const pts = [[start, 100], [c.now, c.condition ?? 100], [c.exhausted, 0]];
    pts.forEach((p) => xs.add(p[0]));
    if (c.low) xs.add(c.low);
    if (c.high) xs.add(c.high);
    if (c.rated) xs.add(c.rated);
    return { c, pts, start };
  });
  const X = [...xs].sort((a, b) => a - b);
  const interp = (pts, x) => {
    for (let i = 1; i < pts.length; i++) {
      const [x0, y0] = pts[i - 1], [x1, y1] = pts[i];
      if (x >= x0 && x <= x1) return x1 === x0 ? y1 : y0 + ((y1 - y0) * (x - x0)) / (x1 - x0);
    }
    return null;
  };
  const data = [X];
  const series = [{}];
  lines.forEach(({ c, pts }, i) => {
    data.push(X.map((x) => interp(pts, x)));
    series.push({ label: `${c.stage} predicted`, stroke: COLOURS[i % 4], width: 2 });
    for (const [key, name] of [["low", "early"], ["high", "late"]]) {
      if (!c[key]) continue;
      const band = [[c.now, c.condition ?? 100], [c[key], 0]];
      data.push(X.map((x) => interp(band, x)));
      series.push({ label: `${c.stage} band ${name}`, stroke: COLOURS[i % 4] + "66", dash: [2, 4] });
    }
    if (c.rated) {
      data.push(X.map((x) => interp([[lines[i].start, 100], [c.rated, 0]], x)));
      series.push({ label: `${c.stage} rated life`, stroke: "#888", dash: [8, 6] });
    }
  });
  el.innerHTML = "";
  new uPlot({ ...sized(el, 240), series, scales: { x: { time: true }, y: { range: [0, 100] } }, axes: [{}, { label: "condition %" }], plugins: [markPlugin(curves[0].now)] }, data, el);
  el.dataset.drawn = "1";
}

function drawKpis(el) {
  const k = JSON.parse(el.dataset.kpis);
  // totals per week across groups
  const weeks = [...new Set(k.x)].sort((a, b) => a - b);
  const sum = (arr) => weeks.map((w) => k.x.reduce((acc, x, i) => acc + (x === w ? arr[i] : 0), 0));
  el.innerHTML = "";
  if (!weeks.length) { el.textContent = "No jobs in these weeks."; el.dataset.drawn = "1"; return; }
  new uPlot({ ...sized(el, 200), series: [{}, { label: "opened", stroke: COLOURS[0] }, { label: "completed", stroke: COLOURS[2] }], scales: { x: { time: true } } }, [weeks, sum(k.opened), sum(k.completed)], el);
  el.dataset.drawn = "1";
}

async function drawQualityRates(el) {
  const rows = await getJSON(el.dataset.qualityRates);
  const months = [...new Set(rows.map((r) => r.month))].sort();
  const groups = [...new Set(rows.map((r) => r.group))];
  el.innerHTML = "";
  if (!groups.length) { el.textContent = "No units in service."; el.dataset.drawn = "1"; return; }
  const X = months.map((m) => Date.UTC(+m.slice(0, 4), +m.slice(5, 7) - 1, 1) / 1000);
  const at = new Map(rows.map((r) => [`${r.group}|${r.month}`, r.per_1000]));
  const data = [X, ...groups.map((g) => months.map((m) => at.get(`${g}|${m}`) ?? null))];
  const series = [{}, ...groups.map((g, i) => ({ label: g, stroke: COLOURS[i % 4], width: 2 }))];
  new uPlot({ ...sized(el, 220), series, scales: { x: { time: true } }, axes: [{}, { label: "per 1,000 units" }] }, data, el);
  el.dataset.drawn = "1";
}

async function drawSurvival(el) {
  const curves = await getJSON(el.dataset.survival);
  el.innerHTML = "";
  if (!curves.length) { el.textContent = "No units in service."; el.dataset.drawn = "1"; return; }
  // a step down on each day a unit had its first failure; 100 % before the first
  // out to the longest any unit has been watched, where the last step holds
  const days = [...new Set([0, ...curves.flatMap((c) => [...c.points.map((p) => p.day), c.followed_days])])].sort((a, b) => a - b);
  const step = (c) => days.map((d) => {
    if (d > c.followed_days) return null;
    const before = c.points.filter((p) => p.day <= d);
    return 100 * (before.length ? before[before.length - 1].survival : 1);
  });
  const stepped = uPlot.paths.stepped({ align: 1 });
  const series = [{ label: "days in service" }, ...curves.map((c, i) => ({ label: `${c.group} (${c.units})`, stroke: COLOURS[i % 4], width: 2, paths: stepped }))];
  new uPlot({ ...sized(el, 220), series, scales: { x: { time: false }, y: { range: [0, 100] } }, axes: [{ label: "days in service" }, { label: "% without a failure" }] }, [days, ...curves.map(step)], el);
  el.dataset.drawn = "1";
}

function boundsOf(m) {
  // the healthy range's edges, as flat series across the chart
  return [m.above, m.below].filter((b) => b != null);
}

async function airMetric(el) {
  const report = await getJSON(el.dataset.airHours || el.dataset.airDays);
  return report.metrics.find((m) => m.metric === el.dataset.metric);
}

async function drawAirHours(el) {
  const m = await airMetric(el);
  const hours = [...Array(24).keys()];
  const hood = m.neighbourhood ? m.neighbourhood.by_hour : null;
  const data = [hours, m.by_hour];
  const series = [{ label: "hour" }, { label: `your home (${m.unit})`, stroke: COLOURS[0], width: 2 }];
  if (hood) { data.push(hood); series.push({ label: "neighbourhood median", stroke: COLOURS[1], width: 2, dash: [6, 4] }); }
  for (const b of boundsOf(m)) { data.push(hours.map(() => b)); series.push({ label: `limit ${b}`, stroke: "#c0392b", width: 1 }); }
  el.innerHTML = "";
  new uPlot({ ...sized(el, 220), series, scales: { x: { time: false } }, axes: [{ label: "hour of day", values: (u, v) => v.map((h) => `${h}:00`) }, { label: m.unit }] }, data, el);
  el.dataset.drawn = "1";
}

async function drawAirDays(el) {
  const m = await airMetric(el);
  const X = m.days.map((d) => Date.parse(`${d.day}T12:00:00Z`) / 1000);
  const data = [X, m.days.map((d) => d.mean), m.days.map((d) => d.max)];
  const series = [{}, { label: "daily mean", stroke: COLOURS[0], width: 2 }, { label: "hourly peak", stroke: COLOURS[3], width: 1 }];
  for (const b of boundsOf(m)) { data.push(X.map(() => b)); series.push({ label: `limit ${b}`, stroke: "#c0392b", width: 1 }); }
  el.innerHTML = "";
  if (!X.length) { el.textContent = "No readings this month."; el.dataset.drawn = "1"; return; }
  new uPlot({ ...sized(el, 220), series, scales: { x: { time: true } }, axes: [{}, { label: m.unit }] }, data, el);
  el.dataset.drawn = "1";
}

async function drawStockPlan(el) {
  const plan = await getJSON(el.dataset.stockPlan);
  const rows = plan.demand.filter((r) => r.sku === el.dataset.sku);
  const weeks = [...new Set(rows.map((r) => r.week))].sort();
  const levels = ["van", "outlet", "distribution", "central"];
  const X = weeks.map((w) => Date.parse(`${w}T00:00:00Z`) / 1000);
  const sum = (level, w) => rows.filter((r) => r.level === level && r.week === w).reduce((a, r) => a + r.total, 0);
  const data = [X, ...levels.map((l) => weeks.map((w) => sum(l, w)))];
  const series = [{}, ...levels.map((l, i) => ({ label: l, stroke: COLOURS[i % 4], width: 2 }))];
  el.innerHTML = "";
  if (!X.length) { el.textContent = "No demand."; el.dataset.drawn = "1"; return; }
  new uPlot({ ...sized(el, 220), series, scales: { x: { time: true } }, axes: [{}, { label: "units a week" }] }, data, el);
  el.dataset.drawn = "1";
}

function drawAll(root) {
  root.querySelectorAll(".chart[data-device]").forEach(drawTelemetry);
  root.querySelectorAll(".chart[data-curves]").forEach(drawFilterCurves);
  root.querySelectorAll(".chart[data-kpis]").forEach(drawKpis);
  root.querySelectorAll(".chart[data-quality-rates]").forEach(drawQualityRates);
  root.querySelectorAll(".chart[data-survival]").forEach(drawSurvival);
  root.querySelectorAll(".chart[data-air-hours]").forEach(drawAirHours);
  root.querySelectorAll(".chart[data-air-days]").forEach(drawAirDays);
  root.querySelectorAll(".chart[data-stock-plan]").forEach(drawStockPlan);
}

function live() {
  const q = document.querySelector("[data-live]");
  if (!q || !window.EventSource) return;
  const source = new EventSource(q.dataset.live);
  source.addEventListener("orders", () => htmx.trigger(q, "refresh"));
}

function replayButton() {
  const b = document.getElementById("replay");
  if (!b) return;
  b.addEventListener("click", async () => {
    const r = await fetch("/api/v1/dead-letters/replay", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ids: JSON.parse(b.dataset.ids) }),
    });
    const body = await r.json();
    document.getElementById("replay-result").textContent = r.ok
      ? `stored ${body.stored.length}, still rejected ${Object.keys(body.still_rejected).length}`
      : body.detail;
  });
}

drawAll(document);
document.body.addEventListener("htmx:afterSwap", (e) => drawAll(e.target));
live();
replayButton();
