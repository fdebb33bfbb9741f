// Services: each service's counters as it publishes them, live from the `services` events.
import { getJson } from "./api.js";
import { ago, el, errorBox, fill, number } from "./dom.js";

// The columns every service has: a count it did not report is 0 (it counts only what happened).
// `emitted` adds up its `emitted:TYPE` counts; lag is reported by the services that know it.
const COLUMNS = [
  ["received", "received"], ["emitted", "emitted"], ["rejected", "rejected"], ["spooled", "spooled"],
  ["held_back", "held back"], ["lag_seconds", "lag"], ["reconnects", "reconnects"], ["dropped", "dropped"],
];
const EMITTED = "emitted:";

export function mount(root, { live }) {
  const status = el("p", { class: "status" }, "Loading the services ...");
  const table = el("table", { class: "services-table" });
  const updated = el("p", { class: "updated" });
  root.append(el("h1", {}, "Services"),
    el("p", { class: "intro" }, "Counters each service publishes on choreo/services/, as they change. ",
      "The same counters are on /metrics for Prometheus."), status, table, updated);
  let services = [];
  let lastUpdate = null;

  function render() {
    const head = el("tr", {}, el("th", {}, "service"), el("th", {}, "status"),
      COLUMNS.map(([, title]) => el("th", { class: "num" }, title)), el("th", {}, "other counters"),
      el("th", {}, "updated"));
    const rows = [...services].sort((a, b) => String(a.label ?? a.name).localeCompare(String(b.label ?? b.name)))
      .map((service) => {
        const counters = service.counters ?? {};
        const reported = Object.keys(counters).length > 0;
        return el("tr", { "data-service": service.label ?? service.name, "data-status": service.status },
          el("td", {}, service.label ?? service.name),
          el("td", { class: `status-${service.status === "online" ? "online" : "offline"}` }, service.status ?? "unknown"),
          COLUMNS.map(([key]) => cell(key, counters, reported)),
          el("td", { class: "other" }, others(counters)),
          el("td", { class: "updated-at", title: service.updated ?? "" }, ago(service.updated)));
      });
    fill(table, el("thead", {}, head), el("tbody", {}, rows));
    fill(status, services.length ? "" : "No service has published counters yet.");
    tick();
  }

  function tick() {
    fill(updated, lastUpdate ? `Last update ${ago(lastUpdate)}.` : "");
    for (const cell of table.querySelectorAll("td.updated-at")) cell.textContent = ago(cell.title || null);
  }

  function take(list) {
    if (!Array.isArray(list)) return;
    services = list;
    lastUpdate = new Date().toISOString();
    render();
  }

  const controller = new AbortController();
  live.want({});
  live.on("services", take);
  getJson("/api/services", { signal: controller.signal }).then(take, (error) => {
    if (error.name !== "AbortError") fill(status, errorBox(error.message));
  });
  const clock = setInterval(tick, 1000);
  return () => {
    controller.abort();
    clearInterval(clock);
  };
}

function cell(key, counters, reported) {
  if (key === "emitted") {
    const kinds = Object.entries(counters).filter(([name]) => name.startsWith(EMITTED));
    const total = kinds.length ? kinds.reduce((sum, [, value]) => sum + value, 0) : counters.emitted;
    const title = kinds.map(([name, value]) => `${name.slice(EMITTED.length)}: ${value}`).join("\n");
    return el("td", { class: "num", "data-counter": key, title: title || null }, reported ? number(total ?? 0) : "");
  }
  if (key === "lag_seconds") {
    const lag = counters.lag_seconds;
    return el("td", { class: "num", "data-counter": key }, typeof lag === "number" ? `${number(lag)} s` : "–");
  }
  return el("td", { class: "num", "data-counter": key }, reported ? number(counters[key] ?? 0) : "");
}

/** The counters without a column of their own, folded. */
function others(counters) {
  const shown = new Set(COLUMNS.map(([key]) => key));
  const rest = Object.entries(counters).filter(([name]) => !shown.has(name) && !name.startsWith(EMITTED))
    .sort(([a], [b]) => a.localeCompare(b));
  if (!rest.length) return "";
  return el("details", {}, el("summary", {}, `${rest.length} more`),
    el("dl", { class: "counters" }, rest.map(([name, value]) => [el("dt", {}, name), el("dd", {}, number(value))])));
}
