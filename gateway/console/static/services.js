// Services: each service's counters as it publishes them, live from the `services` events.
import { getJson } from "./api.js";
import { ago, el, errorBox, fill, number } from "./dom.js";

// Shown first, in this order; any other counter a service reports follows by name.
const FIRST = ["received", "consumed", "emitted", "published", "stored", "rejected", "spooled", "held_back", "lag",
  "reconnects", "dropped", "duplicates"];

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
    const keys = new Set();
    for (const service of services) Object.keys(service.counters ?? {}).forEach((key) => keys.add(key));
    const columns = [...FIRST.filter((key) => keys.has(key)), ...[...keys].filter((key) => !FIRST.includes(key)).sort()];
    const head = el("tr", {}, el("th", {}, "service"), el("th", {}, "status"),
      columns.map((key) => el("th", { class: "num" }, key.replaceAll("_", " "))), el("th", {}, "updated"));
    const rows = [...services].sort((a, b) => String(a.label ?? a.name).localeCompare(String(b.label ?? b.name)))
      .map((service) => el("tr", { "data-service": service.label ?? service.name, "data-status": service.status },
        el("td", {}, service.label ?? service.name),
        el("td", { class: `status-${service.status === "online" ? "online" : "offline"}` }, service.status ?? "unknown"),
        columns.map((key) => el("td", { class: "num", "data-counter": key }, number(service.counters?.[key]))),
        el("td", { class: "updated-at", title: service.updated ?? "" }, ago(service.updated))));
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
