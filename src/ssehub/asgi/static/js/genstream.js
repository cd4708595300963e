// Reading one generation's events with EventSource, resiliently.
//
// - While the browser reconnects by itself (readyState CONNECTING) it resends the last id in
//   the Last-Event-ID header, and the hub continues after it.
// - When the browser gives up (readyState CLOSED: a non-200 answer such as a 502 from a proxy
//   during a restart), we open a new EventSource ourselves with `last_event_id=<last id>` in
//   the query (EventSource cannot set headers), with backoff and jitter.
// - Events are deduplicated by id, so a replay can never duplicate text.
// - The stream closes itself after the terminal event (`done` or `error`).

export const GENERATION_EVENTS = ["start", "reasoning", "content", "usage", "done", "error", "gap", "message"];

export class GenerationStream {
  /**
   * @param {string} eventsUrl  the `events` URL from POST /chat (resumes from `earliest`)
   * @param {object} opts
   *   lastEventId  resume after this id instead of replaying from the start
   *   onEvent(name, data, id)  for every new event (data is parsed JSON when it is JSON)
   *   onState(state, detail)   "connecting" | "open" | "reconnecting" | "failed" | "closed"
   *   maxReopens   how many times to re-open after the browser gave up (default 12)
   */
  constructor(eventsUrl, { lastEventId = null, onEvent = () => {}, onState = () => {}, maxReopens = 12 } = {}) {
    this.eventsUrl = eventsUrl;
    this.lastEventId = lastEventId || null;
    this.onEvent = onEvent;
    this.onState = onState;
    this.maxReopens = maxReopens;
    this.seen = new Set();
    this.es = null;
    this.reopens = 0;
    this.timer = 0;
    this.finished = false;
    this.state = "idle";
    this._online = () => {
      if (!this.finished && (!this.es || this.es.readyState === EventSource.CLOSED)) this.reopenNow();
    };
    window.addEventListener("online", this._online);
  }

  /** The URL to (re)open: the events URL, resuming after `lastEventId` when there is one. */
  url() {
    const url = new URL(this.eventsUrl, document.baseURI);
    if (this.lastEventId) url.searchParams.set("last_event_id", this.lastEventId);
    return url.href;
  }

  start() {
    this.open();
    return this;
  }

  open() {
    clearTimeout(this.timer);
    this.timer = 0;
    if (this.finished) return;
    this.es?.close();
    const es = new EventSource(this.url());
    this.es = es;
    this.setState(this.reopens || this.lastEventId ? "reconnecting" : "connecting");
    for (const name of GENERATION_EVENTS) {
      es.addEventListener(name, (e) => {
        if (es === this.es && e instanceof MessageEvent) this.dispatch(name, e);
      });
    }
    es.addEventListener("open", () => {
      if (es !== this.es) return;
      this.reopens = 0;
      this.setState("open");
    });
    es.addEventListener("error", (e) => {
      // `event: error` frames arrive as MessageEvents (handled above); this is the connection.
      if (e instanceof MessageEvent || es !== this.es || this.finished) return;
      if (es.readyState === EventSource.CONNECTING) {
        this.setState("reconnecting");
        return;
      }
      es.close();
      this.scheduleReopen();
    });
  }

  scheduleReopen() {
    if (this.finished || this.timer) return;
    if (this.reopens >= this.maxReopens) {
      this.setState("failed");
      return;
    }
    const delay = Math.min(10_000, 400 * 2 ** this.reopens) * (0.75 + Math.random() * 0.5);
    this.reopens += 1;
    this.setState("reconnecting", { delay });
    this.timer = setTimeout(() => this.open(), delay);
  }

  /** Re-open at once (a "Reconnect" button, the browser going back online). */
  reopenNow() {
    if (this.finished) return;
    this.reopens = 0;
    this.open();
  }

  dispatch(name, e) {
    const id = e.lastEventId || null;
    // A `gap` has no id of its own (lastEventId still holds the previous one): never dedupe it.
    if (name !== "gap" && id) {
      if (this.seen.has(id)) return;
      this.seen.add(id);
      this.lastEventId = id;
    }
    let data = e.data;
    try {
      data = JSON.parse(e.data);
    } catch {
      /* plain text */
    }
    const terminal = name === "done" || name === "error";
    if (terminal) this.close("closed");
    this.onEvent(name, data, id);
  }

  setState(state, detail) {
    this.state = state;
    this.onState(state, detail);
  }

  /** Stop listening (the generation itself keeps running unless someone DELETEs it). */
  close(state = "closed") {
    this.finished = true;
    clearTimeout(this.timer);
    this.timer = 0;
    this.es?.close();
    window.removeEventListener("online", this._online);
    this.setState(state);
  }
}
