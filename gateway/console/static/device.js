// Device: one uPlot chart per metric, from the stored history and extended live; the device's
// current state, its alerts and its online/offline history.
import { getJson } from "./api.js";
import { debounce, el, errorBox, fill, frameBatcher, number, route, timeCell, traceLink } from "./dom.js";

const MAX_POINTS = 5000; // per metric: uPlot stays fast and the page's memory bounded
const RANGES = ["15m", "1h", "6h", "24h"];
const LIST_LIMIT = 50;
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

export function mount(root, { args: [device], query, live }) {
  const since = RANGES.includes(query.get("since")) ? query.get("since") : "1h";
  const status = el("p", { class: "status" }, "Loading the device ...");
  const charts = el("section", { class: "charts" });
  const state = el("dl", { class: "state" });
  const alerts = el("ol", { class: "events alerts" });
  const availability = el("ol", { class: "events availability" });
  const truncated = el("p", { class: "note" });
  root.append(
    el("h1", {}, "Device ", el("code", {}, device)),
    el("nav", { class: "ranges", "aria-label": "time range" }, "history: ", RANGES.map((range) =>
      el("a", { href: route(["device", device], { since: range }), "aria-current": range === since }, range))),
    status,
    el("div", { class: "device-grid" },
      el("div", {}, el("h2", {}, "Readings"), truncated, charts),
      el("aside", {}, el("h2", {}, "Current state"), state, el("h2", {}, "Alerts"), alerts,
        el("h2", {}, "Online / offline"), availability)));

  const controller = new AbortController();
  const metrics = new Map(); // metric -> {unit, xs, ys, plot, figure}
  const redraw = frameBatcher(() => {
    for (const metric of metrics.values()) {
      if (metric.dirty) draw(metric);
    }
  });
  const resize = new ResizeObserver(() => {
    for (const metric of metrics.values()) metric.plot?.setSize(size(metric.figure));
  });

  function chart(name, unit) {
    let metric = metrics.get(name);
    if (metric) return metric;
    const holder = el("div", { class: "plot" });
    const caption = el("figcaption", {}, `${name} (${unit || "no unit"})`);
    const figure = el("figure", { class: "chart", "data-metric": name, "data-points": "0" }, caption, holder);
    charts.append(figure);
    const colour = COLOURS[metrics.size % COLOURS.length];
    metric = { name, unit, colour, xs: [], ys: [], plot: null, figure, holder, caption, dirty: true };
    metrics.set(name, metric);
    resize.observe(figure);
    return metric;
  }

  function draw(metric) {
    metric.dirty = false;
    if (metric.xs.length > MAX_POINTS) {
      metric.xs.splice(0, metric.xs.length - MAX_POINTS);
      metric.ys.splice(0, metric.ys.length - MAX_POINTS);
    }
    const data = [metric.xs, metric.ys];
    if (metric.plot) {
      metric.plot.setData(data);
    } else if (window.uPlot) {
      metric.plot = new window.uPlot({
        ...size(metric.figure),
        legend: { show: true },
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: true } },
        series: [{}, { label: metric.name, stroke: metric.colour, width: 1.5, points: { show: false },
          value: (u, value) => (value === null || value === undefined ? "--" : `${number(value)} ${metric.unit}`) }],
        axes: [{}, { label: metric.unit, size: 60 }],
      }, data, metric.holder);
    } else {
      fill(metric.holder, errorBox("The chart library (/vendor/uplot.iife.min.js) did not load."));
    }
    metric.figure.dataset.points = String(metric.xs.length);
    metric.caption.textContent = `${metric.name} (${metric.unit || "no unit"}) · ${number(metric.xs.length)} points`;
  }

  function add(name, unit, moment, value) {
    if (typeof value !== "number" || !Number.isFinite(value) || Number.isNaN(moment)) return;
    const metric = chart(name, unit);
    const x = moment / 1000;
    const last = metric.xs.length ? metric.xs[metric.xs.length - 1] : -Infinity;
    if (x < last) return; // older than the newest point: the history already has it
    metric.xs.push(x);
    metric.ys.push(value);
    metric.dirty = true;
    redraw();
  }

  function showSide(body) {
    fill(state, describe(body));
    fill(alerts, events(body.alerts, "No alert in this period."));
    fill(availability, events(body.availability, "No change in this period."));
    fill(truncated, body.truncated ? "Only part of the history is shown (the server capped the points)." : "");
  }

  async function load() {
    try {
      const body = await getJson(`/api/device/${encodeURIComponent(device)}?since=${since}`,
        { signal: controller.signal });
      for (const [name, series] of Object.entries(body.readings ?? {})) {
        const metric = chart(name, series.unit ?? "");
        const points = (series.points ?? []).filter((point) => Array.isArray(point) && typeof point[1] === "number")
          .slice(-MAX_POINTS);
        metric.xs = points.map((point) => point[0] / 1000);
        metric.ys = points.map((point) => point[1]);
        metric.dirty = true;
      }
      if (!metrics.size) fill(charts, el("p", { class: "note" }, "No reading of this device in this period."));
      redraw();
      showSide(body);
      fill(status, "");
      return true;
    } catch (error) {
      if (error.name !== "AbortError") fill(status, errorBox(error.message));
      return false;
    }
  }

  async function refreshSide() {
    try {
      showSide(await getJson(`/api/device/${encodeURIComponent(device)}?since=${since}`, { signal: controller.signal }));
    } catch (error) {
      if (error.name !== "AbortError") fill(status, errorBox(error.message));
    }
  }
  const refresh = debounce(refreshSide, 500);

  let loaded = false;
  const early = []; // facts that arrive before the history: applied after it
  live.want({ subject: device });
  live.on("fact", (fact) => {
    if (fact.subject !== device) return;
    if (fact.type !== "reading.v1") {
      refresh();
      return;
    }
    if (!loaded) early.push(fact);
    else reading(fact);
  });

  function reading(fact) {
    const moment = Date.parse(fact.time);
    for (const [name, unit, value] of measurements(fact)) add(name, unit, moment, value);
  }

  load().then((ok) => {
    loaded = true;
    if (ok) early.splice(0).forEach(reading);
  });
  return () => {
    controller.abort();
    refresh.cancel();
    resize.disconnect();
    for (const metric of metrics.values()) metric.plot?.destroy();
  };
}

