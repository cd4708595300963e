// The chat page: conversations (store.js), model picker (models.js), streaming answers
// (run.js, views.js), the sidebar (sidebar.js). This module wires them to the page.
//
// Safety rules kept throughout: user text is only ever inserted with textContent; model
// output only through markdown.js (markdown-it -> DOMPurify -> DocumentFragment).

import { copyText, flashCopied, toast } from "./dom.js";
import { loadModels, watchModelPicker } from "./models.js";
import { Run } from "./run.js";
import { closeDrawer, isDrawerOpen, openDrawer, renderSidebar } from "./sidebar.js";
import { app, els, scrollToBottom } from "./state.js";
import * as store from "./store.js";
import { Status } from "./store.js";
import { setupTokenUI } from "./token.js";
import { AssistantView, UserView } from "./views.js";

function getChat(id) {
  return app.current.id === id ? app.current : store.getChat(id);
}

// ---------------------------------------------------------------- conversation

function renderChat() {
  const chat = app.current;
  els.title.textContent = chat.title || "New chat";
  document.title = chat.title ? `${chat.title} · ssehub` : "ssehub chat";
  const views = [];
  const run = app.running.get(chat.id);
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
  for (const r of app.running.values()) if (r.chat !== chat) r.view = null;
  els.messages.replaceChildren(...views.map((v) => v.node));
  els.messages.viewsByNode = new WeakMap(views.map((v) => [v.node, v]));
  els.welcome.hidden = chat.messages.length > 0;
  app.pinned = true;
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

function show(chat, hash) {
  app.current = chat;
  history.replaceState(null, "", hash ? `#${chat.id}` : location.pathname + location.search);
  renderChat();
  closeDrawer();
}

function openChat(id) {
  const chat = getChat(id);
  if (!chat) return;
  store.remember(chat);
  show(chat, true);
}

function newChat() {
  if (app.current.messages.length) show(store.createChat(), false);
  else closeDrawer();
  els.prompt.focus();
}

function deleteChat(id) {
  const chat = getChat(id);
  if (!chat) return;
  store.flushSaves();
  chat.deleted = true;
  app.running.get(id)?.stop();
  store.deleteChat(id);
  store.forget(id);
  if (app.current.id === id) show(store.createChat(), false);
  else renderSidebar();
  toast(`Deleted “${chat.title || "New chat"}”`, {
    label: "Undo",
    run: () => {
      delete chat.deleted;
      delete chat.running;
      for (const m of chat.messages) {
        if (store.isLive(m.status) && store.setStatus(m, Status.STOPPED)) Object.assign(m, { finish: "cancelled", gen: undefined });
      }
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
  const msg = { role: "assistant", content: "", reasoning: "", status: Status.STREAMING, startedAt: Date.now() };
  chat.messages.push(msg);
  store.persist(chat);
  const run = new Run(chat, msg);
  app.running.set(chat.id, run);
  if (chat === app.current) {
    const view = new AssistantView(chat, msg);
    run.view = view;
    els.messages.append(view.node);
    els.messages.viewsByNode.set(view.node, view);
    view.startStreaming();
    rerenderFooters();
    app.pinned = true;
    scrollToBottom();
  }
  refreshComposer();
  renderSidebar();
  run.begin(conversation(chat, chat.messages.length - 1));
}

function send(text) {
  const chat = app.current;
  if (!text.trim()) return;
  const run = app.running.get(chat.id);
  if (run) {
    if (run.msg.status !== Status.INTERRUPTED) return;
    run.end(Status.STOPPED); // an interrupted answer is final once the user moves on
  }
  if (!chat.title) chat.title = store.titleFor(text);
  const msg = { role: "user", content: text };
  chat.messages.push(msg);
  store.remember(chat);
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
  if (app.running.has(chat.id)) return;
  const i = chat.messages.indexOf(view.msg);
  if (i < 0) return;
  chat.messages.splice(i, 1);
  view.node.remove();
  startRun(chat);
}

// ---------------------------------------------------------------- composer

function autoGrow() {
  const ta = els.prompt;
  ta.style.height = "auto";
  ta.style.height = `${Math.min(ta.scrollHeight, Math.round(window.innerHeight * 0.4))}px`;
  refreshComposer();
}

function refreshComposer() {
  const run = app.running.get(app.current.id);
  const busy = !!run && run.msg.status === Status.STREAMING;
  els.stop.hidden = !busy;
  els.send.hidden = busy;
  els.send.disabled = !els.prompt.value.trim() || busy;
}

// ---------------------------------------------------------------- start-up

function resumeRunning() {
  for (const entry of store.listChats()) {
    if (!entry.running && entry.id !== location.hash.slice(1)) continue;
    const chat = getChat(entry.id);
    const msg = chat?.messages[chat.messages.length - 1];
    if (!msg || msg.role !== "assistant" || !store.isLive(msg.status)) continue;
    store.setStatus(msg, Status.STREAMING);
    if (!msg.gen) {
      msg.error = { message: "The page was closed before the answer started.", status: null };
      store.setStatus(msg, Status.ERROR);
      store.persist(chat);
      continue;
    }
    const run = new Run(chat, msg);
    app.running.set(chat.id, run);
    run.attach();
  }
}

function onMessageClick(e) {
  const target = e.target.closest("button");
  if (!target) return;
  if (target.classList.contains("copy-code")) {
    const code = target.closest(".codeblock")?.querySelector("pre");
    if (code) copyText(code.textContent).then((ok) => ok && flashCopied(target));
    return;
  }
  const view = viewOf(target);
  if (!view) return;
  if (target.classList.contains("copy-answer")) {
    copyText(view.msg.content || "").then((ok) => ok && flashCopied(target));
  } else if (target.classList.contains("regenerate") || target.classList.contains("retry")) {
    regenerate(view);
  } else if (target.classList.contains("reconnect")) {
    app.running.get(view.chat.id)?.reconnect();
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
  els.stop.addEventListener("click", () => app.running.get(app.current.id)?.stop());
  els.newChat.addEventListener("click", newChat);
  els.menu.addEventListener("click", () => (isDrawerOpen() ? closeDrawer() : openDrawer()));
  els.scrim.addEventListener("click", closeDrawer);
  watchModelPicker();
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
  els.messages.addEventListener("click", onMessageClick);
  els.scroller.addEventListener(
    "scroll",
    () => {
      const s = els.scroller;
      app.pinned = s.scrollHeight - s.scrollTop - s.clientHeight < 80;
      els.jump.hidden = app.pinned;
    },
    { passive: true },
  );
  els.jump.addEventListener("click", () => {
    app.pinned = true;
    els.scroller.scrollTo({ top: els.scroller.scrollHeight, behavior: "smooth" });
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      if (isDrawerOpen()) closeDrawer();
      else app.running.get(app.current.id)?.stop();
    } else if (e.key.toLowerCase() === "o" && e.shiftKey && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      newChat();
    }
  });
  window.addEventListener("pagehide", store.flushSaves);
  document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && store.flushSaves());
  window.addEventListener("storage", (e) => {
    if (e.key === store.storageKeys.INDEX) renderSidebar();
    else if (e.key === store.storageKeys.CHAT + app.current.id && !app.running.has(app.current.id)) {
      const fresh = store.loadChat(app.current.id);
      if (fresh) {
        app.current = fresh;
        store.remember(fresh);
        renderChat();
      }
    }
  });
  window.addEventListener("hashchange", () => {
    const id = location.hash.slice(1);
    if (id && id !== app.current.id && getChat(id)) openChat(id);
  });
  setInterval(renderSidebar, 60_000); // keep "n min ago" fresh
}

function init() {
  app.changed = () => {
    if (els.messages.viewsByNode) rerenderFooters();
    refreshComposer();
    renderSidebar();
  };
  store.onStorageFull(() => toast("Browser storage is full: this conversation is not saved."));
  setupTokenUI(document.querySelector(".topbar"));
  wire();
  resumeRunning();
  const wanted = location.hash.slice(1);
  const chat = (wanted && getChat(wanted)) || (app.running.size ? app.running.values().next().value.chat : null);
  if (chat) {
    app.current = chat;
    history.replaceState(null, "", `#${chat.id}`);
  }
  renderChat();
  loadModels();
  if (!matchMedia("(pointer: coarse)").matches) els.prompt.focus();
  document.documentElement.dataset.ready = "true";
}

init();
