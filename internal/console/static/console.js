// Sluice console charts: polls a JSON endpoint and draws inline SVG line
// charts, with no library. Each <figure class="chart"> names its endpoint
// in data-chart and its series in data-series ("field:label,...").
"use strict";

const colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
const svgNS = "http://www.w3.org/2000/svg";
const pollMs = 3000;

function el(name, attrs, text) {
  const e = document.createElementNS(svgNS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function fmt(v, unit) {
  if (unit === "bytes") {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (v < 10 ? v.toFixed(1) : v.toFixed(0)) + " " + units[i];
  }
  return v < 10 ? v.toFixed(1) : v.toFixed(0);
}

function draw(fig, points) {
  const series = fig.dataset.series.split(",").map((s) => s.split(":"));
  const unit = fig.dataset.unit || "";
  const w = 460, h = 160, left = 56, bottom = 18;
  const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, role: "img" });
  const known = (v) => typeof v === "number" && v >= 0;
  let maxV = 0;
  for (const p of points) for (const [f] of series) if (known(p[f])) maxV = Math.max(maxV, p[f]);
  maxV = maxV > 0 ? maxV * 1.1 : 1;
  const t0 = points.length ? points[0].time_ms : 0;
  const t1 = points.length ? points[points.length - 1].time_ms : 1;
  const x = (t) => left + (t1 > t0 ? (t - t0) / (t1 - t0) : 1) * (w - left - 4);
  const y = (v) => 4 + (1 - v / maxV) * (h - bottom - 8);
  for (const frac of [0, 0.5, 1]) {
    const v = maxV * frac;
    svg.appendChild(el("line", { x1: left, x2: w - 4, y1: y(v), y2: y(v), stroke: "#e3e6ea" }));
    svg.appendChild(el("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", "font-size": 10, fill: "#5d6673" }, fmt(v, unit)));
  }
  if (points.length) {
    const span = Math.round((t1 - t0) / 1000);
    svg.appendChild(el("text", { x: w - 4, y: h - 4, "text-anchor": "end", "font-size": 10, fill: "#5d6673" }, `last ${span} s`));
  }
  series.forEach(([field], i) => {
    const pts = points.filter((p) => known(p[field])).map((p) => `${x(p.time_ms).toFixed(1)},${y(p[field]).toFixed(1)}`);
    if (pts.length) svg.appendChild(el("polyline", { points: pts.join(" "), fill: "none", stroke: colors[i % colors.length], "stroke-width": 1.5 }));
  });
  const legend = document.createElement("div");
  legend.className = "legend";
  const last = points.length ? points[points.length - 1] : {};
  series.forEach(([field, label], i) => {
    const s = document.createElement("span");
    s.style.color = colors[i % colors.length];
    s.textContent = `${label}: ${known(last[field]) ? fmt(last[field], unit) : "–"}`;
    legend.appendChild(s);
  });
  fig.querySelectorAll("svg, .legend").forEach((n) => n.remove());
  fig.appendChild(svg);
  fig.appendChild(legend);
  fig.dataset.points = String(points.length);
}

async function poll(fig) {
  try {
    const resp = await fetch(fig.dataset.chart, { cache: "no-store" });
    if (resp.ok) draw(fig, (await resp.json()).points || []);
  } catch (e) {
    // The console or the broker is down: keep the last chart, retry.
  }
}

document.querySelectorAll("figure.chart").forEach((fig) => {
  poll(fig);
  setInterval(() => poll(fig), pollMs);
});