function size(figure) {
  return { width: Math.max(300, figure.clientWidth - 8), height: 220 };
}

/** [name, unit, value] of a live reading: from its data when the server sends it, else from its summary
 * (`temperature=25.3 Cel humidity=40 %RH`, as `choreo history` writes it). */
function measurements(fact) {
  const list = fact.data?.measurements;
  if (Array.isArray(list)) return list.map((m) => [m.name, m.unit ?? "", m.value]);
  const found = [];
  for (const match of String(fact.summary ?? "").matchAll(/([A-Za-z0-9_.:-]+)=(\S+) (\S+)/g)) {
    found.push([match[1], match[3], Number(match[2])]);
  }
  return found;
}

/** The device's latest state: the data of its newest reading or actuator change. */
function describe(body) {
  const value = body.state;
  if (value === null || value === undefined || typeof value !== "object") return el("dd", {}, "unknown");
  const rows = [];
  if (body.state_time) rows.push(el("dt", {}, "as of"), timeCell("dd", body.state_time));
  if (body.state_type) rows.push(el("dt", {}, "from"), el("dd", { class: "type" }, body.state_type));
  for (const [key, item] of Object.entries(value)) {
    if (item === null || item === undefined) continue;
    if (key === "measurements" && Array.isArray(item)) {
      for (const one of item) rows.push(el("dt", {}, one?.name ?? "?"), el("dd", {}, `${number(one?.value)} ${one?.unit ?? ""}`));
    } else {
      rows.push(el("dt", {}, key), el("dd", {}, typeof item === "object" ? JSON.stringify(item) : String(item)));
    }
  }
  return rows;
}

function events(list, empty) {
  if (!Array.isArray(list) || !list.length) return el("li", { class: "empty" }, empty);
  return [...list].sort((a, b) => String(b.time).localeCompare(String(a.time))).slice(0, LIST_LIMIT)
    .map((event) => el("li", { "data-type": event.type ?? "" }, timeCell("span", event.time), " ",
      el("span", { class: "type" }, event.type ?? ""), " ",
      el("span", { class: "summary" }, event.summary === "{}" ? "" : event.summary ?? ""),
      " ", traceLink(event.id)));
}
