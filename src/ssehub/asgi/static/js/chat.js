// The chat page: conversations (localStorage), model picker, streaming answers with resume.
//
// Safety rules kept throughout: user text is only ever inserted with textContent; model
// output only through markdown.js (markdown-it -> DOMPurify -> DocumentFragment).

import { GenerationStream } from "./genstream.js";
import { MarkdownStream, icon, renderInto } from "./markdown.js";
import * as store from "./store.js";

const $ = (sel) => document.querySelector(sel);
const els = {
  list: $("#chat-list"),
  listEmpty: $("#chat-list-empty"),
  newChat: $("#new-chat"),
  menu: $("#menu"),
  sidebar: $("#sidebar"),
  scrim: $("#scrim"),
  title: $("#chat-title"),
  model: $("#model"),
  scroller: $("#scroller"),
  messages: $("#messages"),
  welcome: $("#welcome"),
  suggestions: $("#suggestions"),
  jump: $("#jump"),
  form: $("#composer"),
  prompt: $("#prompt"),
  send: $("#send"),
  stop: $("#stop"),
  toast: $("#toast"),
};

const SAVE_DELAY = 400; // ms between localStorage writes of a streaming chat
const STOP_TIMEOUT = 5000; // ms to wait for `done` after DELETE before giving up

let current = store.createChat();
const cache = new Map(); // chat id -> chat object (one object per chat while this tab uses it)
const running = new Map(); // chat id -> Run
let models = [];
let pinned = true;

// ---------------------------------------------------------------- helpers

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

function button(cls, label, iconId, text) {
  const b = el("button", cls);
  b.type = "button";
  b.setAttribute("aria-label", label);
  b.title = label;
  if (iconId) b.append(icon(iconId));
  if (text) b.append(el("span", "", text));
  return b;
}

function getChat(id) {
  if (current.id === id) return current;
  let chat = cache.get(id);
  if (!chat) {
    chat = store.loadChat(id);
    if (chat) cache.set(id, chat);
  }
  return chat;
}

const saveTimers = new Map();
function saveSoon(chat) {
  if (saveTimers.has(chat.id)) return;
  saveTimers.set(
    chat.id,
    setTimeout(() => {
      saveTimers.delete(chat.id);
      persist(chat);
    }, SAVE_DELAY),
  );
}

function persist(chat) {
  clearTimeout(saveTimers.get(chat.id));
  saveTimers.delete(chat.id);
  if (!chat.messages.length || chat.deleted) return;
  const last = chat.messages[chat.messages.length - 1];
  chat.running = last.role === "assistant" && (last.status === "streaming" || last.status === "interrupted");
  if (!store.saveChat(chat)) toast("Browser storage is full: this conversation is not saved.");
}

function flushSaves() {
  for (const id of [...saveTimers.keys()]) {
    const chat = getChat(id);
    if (chat) persist(chat);
  }
}

let toastTimer = 0;
function toast(text, action) {
  els.toast.replaceChildren(el("span", "", text));
  if (action) {
    const b = el("button", "toast-action", action.label);
    b.type = "button";
    b.addEventListener("click", () => {
      els.toast.hidden = true;
      action.run();
    });
    els.toast.append(b);
  }
  els.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (els.toast.hidden = true), action ? 6000 : 3500);
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Not a secure context, or no permission: the old way.
    const area = el("textarea", "offscreen");
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

function flashCopied(btn) {
  const label = btn.querySelector("span");
  const old = label?.textContent;
  btn.classList.add("copied");
  btn.querySelector("use")?.setAttribute("href", "#i-check");
  if (label) label.textContent = "Copied";
  setTimeout(() => {
    btn.classList.remove("copied");
    btn.querySelector("use")?.setAttribute("href", "#i-copy");
    if (label) label.textContent = old;
  }, 1500);
}

