// Stream: the newest facts first, filtered on the server by type, subject, site, room and source.
// Facts are drawn at most once per animation frame and the table keeps the newest ROWS, so the page
// stays responsive at any rate; the server says how many it skipped.
import { deviceLink, el, errorBox, fill, frameBatcher, number, route, timeCell, traceLink } from "./dom.js";

const ROWS = 500;
const FILTERS = ["type", "subject", "site", "room", "source"];

export function mount(root, { query, live }) {
  const filters = Object.fromEntries(FILTERS.map((name) => [name, query.get(name) ?? ""]));
  const inputs = Object.fromEntries(FILTERS.map((name) => [name, el("input", {
    name, value: filters[name], autocomplete: "off", spellcheck: "false", placeholder: "any",
    list: name === "type" ? "known-types" : null,
  })]));
  const types = el("datalist", { id: "known-types" });
  const form = el("form", { class: "filters", role: "search" },
    FILTERS.map((name) => el("label", {}, name, inputs[name])),
    el("button", { type: "submit" }, "Apply"),
    el("button", { type: "button", class: "clear" }, "Clear"), types);
  const pause = el("button", { type: "button", class: "pause", "aria-pressed": "false" }, "Pause");
  const counts = el("span", { class: "counts" });
  const body = el("tbody");
  const table = el("table", { class: "stream-table" },
    el("thead", {}, el("tr", {}, ["time", "type", "subject", "site", "room", "source", "summary", ""]
      .map((name) => el("th", {}, name)))), body);
  const problem = el("div", { class: "problem" });
  root.append(el("h1", {}, "Stream"), form, problem, el("div", { class: "toolbar" }, pause, counts), table);

  let paused = false;
  let received = 0;
  let whilePaused = 0;
  let skipped = 0;
  let queue = [];

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const wanted = Object.fromEntries(FILTERS.map((name) => [name, inputs[name].value.trim()]));
    location.hash = route(["stream"], wanted);
  });
  form.querySelector(".clear").addEventListener("click", () => {
    location.hash = route(["stream"]);
  });
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.setAttribute("aria-pressed", String(paused));
    pause.textContent = paused ? "Resume" : "Pause";
    if (!paused) {
      whilePaused = 0;
      draw();
    }
    showCounts();
  });

  function showCounts() {
    const parts = [`${number(received)} received`];
    if (paused) parts.push(`paused: ${number(whilePaused)} arrived meanwhile`);
    parts.push(`skipped by the server: ${number(skipped)}`);
    counts.textContent = parts.join(" · ");
    counts.dataset.skipped = String(skipped);
    counts.dataset.paused = String(whilePaused);
  }

  function row(fact) {
    return el("tr", { "data-id": fact.id ?? "", "data-type": fact.type ?? "", "data-correlation": fact.correlationid ?? "" },
      timeCell("td", fact.time),
      el("td", { class: "type" }, fact.type ?? ""),
      el("td", { class: "subject" }, deviceLink(fact.subject)),
      el("td", {}, fact.site ?? ""),
      el("td", {}, fact.room ?? ""),
      el("td", { class: "source" }, fact.source ?? ""),
      el("td", { class: "summary" }, fact.summary ?? ""),
      el("td", {}, traceLink(fact.id)));
  }

  const draw = frameBatcher(() => {
    if (paused || !queue.length) return;
    const newest = queue.slice(-ROWS);
    queue = [];
    const fragment = document.createDocumentFragment();
    for (let i = newest.length - 1; i >= 0; i -= 1) fragment.append(row(newest[i]));
    body.prepend(fragment);
    while (body.rows.length > ROWS) body.lastElementChild.remove();
    showCounts();
  });

  live.want(filters);
  live.on("fact", (fact) => {
    received += 1;
    if (paused) whilePaused += 1;
    queue.push(fact);
    if (queue.length > ROWS * 2) queue = queue.slice(-ROWS);
    if (paused) showCounts();
    else draw();
  });
  live.on("problem", (refused) => fill(problem, errorBox(`The server refused these filters: ${refused.message}`)));
  live.on("skipped", (message) => {
    skipped += Number(message.skipped) || 0;
    showCounts();
  });
  live.on("map", (map) => {
    const names = (map.types ?? []).map((type) => type.type).sort();
    if (names.join() !== [...types.options].map((option) => option.value).join()) {
      fill(types, names.map((name) => el("option", { value: name })));
    }
  });
  showCounts();
  return null;
}
