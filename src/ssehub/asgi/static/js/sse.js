// A Server-Sent Events reader on fetch(), for the hub console.
//
// Why not EventSource: it only delivers events whose name the page registered a listener
// for, and a console must show events of any name (and heartbeats, and retry hints).
// This follows the WHATWG parsing rules (BOM stripped by TextDecoder, CR / LF / CRLF line
// ends even across chunks, one space after the colon dropped, `retry` only when all digits,
// `id` with NUL ignored, dispatch at a blank line, no dispatch for an empty data buffer,
// an unterminated event at end of stream discarded) and reconnects like EventSource:
// after the `retry` delay, with the last event ID in the `Last-Event-ID` header.
//
// The last event ID is the WHATWG one: any `id:` field sets the buffer (an id with NUL is
// ignored), and every blank line makes the buffer the stream's last event ID, whether or
// not an event is dispatched. A hub stream opened without a resume id starts with
// `retry: 2000\nid: X\n` and no blank line (a blank line there is an empty event to
// httpx-sse, the OpenAI SDK and fetch-event-source): the position X comes in the
// `SSEHub-Start-Id` response header too, and a reconnect before the first event resumes
// from it.
//
// `topic:` fields (sent when the subscription asks with `topic_field=1`) are not WHATWG
// fields, so EventSource ignores them; this parser hands them over as `topics`: the topics
// of the subscription that the event was published to.

export class SSEParser {
  constructor({ onEvent = () => {}, onComment = () => {}, onRetry = () => {} } = {}) {
    this.onEvent = onEvent;
    this.onComment = onComment;
    this.onRetry = onRetry;
    this.buffer = "";
    this.skipLF = false;
    this.data = "";
    this.hasData = false;
    this.type = "";
    this.topics = []; // `topic:` fields of the current block (ssehub's own)
    this.idBuffer = ""; // the last event ID buffer: set by id fields
    this.lastEventId = ""; // the stream's last event ID: the buffer at each blank line
  }

  /** Resume from `id` (as if an earlier connection had ended with it). */
  resumeFrom(id) {
    this.idBuffer = id;
    this.lastEventId = id;
  }

  feed(text) {
    const s = this.buffer + text;
    let start = 0;
    if (this.skipLF && s.startsWith("\n", 0)) start = 1;
    this.skipLF = false;
    for (;;) {
      let i = start;
      while (i < s.length && s[i] !== "\n" && s[i] !== "\r") i++;
      if (i >= s.length) break;
      const line = s.slice(start, i);
      if (s[i] === "\r") {
        if (i + 1 < s.length) start = s[i + 1] === "\n" ? i + 2 : i + 1;
        else {
          start = i + 1;
          this.skipLF = true; // a CR at the end of a chunk: an LF may follow in the next one
        }
      } else start = i + 1;
      this.line(line);
    }
    this.buffer = s.slice(start);
  }

  line(line) {
    if (line === "") {
      // "Set the last event ID string of the event source to the value of the last event
      // ID buffer" happens before the empty-data check: an id-only block counts.
      // (ssehub sends none — the opening position comes in a header — but other servers do.)
      this.lastEventId = this.idBuffer;
      if (this.hasData) {
        const data = this.data.endsWith("\n") ? this.data.slice(0, -1) : this.data;
        this.onEvent({ type: this.type || "message", data, id: this.lastEventId, topics: this.topics });
      }
      this.data = "";
      this.hasData = false;
      this.type = "";
      this.topics = [];
      return;
    }
    if (line[0] === ":") {
      this.onComment(line.slice(1).replace(/^ /, ""));
      return;
    }
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value[0] === " ") value = value.slice(1);
    if (field === "event") this.type = value;
    else if (field === "data") {
      this.data += `${value}\n`;
      this.hasData = true;
    } else if (field === "id") {
      if (!value.includes("\0")) this.idBuffer = value;
    } else if (field === "topic") {
      this.topics.push(value);
    } else if (field === "retry") {
      if (/^[0-9]+$/.test(value)) this.onRetry(Number(value));
    }
  }

  /** End of stream: an unterminated event is discarded (its id too). */
  reset() {
    this.buffer = "";
    this.skipLF = false;
    this.data = "";
    this.hasData = false;
    this.type = "";
    this.topics = [];
    this.idBuffer = this.lastEventId;
  }
}

/**
 * A subscription that reconnects until closed.
 * handlers: onEvent({type, data, id}), onState(state, detail), onComment(text)
 * states: "connecting" | "open" | "reconnecting" | "failed" | "closed"
 */
export class FetchEventSource {
  constructor(url, { lastEventId = "", onEvent = () => {}, onState = () => {}, onComment = () => {}, fetch: fetchFn = null } = {}) {
    this.url = url;
    this.fetch = fetchFn || ((...args) => fetch(...args));
    this.lastEventId = lastEventId;
    this.retry = 2000;
    this.onEvent = onEvent;
    this.onState = onState;
    this.onComment = onComment;
    this.controller = null;
    this.closed = false;
    this.failures = 0;
    this.run();
  }

  async run() {
    while (!this.closed) {
      this.controller = new AbortController();
      const parser = new SSEParser({
        onEvent: (e) => this.onEvent(e),
        onComment: (c) => this.onComment(c),
        onRetry: (ms) => (this.retry = ms),
      });
      parser.resumeFrom(this.lastEventId);
      const headers = { Accept: "text/event-stream" };
      if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
      let fatal = null;
      try {
        this.onState(this.failures || this.lastEventId ? "reconnecting" : "connecting");
        const resp = await this.fetch(this.url, { headers, cache: "no-store", signal: this.controller.signal });
        const type = resp.headers.get("content-type") || "";
        if (!resp.ok || !type.startsWith("text/event-stream")) {
          let message = `HTTP ${resp.status}`;
          try {
            const body = await resp.json();
            if (body?.error) message = `${body.error} (HTTP ${resp.status})`;
          } catch {
            /* not JSON */
          }
          // Client errors will not heal by retrying; server errors may.
          if (resp.status < 500) fatal = message;
          else throw new Error(message);
        } else {
          this.failures = 0;
          // a stream opened without a resume id says where it starts
          const start = resp.headers.get("ssehub-start-id");
          if (start && !this.lastEventId) {
            this.lastEventId = start;
            parser.resumeFrom(start);
          }
          this.onState("open");
          const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            parser.feed(value);
            this.lastEventId = parser.lastEventId; // kept for the reconnect
          }
          parser.reset();
        }
      } catch (err) {
        if (this.closed) break;
        this.failures += 1;
        this.onState("reconnecting", { error: String(err?.message || err) });
      }
      if (fatal) {
        this.closed = true;
        this.onState("failed", { error: fatal });
        return;
      }
      if (this.closed) break;
      const backoff = this.failures ? Math.min(30_000, this.retry * 2 ** Math.min(this.failures - 1, 4)) : this.retry;
      this.onState("reconnecting", { delay: backoff });
      await new Promise((r) => setTimeout(r, backoff * (0.8 + Math.random() * 0.4)));
    }
    this.onState("closed");
  }

  close() {
    this.closed = true;
    this.controller?.abort();
  }
}
