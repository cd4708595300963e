// One running answer: POST /chat, follow the generation's events (genstream.js), stop it,
// and decide how it ends. Every status change goes through the store's state machine.

import { GenerationStream } from "./genstream.js";
import { app, els } from "./state.js";
import { Status, persist, saveSoon, setStatus } from "./store.js";
import { authFetch } from "./token.js";

const STOP_TIMEOUT = 5000; // ms to wait for `done` after DELETE before giving up
// gap reasons that mean the hub no longer knows the generation (a restart of a memory hub,
// an id it never handed out): nothing more will come, the answer is lost
const LOST_REASONS = new Set(["other-epoch", "unknown-id", "future-id"]);

export async function errorText(resp) {
  let message = "";
  try {
    const body = await resp.json();
    message = body?.error?.message || body?.error || body?.detail || "";
  } catch {
    /* not JSON */
  }
  if (typeof message !== "string") message = JSON.stringify(message);
  const hints = {
    400: "The server did not accept this request.",
    401: "You need a token for this hub.",
    403: "Your token does not allow this.",
    404: "Unknown model or provider.",
    413: "The conversation is too long to send.",
    429: "Too many requests: wait a moment and retry.",
    502: "The model provider failed.",
    503: "The server is busy or has no capacity right now.",
  };
  return message || hints[resp.status] || `HTTP ${resp.status}`;
}

/** The events URL from POST /chat, made relative to where this page is mounted. */
export function eventsUrl(events, topic) {
  if (!events) return `subscribe?topic=${encodeURIComponent(topic)}&last_event_id=earliest`;
  const base = new URL(".", document.baseURI).pathname;
  if (events.startsWith("/") && !events.startsWith("//") && base !== "/" && !events.startsWith(base)) {
    return base + events.slice(1);
  }
  return events;
}

export class Run {
  constructor(chat, msg) {
    this.chat = chat;
    this.msg = msg;
    this.view = null;
    this.stream = null;
    this.stopRequested = false;
    this.stopTimer = 0;
  }

  /** POST /chat with the conversation, then follow the generation's events. */
  async begin(messages) {
    const body = { messages };
    const choice = app.models[Number(els.model.value)];
    if (choice) {
      body.model = choice.id;
      if (choice.provider) body.provider = choice.provider;
    }
    let resp;
    try {
      resp = await authFetch("chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
    } catch {
      this.fail({ message: "Could not reach the server. Check your connection and retry.", status: null });
      return;
    }
    if (!resp.ok) {
      this.fail({ message: await errorText(resp), status: resp.status });
      return;
    }
    let info;
    try {
      info = await resp.json();
    } catch {
      this.fail({ message: "The server sent an unreadable answer.", status: resp.status });
      return;
    }
    this.msg.gen = { id: info.id, topic: info.topic, events: eventsUrl(info.events, info.topic), lastEventId: null };
    persist(this.chat);
    this.attach();
    if (this.stopRequested) this.stop();
  }

  /** Follow the generation in msg.gen (also after a reload: resumes after lastEventId). */
  attach() {
    const gen = this.msg.gen;
    this.stream = new GenerationStream(gen.events, {
      lastEventId: gen.lastEventId,
      onEvent: (name, data, id) => this.onEvent(name, data, id),
      onState: (state) => this.onState(state),
    }).start();
  }

  onEvent(name, data, id) {
    const msg = this.msg;
    const view = this.view;
    const obj = data && typeof data === "object" ? data : null;
    const text = typeof obj?.text === "string" ? obj.text : "";
    switch (name) {
      case "start":
        if (obj) {
          msg.model = obj.model || msg.model;
          msg.provider = obj.provider || msg.provider;
        }
        view?.update();
        break;
      case "reasoning":
        if (!text) break;
        msg.reasoning = (msg.reasoning || "") + text;
        view?.appendReasoning(text);
        if (msg.reasoning.length === text.length) view?.update();
        break;
      case "content":
        if (!text) break;
        if (!msg.content) {
          if (msg.reasoning && msg.thoughtMs == null) msg.thoughtMs = Date.now() - (msg.startedAt || Date.now());
          if (msg.reasoning) view?.collapseReasoning();
        }
        msg.content = (msg.content || "") + text;
        view?.appendContent(text);
        if (msg.content.length === text.length) view?.update();
        break;
      case "usage":
        msg.usage = data;
        break;
      case "gap":
        if (LOST_REASONS.has(obj?.reason)) {
          this.lose("the server no longer has this answer (it restarted or forgot it).");
          return;
        }
        msg.gaps = (msg.gaps || 0) + 1;
        view?.update();
        break;
      case "done":
        msg.finish = obj?.finish_reason || "stop";
        if (msg.finish === "cancelled" && !this.stopRequested) {
          // nobody here pressed stop: the server ended it (a restart, or a stop elsewhere)
          this.lose("the server stopped this answer before it was complete (it may have restarted).");
        } else {
          this.end(msg.finish === "cancelled" ? Status.STOPPED : Status.DONE);
        }
        return;
      case "error": {
        const message = (obj ? obj.message : String(data || "")) || "The model provider failed.";
        if (/generation lost/i.test(message)) {
          this.lose(message);
          return;
        }
        msg.error = { message, status: obj?.status ?? null };
        this.end(Status.ERROR);
        return;
      }
      default:
        break;
    }
    if (id && msg.gen) msg.gen.lastEventId = id;
    saveSoon(this.chat);
  }

  onState(state) {
    if (state === "failed" && this.msg.status === Status.STREAMING) {
      setStatus(this.msg, Status.INTERRUPTED);
      persist(this.chat);
    }
    if (!this.view) return;
    this.view.connection = state;
    this.view.update();
    app.changed();
  }

  reconnect() {
    setStatus(this.msg, Status.STREAMING);
    this.view?.update();
    this.stream?.reopenNow();
    app.changed();
  }

  fail(error) {
    this.msg.error = error;
    this.end(Status.ERROR);
  }

  /** The generation cannot be resumed: keep what arrived, say why, offer Retry. */
  lose(reason) {
    this.msg.lost = reason;
    this.end(Status.LOST);
  }

  /** DELETE /chat/{id}: the server cancels the upstream call and ends the topic with done. */
  async stop() {
    this.stopRequested = true;
    if (this.view) {
      this.view.stopping = true;
      this.view.update();
    }
    const gen = this.msg.gen;
    if (!gen) return; // POST still in flight: begin() calls stop() again once it has an id
    clearTimeout(this.stopTimer);
    this.stopTimer = setTimeout(() => this.end(Status.STOPPED), STOP_TIMEOUT);
    try {
      const resp = await authFetch(`chat/${encodeURIComponent(gen.id)}`, { method: "DELETE" });
      // 404: already finished; its terminal event is on its way (or was missed).
      if (resp.status === 404) {
        clearTimeout(this.stopTimer);
        this.stopTimer = setTimeout(() => this.end(Status.STOPPED), 1500);
      }
    } catch {
      /* the timer ends it locally */
    }
  }

  end(status) {
    clearTimeout(this.stopTimer);
    if (app.running.get(this.chat.id) !== this) return;
    app.running.delete(this.chat.id);
    this.stream?.close();
    const msg = this.msg;
    setStatus(msg, status);
    if (status === Status.STOPPED && !msg.finish) msg.finish = "cancelled";
    delete msg.gen;
    persist(this.chat);
    if (this.view) {
      this.view.stopping = false;
      this.view.connection = "";
      this.view.finish();
    }
    app.changed();
  }
}