async function errorText(resp) {
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
    401: "You need to sign in (no valid token).",
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
function eventsUrl(events, topic) {
  if (!events) return `subscribe?topic=${encodeURIComponent(topic)}&last_event_id=earliest`;
  const base = new URL(".", document.baseURI).pathname;
  if (events.startsWith("/") && !events.startsWith("//") && base !== "/" && !events.startsWith(base)) {
    return base + events.slice(1);
  }
  return events;
}

function seconds(ms) {
  const s = Math.max(1, Math.round(ms / 1000));
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
}

function relativeTime(ts) {
  const d = (Date.now() - ts) / 1000;
  if (d < 60) return "just now";
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return new Date(ts).toLocaleDateString();
}

// ---------------------------------------------------------------- message views

class UserView {
  constructor(msg) {
    this.node = el("article", "msg user");
    this.node.setAttribute("aria-label", "You");
    const bubble = el("div", "bubble");
    bubble.textContent = msg.content; // user text is text, always
    this.node.append(bubble);
  }
}

class AssistantView {
  constructor(chat, msg) {
    this.chat = chat;
    this.msg = msg;
    this.stream = null;
    const node = (this.node = el("article", "msg assistant"));
    node.setAttribute("aria-label", "Assistant");
    const avatar = el("div", "avatar");
    avatar.append(icon("i-logo", "icon logo"));
    const body = el("div", "msg-body");
    const head = el("div", "msg-head");
    this.modelName = el("span", "model-name");
    this.status = el("span", "msg-status");
    this.status.setAttribute("role", "status");
    head.append(this.modelName, this.status);

    this.reasoning = el("details", "reasoning");
    this.reasoning.hidden = true;
    const summary = el("summary");
    this.reasoningLabel = el("span", "reasoning-label", "Thinking…");
    summary.append(icon("i-bulb", "icon bulb"), this.reasoningLabel, icon("i-chevron", "icon chevron"));
    this.reasoningText = el("div", "reasoning-text");
    this.reasoningNode = document.createTextNode("");
    this.reasoningText.append(this.reasoningNode);
    this.reasoning.append(summary, this.reasoningText);

    this.answer = el("div", "answer markdown");
    this.notice = el("div", "notice");
    this.notice.hidden = true;

    this.foot = el("div", "msg-foot");
    this.copyBtn = button("ghost-btn copy-answer", "Copy answer", "i-copy", "Copy");
    this.regenBtn = button("ghost-btn regenerate", "Regenerate answer", "i-redo", "Regenerate");
    this.usage = el("span", "usage muted small");
    this.foot.append(this.copyBtn, this.regenBtn, this.usage);

    body.append(head, this.reasoning, this.answer, this.notice, this.foot);
    node.append(avatar, body);
    this.update();
  }

  /** Render the message as it is now (not streaming). */
  renderStatic() {
    this.stream = null;
    this.answer.classList.remove("streaming", "waiting");
    renderInto(this.answer, this.msg.content || "");
    this.setReasoning(this.msg.reasoning || "");
    this.update();
  }

  /** Begin live rendering from what the message holds already. */
  startStreaming() {
    this.stream = new MarkdownStream(this.answer, this.msg.content || "");
    this.stream.onRender = () => afterRender(this);
    this.setReasoning(this.msg.reasoning || "");
    this.update();
  }

  setReasoning(text) {
    this.reasoningNode.data = text;
    this.reasoning.hidden = !text;
    if (text && !this.msg.content && this.msg.status === "streaming") this.reasoning.open = true;
  }

  appendReasoning(text) {
    this.reasoningNode.appendData(text);
    if (this.reasoning.hidden) {
      this.reasoning.hidden = false;
      this.reasoning.open = true;
    }
    afterRender(this);
  }

  appendContent(text) {
    if (!this.stream) this.startStreaming();
    this.stream.append(text);
  }

  collapseReasoning() {
    this.reasoning.open = false;
    this.update();
  }

  finish() {
    if (this.stream) this.stream.finish();
    else renderInto(this.answer, this.msg.content || "");
    this.stream = null;
    this.update();
    afterRender(this);
  }

  /** Sync everything but the answer text with the message. */
  update() {
    const msg = this.msg;
    const streaming = msg.status === "streaming";
    this.node.setAttribute("aria-busy", String(streaming));
    this.node.dataset.status = msg.status || "done";
    this.modelName.textContent = msg.model || "";
    this.answer.classList.toggle("streaming", streaming);
    this.answer.classList.toggle("waiting", streaming && !msg.content);

    if (msg.reasoning) {
      const thinking = streaming && !msg.content;
      this.reasoningLabel.textContent = thinking
        ? "Thinking…"
        : msg.thoughtMs != null
          ? `Thought for ${seconds(msg.thoughtMs)}`
          : "Reasoning";
      this.reasoning.classList.toggle("thinking", thinking);
    }

    let status = "";
    if (streaming && this.connection === "reconnecting") status = "Reconnecting…";
    else if (streaming && this.stopping) status = "Stopping…";
    else if (msg.status === "stopped") status = "Stopped";
    else if (msg.finish === "length") status = "Cut off at the token limit";
    this.status.textContent = status;

    this.renderNotice();
    const last = this.chat.messages[this.chat.messages.length - 1] === msg;
    this.foot.hidden = streaming;
    this.copyBtn.hidden = !msg.content;
    this.regenBtn.hidden = !last || running.has(this.chat.id) || msg.status === "error";
    const u = msg.usage;
    this.usage.textContent = u && u.completion_tokens != null ? `${u.completion_tokens} tokens` : "";
  }

  renderNotice() {
    const msg = this.msg;
    const parts = [];
    let kind = "";
    let action = null;
    if (msg.status === "error" && msg.error) {
      kind = "error";
      const code = msg.error.status ? ` (HTTP ${msg.error.status})` : "";
      parts.push(`${msg.error.message || "The generation failed."}${code}`);
      action = { cls: "retry", label: "Retry" };
    } else if (msg.status === "interrupted") {
      kind = "error";
      parts.push("Connection lost. The answer may still be running on the server.");
      action = { cls: "reconnect", label: "Reconnect" };
    } else if (msg.gaps) {
      kind = "warning";
      parts.push("Part of this answer could not be replayed (the server no longer had it).");
    }
    this.notice.hidden = !kind;
    if (!kind) return;
    this.notice.className = `notice ${kind}`;
    this.notice.setAttribute("role", kind === "error" ? "alert" : "status");
    const text = el("span", "notice-text", parts.join(" "));
    const items = [icon("i-alert"), text];
    if (action) {
      const b = el("button", `btn btn-small ${action.cls}`, action.label);
      b.type = "button";
      items.push(b);
    }
    this.notice.replaceChildren(...items);
  }
}

function afterRender(view) {
  if (view.chat === current && pinned) scrollToBottom();
}

function scrollToBottom() {
  els.scroller.scrollTop = els.scroller.scrollHeight;
}

// ---------------------------------------------------------------- a running generation

class Run {
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
    const choice = models[Number(els.model.value)];
    if (choice) {
      body.model = choice.id;
      if (choice.provider) body.provider = choice.provider;
    }
    let resp;
    try {
      resp = await fetch("chat", {
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
    const text = data && typeof data === "object" && typeof data.text === "string" ? data.text : "";
    switch (name) {
      case "start":
        if (data && typeof data === "object") {
          msg.model = data.model || msg.model;
          msg.provider = data.provider || msg.provider;
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
        msg.gaps = (msg.gaps || 0) + 1;
        view?.update();
        break;
      case "done":
        msg.finish = data?.finish_reason || "stop";
        this.end(msg.finish === "cancelled" ? "stopped" : "done");
        return;
      case "error":
        msg.error = {
          message: (data && typeof data === "object" ? data.message : String(data || "")) || "The model provider failed.",
          status: data?.status ?? null,
        };
        this.end("error");
        return;
      default:
        break;
    }
    if (id && msg.gen) msg.gen.lastEventId = id;
    saveSoon(this.chat);
  }

  onState(state) {
    if (!this.view) return;
    if (state === "failed" && this.msg.status === "streaming") {
      this.msg.status = "interrupted";
      persist(this.chat);
    }
    this.view.connection = state;
    this.view.update();
    refreshComposer();
  }

  reconnect() {
    this.msg.status = "streaming";
    this.view?.update();
    this.stream?.reopenNow();
    refreshComposer();
  }

  fail(error) {
    this.msg.error = error;
    this.end("error");
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
    this.stopTimer = setTimeout(() => this.end("stopped"), STOP_TIMEOUT);
    try {
      const resp = await fetch(`chat/${encodeURIComponent(gen.id)}`, { method: "DELETE" });
      // 404: already finished; its terminal event is on its way (or was missed).
      if (resp.status === 404) {
        clearTimeout(this.stopTimer);
        this.stopTimer = setTimeout(() => this.end("stopped"), 1500);
      }
    } catch {
      /* the timer ends it locally */
    }
  }

  end(status) {
    clearTimeout(this.stopTimer);
    if (running.get(this.chat.id) !== this) return;
    running.delete(this.chat.id);
    this.stream?.close();
    const msg = this.msg;
    msg.status = status;
    if (status === "stopped" && !msg.finish) msg.finish = "cancelled";
    delete msg.gen;
    persist(this.chat);
    if (this.view) {
      this.view.stopping = false;
      this.view.finish();
    }
    if (this.chat === current) rerenderFooters();
    refreshComposer();
    renderSidebar();
  }
}

// ---------------------------------------------------------------- conversation

function renderChat() {
  const chat = current;
  els.title.textContent = chat.title || "New chat";
  document.title = chat.title ? `${chat.title} · ssehub` : "ssehub chat";
  const views = [];
  const run = running.get(chat.id);
  for (const msg of chat.messages) {
    if (msg.role === "user") {
      views.push(new UserView(msg));
      continue;
    }
    const view = new AssistantView(chat, msg);
    if (run && run.msg === msg) {
      run.view = view;
      view.connection = run.stream?.state;
      view.startStreaming();
    } else {
      view.renderStatic();
    }
    views.push(view);
  }
  for (const r of running.values()) if (r.chat !== chat) r.view = null;
  els.messages.replaceChildren(...views.map((v) => v.node));
  els.messages.viewsByNode = new WeakMap(views.map((v) => [v.node, v]));
  els.welcome.hidden = chat.messages.length > 0;
  pinned = true;
  scrollToBottom();
  refreshComposer();
  renderSidebar();
}

function rerenderFooters() {
  for (const node of els.messages.children) els.messages.viewsByNode?.get(node)?.update?.();
}

function viewOf(node) {
  const article = node.closest("article.msg");
  return article && els.messages.viewsByNode?.get(article);
}

function openChat(id) {
  const chat = getChat(id);
  if (!chat) return;
  current = chat;
  cache.set(chat.id, chat);
  history.replaceState(null, "", `#${chat.id}`);
  renderChat();
  closeDrawer();
}

function newChat() {
  if (!current.messages.length) {
    els.prompt.focus();
    closeDrawer();
    return;
  }
  current = store.createChat();
  history.replaceState(null, "", location.pathname + location.search);
  renderChat();
  closeDrawer();
  els.prompt.focus();
}

function deleteChat(id) {
  const chat = getChat(id);
  if (!chat) return;
  flushSaves();
  chat.deleted = true;
  running.get(id)?.stop();
  store.deleteChat(id);
  cache.delete(id);
  if (current.id === id) {
    current = store.createChat();
    history.replaceState(null, "", location.pathname + location.search);
    renderChat();
  } else {
    renderSidebar();
  }
  toast(`Deleted “${chat.title || "New chat"}”`, {
    label: "Undo",
    run: () => {
      delete chat.deleted;
      delete chat.running;
      for (const m of chat.messages) if (m.status === "streaming") Object.assign(m, { status: "stopped", finish: "cancelled", gen: undefined });
      store.saveChat(chat, { touch: false });
      renderSidebar();
    },
  });
}

/** The messages sent to POST /chat: the whole conversation before `upTo`. */
function conversation(chat, upTo) {
  const out = [];
  for (const m of chat.messages.slice(0, upTo)) {
    if (m.role === "user") out.push({ role: "user", content: m.content });
    else if (m.role === "assistant" && m.content) out.push({ role: "assistant", content: m.content });
  }
  return out;
}

function startRun(chat) {
  const msg = { role: "assistant", content: "", reasoning: "", status: "streaming", startedAt: Date.now() };
  chat.messages.push(msg);
  persist(chat);
  const run = new Run(chat, msg);
  running.set(chat.id, run);
  if (chat === current) {
    const view = new AssistantView(chat, msg);
    run.view = view;
    els.messages.append(view.node);
    els.messages.viewsByNode.set(view.node, view);
    view.startStreaming();
    rerenderFooters();
    pinned = true;
    scrollToBottom();
  }
  refreshComposer();
  renderSidebar();
  run.begin(conversation(chat, chat.messages.length - 1));
}

function send(text) {
  const chat = current;
  if (!text.trim()) return;
  const run = running.get(chat.id);
  if (run) {
    if (run.msg.status !== "interrupted") return;
    run.end("stopped"); // an interrupted answer is final once the user moves on
  }
  if (!chat.title) chat.title = store.titleFor(text);
  const msg = { role: "user", content: text };
  chat.messages.push(msg);
  cache.set(chat.id, chat);
  if (!location.hash.endsWith(chat.id)) history.replaceState(null, "", `#${chat.id}`);
  els.title.textContent = chat.title;
  document.title = `${chat.title} · ssehub`;
  els.welcome.hidden = true;
  els.messages.append(new UserView(msg).node);
  els.prompt.value = "";
  autoGrow();
  startRun(chat);
}

function regenerate(view) {
  const chat = view.chat;
  if (running.has(chat.id)) return;
  const i = chat.messages.indexOf(view.msg);
  if (i < 0) return;
  chat.messages.splice(i, 1);
  view.node.remove();
  startRun(chat);
}

// ---------------------------------------------------------------- sidebar

function renderSidebar() {
  const entries = store.listChats();
  const items = entries.map((entry) => {
    const li = el("li", "chat-item");
    const open = el("button", "chat-open");
    open.type = "button";
    open.dataset.id = entry.id;
    if (entry.id === current.id) {
      li.classList.add("active");
      open.setAttribute("aria-current", "page");
    }
    const row = el("span", "chat-item-row");
    if (running.has(entry.id)) {
      const dot = el("span", "live-dot");
      dot.setAttribute("aria-label", "answering");
      dot.setAttribute("role", "img");
      row.append(dot);
    }
    row.append(el("span", "chat-item-title", entry.title || "New chat"));
    open.append(row, el("span", "chat-item-time", relativeTime(entry.updated)));
    const del = button("chat-delete icon-btn", `Delete chat “${entry.title || "New chat"}”`, "i-trash");
    del.dataset.id = entry.id;
    li.append(open, del);
    return li;
  });
  els.list.replaceChildren(...items);
  els.listEmpty.hidden = items.length > 0;
}

function openDrawer() {
  document.body.classList.add("drawer-open");
  els.scrim.hidden = false;
  els.menu.setAttribute("aria-expanded", "true");
  els.sidebar.querySelector("button")?.focus();
}

function closeDrawer() {
  if (!document.body.classList.contains("drawer-open")) return;
  document.body.classList.remove("drawer-open");
  els.scrim.hidden = true;
  els.menu.setAttribute("aria-expanded", "false");
}

// ---------------------------------------------------------------- composer

function autoGrow() {
  const ta = els.prompt;
  ta.style.height = "auto";
  ta.style.height = `${Math.min(ta.scrollHeight, Math.round(window.innerHeight * 0.4))}px`;
  refreshComposer();
}

function refreshComposer() {
  const run = running.get(current.id);
  const busy = !!run && run.msg.status === "streaming";
  els.stop.hidden = !busy;
  els.send.hidden = busy;
  els.send.disabled = !els.prompt.value.trim() || busy;
}

// ---------------------------------------------------------------- models

async function loadModels() {
  let list = [];
  try {
    const resp = await fetch("v1/models", { headers: { Accept: "application/json" } });
    if (resp.ok) {
      const body = await resp.json();
      list = Array.isArray(body) ? body : Array.isArray(body?.data) ? body.data : Array.isArray(body?.models) ? body.models : [];
    }
  } catch {
    /* keep the default entry */
  }
  models = list
    .map((m) => (typeof m === "string" ? { id: m } : m))
    .filter((m) => m && typeof m.id === "string")
    .map((m) => ({ id: m.id, provider: m.provider ?? null, label: m.name || m.id, owner: m.provider || m.owned_by || "" }));
  if (!models.length) return;
  const prefs = store.loadPrefs();
  const groups = new Map();
  models.forEach((m, i) => {
    const key = m.owner || "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push([m, i]);
  });
  const options = [];
  for (const [owner, items] of groups) {
    const parent = groups.size > 1 && owner ? el("optgroup") : null;
    if (parent) parent.label = owner;
    for (const [m, i] of items) {
      const opt = el("option", "", m.label);
      opt.value = String(i);
      if (m.id === prefs.model && (m.provider ?? null) === (prefs.provider ?? null)) opt.selected = true;
      (parent || { append: (o) => options.push(o) }).append(opt);
    }
    if (parent) options.push(parent);
  }
  els.model.replaceChildren(...options);
  els.model.title = els.model.selectedOptions[0]?.textContent || "";
}

// ---------------------------------------------------------------- start-up

function resumeRunning() {
  for (const entry of store.listChats()) {
    if (!entry.running && entry.id !== location.hash.slice(1)) continue;
    const chat = getChat(entry.id);
    const msg = chat?.messages[chat.messages.length - 1];
    if (!msg || msg.role !== "assistant" || !["streaming", "interrupted"].includes(msg.status)) continue;
    msg.status = "streaming";
    if (!msg.gen) {
      msg.status = "error";
      msg.error = { message: "The page was closed before the answer started.", status: null };
      persist(chat);
      continue;
    }
    const run = new Run(chat, msg);
    running.set(chat.id, run);
    run.attach();
  }
}

function wire() {
  els.form.addEventListener("submit", (e) => {
    e.preventDefault();
    send(els.prompt.value);
  });
  els.prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      send(els.prompt.value);
    }
  });
  els.prompt.addEventListener("input", autoGrow);
  els.stop.addEventListener("click", () => running.get(current.id)?.stop());
  els.newChat.addEventListener("click", newChat);
  els.menu.addEventListener("click", () =>
    document.body.classList.contains("drawer-open") ? closeDrawer() : openDrawer(),
  );
  els.scrim.addEventListener("click", closeDrawer);
  els.model.addEventListener("change", () => {
    const m = models[Number(els.model.value)];
    store.savePrefs({ model: m?.id ?? null, provider: m?.provider ?? null });
    els.model.title = els.model.selectedOptions[0]?.textContent || "";
  });
  els.suggestions.addEventListener("click", (e) => {
    const b = e.target.closest(".suggestion");
    if (b) send(b.textContent);
  });
  els.list.addEventListener("click", (e) => {
    const del = e.target.closest(".chat-delete");
    if (del) return deleteChat(del.dataset.id);
    const open = e.target.closest(".chat-open");
    if (open) openChat(open.dataset.id);
  });
  els.messages.addEventListener("click", async (e) => {
    const target = e.target.closest("button");
    if (!target) return;
    if (target.classList.contains("copy-code")) {
      const code = target.closest(".codeblock")?.querySelector("pre");
      if (code && (await copyText(code.textContent))) flashCopied(target);
      return;
    }
    const view = viewOf(target);
    if (!view) return;
    if (target.classList.contains("copy-answer")) {
      if (await copyText(view.msg.content || "")) flashCopied(target);
    } else if (target.classList.contains("regenerate") || target.classList.contains("retry")) {
      regenerate(view);
    } else if (target.classList.contains("reconnect")) {
      running.get(view.chat.id)?.reconnect();
    }
  });
  els.scroller.addEventListener(
    "scroll",
    () => {
      const s = els.scroller;
      pinned = s.scrollHeight - s.scrollTop - s.clientHeight < 80;
      els.jump.hidden = pinned;
    },
    { passive: true },
  );
  els.jump.addEventListener("click", () => {
    pinned = true;
    els.scroller.scrollTo({ top: els.scroller.scrollHeight, behavior: "smooth" });
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      if (document.body.classList.contains("drawer-open")) closeDrawer();
      else running.get(current.id)?.stop();
    } else if (e.key.toLowerCase() === "o" && e.shiftKey && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      newChat();
    }
  });
  window.addEventListener("pagehide", flushSaves);
  document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && flushSaves());
  window.addEventListener("storage", (e) => {
    if (e.key === store.storageKeys.INDEX) renderSidebar();
    else if (e.key === store.storageKeys.CHAT + current.id && !running.has(current.id)) {
      const fresh = store.loadChat(current.id);
      if (fresh) {
        current = fresh;
        cache.set(fresh.id, fresh);
        renderChat();
      }
    }
  });
  window.addEventListener("hashchange", () => {
    const id = location.hash.slice(1);
    if (id && id !== current.id && getChat(id)) openChat(id);
  });
  setInterval(renderSidebar, 60_000); // keep "n min ago" fresh
}

function init() {
  wire();
  resumeRunning();
  const wanted = location.hash.slice(1);
  const chat = (wanted && getChat(wanted)) || (running.size ? running.values().next().value.chat : null);
  if (chat) {
    current = chat;
    history.replaceState(null, "", `#${chat.id}`);
  }
  renderChat();
  loadModels();
  if (!matchMedia("(pointer: coarse)").matches) els.prompt.focus();
  document.documentElement.dataset.ready = "true";
}

init();
