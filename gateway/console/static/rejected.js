// Rejected: every event.rejected.v1, who rejected it and why, with the excerpt of what was refused.
// Excerpts are hostile input by definition: text only.
import { getJson } from "./api.js";
import { debounce, deviceLink, el, errorBox, fill, timeCell, traceLink } from "./dom.js";

const LIMIT = 200;
const REJECTED = "event.rejected.v1";

export function mount(root, { live }) {
  const status = el("p", { class: "status" }, "Loading the rejections ...");
  const body = el("tbody");
  const table = el("table", { class: "rejected-table" },
    el("thead", {}, el("tr", {}, ["time", "rejected by", "reason", "topic", "excerpt", "subject", ""]
      .map((name) => el("th", {}, name)))), body);
  root.append(el("h1", {}, "Rejected"),
    el("p", { class: "intro" }, `The newest ${LIMIT} inputs a service refused (${REJECTED}), live.`), status, table);
  const controller = new AbortController();

  function row(item) {
    return el("tr", { "data-id": item.id ?? "" },
      timeCell("td", item.time),
      el("td", { class: "rejected-by" }, item.rejected_by ?? ""),
      el("td", { class: "reason" }, item.reason ?? ""),
      el("td", { class: "topic" }, el("code", {}, item.topic ?? "")),
      el("td", { class: "excerpt" }, el("pre", {}, item.excerpt ?? "")),
      el("td", {}, item.subject === "unknown" ? "unknown" : deviceLink(item.subject)),
      el("td", {}, traceLink(item.id)));
  }

  function show(items) {
    if (!Array.isArray(items)) return;
    fill(body, items.slice(0, LIMIT).map(row));
    fill(status, items.length ? "" : "Nothing has been rejected.");
  }

  async function load() {
    try {
      show(await getJson(`/api/rejected?limit=${LIMIT}`, { signal: controller.signal }));
    } catch (error) {
      if (error.name !== "AbortError") fill(status, errorBox(error.message));
    }
  }

  // A live fact carries the rejection's data when the server includes it; otherwise the table is read again.
  const reload = debounce(load, 300);
  live.want({ type: REJECTED });
  live.on("fact", (fact) => {
    if (fact.type !== REJECTED) return;
    const data = fact.data;
    if (data && typeof data === "object" && "reason" in data) {
      body.prepend(row({ ...data, time: fact.time, subject: fact.subject, id: fact.id }));
      while (body.rows.length > LIMIT) body.lastElementChild.remove();
      fill(status, "");
    } else {
      reload();
    }
  });
  load();
  return () => {
    controller.abort();
    reload.cancel();
  };
}
