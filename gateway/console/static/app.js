// The console's router: every view has its own URL (#/map, #/stream, #/trace/{id}, #/device/{id},
// #/rejected, #/services), so any of them can be shared. One live connection serves every view.
import { el, errorBox, fill } from "./dom.js";
import { Live } from "./live.js";
import * as deviceView from "./device.js";
import * as mapView from "./map.js";
import * as rejectedView from "./rejected.js";
import * as servicesView from "./services.js";
import * as streamView from "./stream.js";
import * as traceView from "./trace.js";

const VIEWS = {
  map: { module: mapView, args: 0, title: "Map" },
  stream: { module: streamView, args: 0, title: "Stream" },
  trace: { module: traceView, args: 1, title: "Trace" },
  device: { module: deviceView, args: 1, title: "Device" },
  rejected: { module: rejectedView, args: 0, title: "Rejected" },
  services: { module: servicesView, args: 0, title: "Services" },
};

const main = document.getElementById("view");
const live = new Live(document.getElementById("live"));
let leave = null;

/** The route of a hash such as `#/trace/01J...?x=1`: {name, args, query}, or {problem}. */
export function parseRoute(hash) {
  const [path, search = ""] = hash.replace(/^#\/?/, "").split("?", 2);
  let parts;
  try {
    parts = path.split("/").filter((part) => part !== "").map((part) => decodeURIComponent(part));
  } catch {
    return { problem: "This address is not a valid console URL (its escapes are malformed)." };
  }
  const name = parts.length ? parts[0] : "map";
  const view = VIEWS[name];
  if (!view) return { problem: `There is no view called "${name}".` };
  const args = parts.slice(1);
  if (args.length !== view.args) {
    const wanted = view.args ? `#/${name}/ID` : `#/${name}`;
    return { problem: `The ${view.title.toLowerCase()} view's address is ${wanted}.` };
  }
  return { name, args, query: new URLSearchParams(search) };
}

function show() {
  if (leave) {
    try {
      leave();
    } catch (error) {
      console.error("leaving a view failed", error);
    }
    leave = null;
  }
  live.clear();
  const target = parseRoute(location.hash);
  for (const anchor of document.querySelectorAll("nav a")) {
    anchor.toggleAttribute("aria-current", anchor.dataset.view === target.name);
  }
  main.dataset.view = target.name ?? "none";
  if (target.problem) {
    document.title = "choreo console";
    live.want({});
    fill(main, el("h1", {}, "Not found"), errorBox(target.problem),
      el("p", {}, "Start from the ", el("a", { href: "#/map" }, "map"), "."));
    return;
  }
  const view = VIEWS[target.name];
  document.title = `${view.title} · choreo console`;
  fill(main);
  try {
    leave = view.module.mount(main, { args: target.args, query: target.query, live }) ?? null;
  } catch (error) {
    console.error(error);
    fill(main, errorBox(`The ${view.title.toLowerCase()} view failed: ${error.message}`));
  }
}

window.addEventListener("hashchange", show);
window.choreoConsole = { live }; // for a person at the browser's console (and the browser tests)
if (!location.hash) history.replaceState(null, "", "#/map");
show();
