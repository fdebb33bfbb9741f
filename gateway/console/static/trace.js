// Trace: the causal tree of one chain (reading -> alert -> actuation request -> actuator change),
// each step with the service that emitted it and how long it took after its cause. Read from the
// stored history and read again when a live fact of the same chain arrives.
import { getJson } from "./api.js";
import { debounce, deviceLink, el, errorBox, fill, number, timeCell } from "./dom.js";

const RETRIES = 10;
const RETRY_DELAY = 1000; // ms

export function mount(root, { args: [id], live }) {
  const status = el("p", { class: "status" }, "Loading the trace ...");
  const tree = el("div", { class: "trace-tree" });
  const heading = el("h1", {}, "Trace ", el("code", {}, id));
  const meta = el("p", { class: "meta" });
  root.append(heading, meta, status, tree);
  const controller = new AbortController();
  let correlation = null;
  // Live facts of this chain that the stored history did not have yet (the sink writes in batches):
  // the trace is read again until they are there, a bounded number of times.
  const awaited = new Set();
  let attempts = 0;
  let retry = null;

  async function load() {
    let trace;
    try {
      trace = await getJson(`/api/trace/${encodeURIComponent(id)}`, { signal: controller.signal });
    } catch (error) {
      if (error.name !== "AbortError") fill(status, errorBox(error.message));
      return;
    }
    correlation = trace.correlationid ?? id;
    const events = Array.isArray(trace.events) ? trace.events : [];
    fill(meta, `correlation ${correlation} · ${events.length} event${events.length === 1 ? "" : "s"}`,
      trace.live ? " · completed live as later facts arrive" : "");
    fill(status, events.length ? "" : errorBox("No stored event belongs to this trace yet."));
    fill(tree, render(events, id));
    for (const event of events) awaited.delete(event.id);
    clearTimeout(retry);
    if (awaited.size && attempts < RETRIES) {
      attempts += 1;
      retry = setTimeout(load, RETRY_DELAY);
    }
  }

  const reload = debounce(load, 300);
  live.want({});
  live.on("fact", (fact) => {
    if (!fact.correlationid || (fact.correlationid !== correlation && fact.correlationid !== id)) return;
    if (fact.id) awaited.add(fact.id);
    attempts = 0;
    reload();
  });
  load();
  return () => {
    controller.abort();
    reload.cancel();
    clearTimeout(retry);
  };
}

/** The events as nested lists, each under the event that caused it; the roots in time order. */
function render(events, focus) {
  const byId = new Map(events.map((event) => [event.id, event]));
  const children = new Map();
  for (const event of events) {
    const parent = byId.has(event.causationid) && event.causationid !== event.id ? event.causationid : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(event);
  }
  for (const list of children.values()) list.sort((a, b) => String(a.time).localeCompare(String(b.time)));
  const seen = new Set();

  function branch(parent) {
    const list = (children.get(parent) ?? []).filter((event) => !seen.has(event.id));
    if (!list.length) return null;
    return el("ol", { class: "steps" }, list.map((event) => {
      seen.add(event.id);
      return el("li", {}, step(event, event.id === focus), branch(event.id));
    }));
  }
  return branch(null);
}

function step(event, focused) {
  const took = typeof event.took_ms === "number" ? `+${number(Math.round(event.took_ms * 10) / 10)} ms` : "origin";
  const details = el("details", {}, el("summary", {}, "data"),
    el("pre", {}, JSON.stringify(event.data ?? {}, null, 2)));
  return el("div", { class: focused ? "step focus" : "step", "data-type": event.type ?? "", "data-id": event.id ?? "" },
    el("div", { class: "step-head" },
      el("span", { class: "type" }, event.type ?? ""),
      el("span", { class: "took", title: "after the event it reacted to was emitted" }, took),
      el("span", { class: "by" }, "by ", el("span", { class: "service", title: event.source ?? "" },
        event.service ?? event.source ?? "")),
      el("span", { class: "at" }, "at ", timeCell("span", event.time)),
      el("span", { class: "subject" }, "about ", deviceLink(event.subject))),
    el("div", { class: "summary" }, event.summary ?? ""),
    details);
}
