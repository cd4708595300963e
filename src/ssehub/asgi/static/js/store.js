// Conversations in localStorage: one key per chat plus a small index, so two tabs working on
// different chats never overwrite each other. Every write re-reads the index first.
//
//   ssehub.chats.v1            [{id, title, updated}]
//   ssehub.chat.v1.<id>        {id, title, created, updated, messages: [...]}
//   ssehub.prefs.v1            {model, provider}
//
// A message is {role: "user"|"assistant", content, ...}; an assistant message also carries
// reasoning, model, status ("streaming"|"done"|"stopped"|"error"|"interrupted"), finish, error,
// thoughtMs, usage, and while it streams gen = {id, topic, events, lastEventId}.

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
