// Conversations in localStorage: one key per chat plus a small index, so two tabs working on
// different chats never overwrite each other. Every write re-reads the index first.
//
//   ssehub.chats.v1            [{id, title, updated}]
//   ssehub.chat.v1.<id>        {id, title, created, updated, messages: [...]}
//   ssehub.prefs.v1            {model, provider}
//
// A message is {role: "user"|"assistant", content, ...}; an assistant message also carries
// reasoning, model, status (see Status below), finish, error, lost, thoughtMs, usage, and
// while it streams gen = {id, topic, events, lastEventId}.
//
// The in-memory side (one object per chat while this tab uses it, debounced saves) and the
// status state machine of an answer live here too: every status change goes through
// setStatus(), which refuses transitions that make no sense.

const INDEX = "ssehub.chats.v1";
const CHAT = "ssehub.chat.v1.";
const PREFS = "ssehub.prefs.v1";

export const storageKeys = { INDEX, CHAT, PREFS };

function read(key, fallback) {
  try {
    const raw = localStorage.getItem(key);
    return raw == null ? fallback : JSON.parse(raw);
  } catch {
    return fallback;
  }
}

function write(key, value) {
  const raw = JSON.stringify(value);
  try {
    localStorage.setItem(key, raw);
    return true;
  } catch {
    // Quota: forget the oldest chats (never the one being written) and try once more.
    const index = listChats();
    for (const entry of index.slice().reverse().slice(0, Math.ceil(index.length / 3))) {
      if (CHAT + entry.id !== key) deleteChat(entry.id);
    }
    try {
      localStorage.setItem(key, raw);
      return true;
    } catch {
      return false;
    }
  }
}

export function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The index, most recently updated first. */
export function listChats() {
  const index = read(INDEX, []);
  return Array.isArray(index) ? index.filter((c) => c && typeof c.id === "string").sort((a, b) => b.updated - a.updated) : [];
}

export function loadChat(id) {
  const chat = read(CHAT + id, null);
  if (!chat || !Array.isArray(chat.messages)) return null;
  return chat;
}

export function createChat() {
  const now = Date.now();
  return { id: newId(), title: "", created: now, updated: now, messages: [] };
}

export function titleFor(text) {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > 60 ? `${line.slice(0, 57)}…` : line || "New chat";
}

/** Save a chat and its index entry. Returns false when storage is full. */
export function saveChat(chat, { touch = true } = {}) {
  if (touch) chat.updated = Date.now();
  const ok = write(CHAT + chat.id, chat);
  const index = listChats().filter((c) => c.id !== chat.id);
  index.push({ id: chat.id, title: chat.title || "New chat", updated: chat.updated, running: !!chat.running });
  write(INDEX, index);
  return ok;
}

export function deleteChat(id) {
  localStorage.removeItem(CHAT + id);
  const index = read(INDEX, []);
  if (Array.isArray(index)) localStorage.setItem(INDEX, JSON.stringify(index.filter((c) => c && c.id !== id)));
}

export function loadPrefs() {
  return read(PREFS, {}) || {};
}

export function savePrefs(prefs) {
  write(PREFS, { ...loadPrefs(), ...prefs });
}

// ---------------------------------------------------------------- answer status

/** The status of an assistant message. */
export const Status = Object.freeze({
  STREAMING: "streaming", // events are arriving (or the page is reconnecting)
  INTERRUPTED: "interrupted", // the page gave up reconnecting; the answer may still run
  DONE: "done", // the generation ended normally (finish: stop, length, …)
  STOPPED: "stopped", // the user stopped it
  ERROR: "error", // the upstream or the request failed (msg.error)
  LOST: "lost", // the server no longer has it (restart, unknown generation) (msg.lost)
});

const NEXT = {
  [Status.STREAMING]: [Status.INTERRUPTED, Status.DONE, Status.STOPPED, Status.ERROR, Status.LOST],
  [Status.INTERRUPTED]: [Status.STREAMING, Status.DONE, Status.STOPPED, Status.ERROR, Status.LOST],
  [Status.DONE]: [],
  [Status.STOPPED]: [],
  [Status.ERROR]: [],
  [Status.LOST]: [],
};

/** Live: the answer may still change (a Run follows it, or will after a reload). */
export function isLive(status) {
  return status === Status.STREAMING || status === Status.INTERRUPTED;
}

/** Move `msg` to status `to`; returns false (and changes nothing) for a transition the
 * machine does not allow, e.g. out of a final status. */
export function setStatus(msg, to) {
  if (msg.status === to) return true;
  if (!(to in NEXT) || (msg.status in NEXT && !NEXT[msg.status].includes(to))) {
    console.warn(`answer status: ${msg.status} -> ${to} refused`);
    return false;
  }
  msg.status = to;
  return true;
}

// ---------------------------------------------------------------- chats in memory

const SAVE_DELAY = 400; // ms between localStorage writes of a streaming chat
const cache = new Map(); // chat id -> chat object
const saveTimers = new Map();
let onFull = () => {};

/** Called when the browser's storage is full and a chat could not be saved. */
export function onStorageFull(fn) {
  onFull = fn;
}

/** The one object for chat `id` in this tab (loaded from storage the first time). */
export function getChat(id) {
  let chat = cache.get(id);
  if (!chat) {
    chat = loadChat(id);
    if (chat) cache.set(id, chat);
  }
  return chat;
}

export function remember(chat) {
  cache.set(chat.id, chat);
}

export function forget(id) {
  cache.delete(id);
}

export function saveSoon(chat) {
  if (saveTimers.has(chat.id)) return;
  saveTimers.set(
    chat.id,
    setTimeout(() => {
      saveTimers.delete(chat.id);
      persist(chat);
    }, SAVE_DELAY),
  );
}

export function persist(chat) {
  clearTimeout(saveTimers.get(chat.id));
  saveTimers.delete(chat.id);
  if (!chat.messages.length || chat.deleted) return;
  const last = chat.messages[chat.messages.length - 1];
  chat.running = last.role === "assistant" && isLive(last.status);
  if (!saveChat(chat)) onFull();
}

export function flushSaves() {
  for (const id of [...saveTimers.keys()]) {
    const chat = cache.get(id);
    if (chat) persist(chat);
  }
}
