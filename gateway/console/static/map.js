// Map: the choreography drawn from the services' manifests. A node per service (offline ones marked),
// a node per device group, an edge per event type from its producers to its consumers with its live
// rate; types nobody produces or nobody consumes end in a flagged node of their own and are listed.
import { getJson } from "./api.js";
import { el, errorBox, fill, number, route } from "./dom.js";

const STYLE = [
  { selector: "node", style: {
    label: "data(label)", "text-wrap": "wrap", "text-valign": "center", "text-halign": "center",
    "font-size": 12, "font-family": "system-ui, sans-serif", color: "#1d2733", width: "label", height: "label",
    padding: 10, shape: "round-rectangle", "background-color": "#e4f4e8", "border-width": 2, "border-color": "#2f8f4e",
  } },
  { selector: "node.offline", style: {
    "background-color": "#f3f3f3", "border-color": "#c0392b", "border-style": "dashed", "border-width": 3,
    color: "#8a1f14",
  } },
  { selector: "node.devices", style: {
    shape: "barrel", "background-color": "#e8effa", "border-color": "#3b6fb6",
  } },
  { selector: "node.dangling", style: {
    shape: "tag", "background-color": "#fff4d6", "border-color": "#c98a00", "border-style": "dotted", color: "#7a5200",
  } },
  { selector: "edge", style: {
    label: "data(label)", "text-wrap": "wrap", "font-size": 10, "font-family": "system-ui, sans-serif",
    color: "#33404d", "text-background-color": "#ffffff", "text-background-opacity": 0.85,
    "text-background-padding": 2, width: 1.5, "line-color": "#7d8a96", "target-arrow-color": "#7d8a96",
    "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": 0.9, "text-rotation": "autorotate",
  } },
  { selector: "edge.from-devices", style: { label: "" } }, // the same types leave ingest, with their rates
  { selector: "edge.to-sink", style: { label: "", "line-color": "#c3cad1", "target-arrow-color": "#c3cad1" } },
  { selector: "edge.dangling", style: {
    "line-style": "dashed", "line-color": "#c98a00", "target-arrow-color": "#c98a00", color: "#7a5200",
  } },
  { selector: "edge.from-offline, edge.to-offline", style: { "line-style": "dotted", opacity: 0.6 } },
];

