// One EventSource for the whole page. A view says which facts it wants (the query of /api/stream)
// and listens for `fact`, `skipped`, `services`, `map` and `rates` events; a new route drops its
// listeners. `broker` events say whether the console itself is connected to the broker.

const EVENTS = ["fact", "skipped", "services", "map", "rates", "broker"];
const PROBLEM = "problem"; // not a server event: the stream was refused, with the server's reason
const RETRY_MIN = 1000;
const RETRY_MAX = 30000;

export class Live {
  constructor(indicator) {
    this.indicator = indicator;
    this.source = null;
    this.query = null;
    this.listeners = new Map([...EVENTS, PROBLEM].map((name) => [name, new Set()]));
    this.retryDelay = RETRY_MIN;
    this.retryTimer = null;
    this.received = 0;
  }

  /** Listen for `name` events; returns a function that stops listening. */
  on(name, handler) {
    this.listeners.get(name).add(handler);
    return () => this.listeners.get(name).delete(handler);
  }

  /** Drop every listener (a view is being left). */
  clear() {
    for (const handlers of this.listeners.values()) handlers.clear();
  }

  /** Stream the facts that match `filters` ({type, subject, site, room, source}); reconnect only if they changed. */
  want(filters = {}) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(filters)) {
      if (value) params.set(name, value);
    }
    const query = params.toString();
    if (query === this.query && this.source && this.source.readyState !== EventSource.CLOSED) return;
    this.query = query;
    this.retryDelay = RETRY_MIN;
    this.open();
  }

  open() {
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    const url = this.query ? `/api/stream?${this.query}` : "/api/stream";
    const source = new EventSource(url);
    this.source = source;
    this.show("connecting", "connecting");
    source.onopen = () => {
      this.retryDelay = RETRY_MIN;
      this.show("open", "live");
    };
    this.brokerConnected = true;
    source.onerror = () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (an HTTP error) and the browser gave up: ask why, then try
        // again, unless the request itself was bad (a malformed filter), which no retry mends.
        this.show("closed", "live updates stopped");
        refusal(url).then((problem) => {
          if (source !== this.source) return;
          if (problem && problem.status === 400) {
            this.show("closed", "live updates refused");
            this.indicator.title = problem.message;
            this.emit(PROBLEM, problem);
            return;
          }
          const seconds = Math.round(this.retryDelay / 1000);
          this.show("closed", `live updates stopped; retrying in ${seconds} s`);
          if (problem) this.indicator.title = problem.message;
          this.retryTimer = setTimeout(() => this.open(), this.retryDelay);
          this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX);
        });
      } else {
        this.show("connecting", "reconnecting");
      }
    };
    for (const name of EVENTS) {
      source.addEventListener(name, (message) => {
        if (source !== this.source) return;
        let payload;
        try {
          payload = JSON.parse(message.data);
        } catch {
          console.warn(`/api/stream sent a ${name} event that is not JSON`);
          return;
        }
        this.received += 1;
        if (name === "broker") this.broker(Boolean(payload.connected));
        this.emit(name, payload);
      });
    }
  }

  emit(name, payload) {
    for (const handler of this.listeners.get(name)) {
      try {
        handler(payload);
      } catch (error) {
        console.error(`a ${name} handler failed`, error); // one bad event never stops the page
      }
    }
  }

  broker(connected) {
    if (connected === this.brokerConnected) return;
    this.brokerConnected = connected;
    if (this.source?.readyState !== EventSource.OPEN) return;
    if (connected) this.show("open", "live");
    else this.show("degraded", "the console lost the broker; reconnecting");
  }

  show(state, text) {
    this.indicator.dataset.state = state;
    this.indicator.textContent = text;
    this.indicator.title = "live updates from /api/stream";
  }
}

/** Why the server refuses `url`: {status, message} from its JSON error, null if it now accepts it. */
async function refusal(url) {
  const controller = new AbortController();
  try {
    const response = await fetch(url, { signal: controller.signal, cache: "no-store" });
    if (response.ok) {
      controller.abort(); // a stream again: the EventSource reconnects
      return null;
    }
    const body = await response.json().catch(() => null);
    const said = body && typeof body.error === "string" ? body.error : response.statusText;
    return { status: response.status, message: `${said} (HTTP ${response.status})` };
  } catch {
    return { status: 0, message: "the console server did not answer" };
  }
}