export function mount(root, { live }) {
  const status = el("p", { class: "status" }, "Loading the map ...");
  const graph = el("div", { id: "map-graph", class: "graph", role: "img",
    "aria-label": "services, device groups and the event types between them" });
  const services = el("ul", { class: "service-list" });
  const flagged = el("div", { class: "flagged" });
  const conflicts = el("div", { class: "conflicts" });
  root.append(el("h1", {}, "Map"), status,
    el("div", { class: "map-grid" }, graph,
      el("aside", {}, el("h2", {}, "Services"), services, flagged, conflicts,
        el("h2", {}, "Legend"), legend())));

  let cy = null;
  let shape = "";
  const controller = new AbortController();

  function show(map) {
    if (!map || !Array.isArray(map.services)) return;
    const elements = build(map);
    if (!window.cytoscape) {
      fill(status, errorBox("The graph library (/vendor/cytoscape.min.js) did not load."));
    } else {
      const key = elements.map((item) => item.data.id).sort().join("\n");
      if (!cy) {
        cy = window.cytoscape({ container: graph, elements, style: STYLE, wheelSensitivity: 0.3, minZoom: 0.2,
          maxZoom: 3 });
        window.choreoConsole.cy = cy;
        layout();
      } else if (key !== shape) {
        cy.elements().remove();
        cy.add(elements);
        layout();
      } else {
        cy.batch(() => {
          for (const item of elements) {
            const existing = cy.getElementById(item.data.id);
            existing.data("label", item.data.label);
            existing.classes(item.classes);
          }
        });
      }
      shape = key;
      fill(status, "");
    }
    list(map);
  }

  /** Device groups on top, then the services in the order facts flow; the services that store every
   * type (the sink) below them, and the flagged types in a column on each side. */
  function layout() {
    const aside = cy.nodes(".dangling, .stores");
    const core = cy.nodes().not(aside);
    const roots = cy.nodes(".devices");
    core.union(core.edgesWith(core)).layout({ name: "breadthfirst", directed: true,
      roots: roots.length ? roots : undefined, spacingFactor: 0.9, animate: false, fit: false }).run();
    const box = core.length ? core.boundingBox() : { x1: 0, x2: 400, y1: 0, y2: 300, w: 400, h: 300 };
    const column = (nodes, x) => nodes.forEach((node, index) => {
      node.position({ x, y: box.y1 + (box.h * (index + 0.5)) / nodes.length });
    });
    column(cy.nodes(".dangling.unproduced"), box.x1 - 170);
    column(cy.nodes(".dangling.unconsumed"), box.x2 + 170);
    cy.nodes(".stores").forEach((node, index, all) => {
      node.position({ x: box.x1 + (box.w * (index + 1)) / (all.length + 1), y: box.y2 + 110 });
    });
    cy.fit(undefined, 16);
  }

  function list(map) {
    if (!map.services.length) {
      fill(services, el("li", { class: "empty" }, "No service has announced itself on choreo/services/ yet."));
    }
    const sorted = [...map.services].sort((a, b) => String(a.label).localeCompare(String(b.label)));
    if (sorted.length) fill(services, sorted.map((service) => el("li", {
      class: `service ${service.status === "online" ? "online" : "offline"}`,
      "data-service": service.label ?? service.name, "data-status": service.status ?? "unknown",
      title: service.instance ? `instance ${service.instance}` : null,
    }, el("span", { class: "name" }, service.label ?? service.name), " ",
    el("span", { class: "badge" }, service.status ?? "unknown"))));
    const types = Array.isArray(map.types) ? map.types : [];
    const unproduced = types.filter((type) => type.unproduced).map((type) => type.type);
    const unconsumed = types.filter((type) => type.unconsumed).map((type) => type.type);
    fill(flagged,
      el("h2", {}, "Flagged types"),
      !unproduced.length && !unconsumed.length ? el("p", { class: "ok" }, "Every type has a producer and a consumer.") : "",
      unproduced.length ? el("p", {}, "Nobody produces: ", typeList(unproduced, "unproduced")) : "",
      unconsumed.length ? el("p", {}, "Nobody consumes: ", typeList(unconsumed, "unconsumed")) : "");
    const clashes = Object.entries(map.schema_conflicts ?? {});
    fill(conflicts, clashes.length ? [el("h2", {}, "Schema conflicts"), el("ul", {}, clashes.map(([type, names]) =>
      el("li", { class: "conflict" }, el("code", {}, type), ": ", [].concat(names).join(", "))))] : "");
  }

  let latest = null;
  live.want({});
  live.on("map", (map) => {
    latest = map;
    show(map);
  });
  live.on("rates", (message) => {  // every few seconds: the edges' rates change, not the graph's shape
    if (!latest || !message.rates) return;
    for (const type of latest.types ?? []) {
      if (typeof message.rates[type.type] === "number") type.rate = message.rates[type.type];
    }
    show(latest);
  });
  getJson("/api/map", { signal: controller.signal }).then((map) => {
    latest = latest ?? map;
    show(latest);
  }, (error) => {
    if (error.name !== "AbortError") fill(status, errorBox(error.message));
  });
  return () => {
    controller.abort();
    if (cy) cy.destroy();
    if (window.choreoConsole.cy === cy) delete window.choreoConsole.cy;
  };
}

function typeList(names, flag) {
  return names.map((name, index) => [index ? ", " : "",
    el("a", { href: route(["stream"], { type: name }), class: `type-flag ${flag}`, "data-type": name }, name)]);
}

function legend() {
  return el("ul", { class: "legend" },
    el("li", { class: "service online" }, el("span", { class: "swatch" }), "service online"),
    el("li", { class: "service offline" }, el("span", { class: "swatch" }), "service offline"),
    el("li", { class: "devices" }, el("span", { class: "swatch" }), "device group"),
    el("li", { class: "dangling" }, el("span", { class: "swatch" }), "type nobody produces or consumes"));
}

function rate(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return "";
  return ` ${value >= 10 ? number(Math.round(value)) : value.toFixed(1)}/s`;
}

/** Cytoscape elements for a map document. */
export function build(map) {
  const nodes = new Map();
  const edges = new Map();
  const status = new Map();
  const stores = new Set(); // nodes of the services that consume every type (the sink)
  for (const service of map.services) {
    const label = String(service.label ?? service.name);
    if (service.stores_everything) stores.add(`svc:${label}`);
    const offline = service.status !== "online";
    status.set(label, !offline);
    nodes.set(`svc:${label}`, { data: { id: `svc:${label}`, label: offline ? `${label}\n(offline)` : label },
      classes: `service ${offline ? "offline" : "online"}${service.stores_everything ? " stores" : ""}` });
  }
  const groups = Array.isArray(map.devices) ? map.devices : [];
  for (const group of groups) {
    const name = String(group.group);
    nodes.set(`dev:${name}`, { data: { id: `dev:${name}`, label: `${name}\n${number(group.count)} device${group.count === 1 ? "" : "s"}` },
      classes: "devices" });
  }
  const nodeOf = (label) => {
    if (nodes.has(`svc:${label}`)) return `svc:${label}`;
    if (nodes.has(`dev:${label}`)) return `dev:${label}`;
    const id = `svc:${label}`; // named by a type but without a manifest of its own
    nodes.set(id, { data: { id, label: `${label}\n(no manifest)` }, classes: "service offline" });
    return id;
  };
  const connect = (from, to, type, classes) => {
    const id = `edge:${from}->${to}`;
    const edge = edges.get(id) ?? { data: { id, source: from, target: to, lines: [] }, classes: new Set() };
    edge.data.lines.push(type);
    classes.forEach((name) => edge.classes.add(name));
    edges.set(id, edge);
  };
  const types = Array.isArray(map.types) ? map.types : [];
  const producersOf = new Map(types.map((type) => [type.type, [...new Set((type.producers ?? []).map(String))]]));
  const consumersOf = new Map(types.map((type) => [type.type, [...new Set((type.consumers ?? []).map(String))]]));
  for (const type of types) {
    const line = `${type.type}${rate(type.rate)}`;
    const from = producersOf.get(type.type).map(nodeOf);
    const to = consumersOf.get(type.type).map(nodeOf);
    const flag = [];
    if (type.unproduced || !from.length) {
      const id = `type:${type.type}:unproduced`;
      nodes.set(id, { data: { id, label: `${type.type}\nnobody produces it` }, classes: "dangling unproduced" });
      from.push(id);
      flag.push("dangling");
    }
    if (type.unconsumed || !to.length) {
      const id = `type:${type.type}:unconsumed`;
      nodes.set(id, { data: { id, label: `${type.type}\nnobody consumes it` }, classes: "dangling unconsumed" });
      to.push(id);
      flag.push("dangling");
    }
    for (const source of from) {
      for (const target of to) {
        if (source === target) continue;
        const dangling = target.startsWith("type:") || source.startsWith("type:");
        const classes = dangling ? [...flag] : [];
        if (stores.has(target)) classes.push("to-sink"); // every type goes there: drawn lighter, unlabelled
        if (source.startsWith("svc:") && status.get(source.slice(4)) === false) classes.push("from-offline");
        if (target.startsWith("svc:") && status.get(target.slice(4)) === false) classes.push("to-offline");
        connect(source, target, dangling ? rate(type.rate).trim() : line, classes);
      }
    }
  }
  // Devices send to the service that turns their payloads into facts (ingest, which produces what they
  // are the source of); to the type's consumers when no service produces it.
  for (const group of groups) {
    for (const emitted of group.emits ?? []) {
      const producers = producersOf.get(emitted) ?? [];
      const targets = producers.length ? producers : consumersOf.get(emitted) ?? [];
      for (const target of targets) connect(`dev:${group.group}`, nodeOf(target), emitted, ["from-devices"]);
    }
  }
  const elements = [...nodes.values()];
  for (const edge of edges.values()) {
    elements.push({ data: { id: edge.data.id, source: edge.data.source, target: edge.data.target,
      label: edge.data.lines.sort().join("\n") }, classes: [...edge.classes].join(" ") });
  }
  return elements;
}
