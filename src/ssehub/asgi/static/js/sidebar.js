// The conversation list (from the store's index) and the drawer it lives in on narrow screens.

import { button, el, relativeTime } from "./dom.js";
import { app, els } from "./state.js";
import { listChats } from "./store.js";

export function renderSidebar() {
  const items = listChats().map((entry) => {
    const li = el("li", "chat-item");
    const open = el("button", "chat-open");
    open.type = "button";
    open.dataset.id = entry.id;
    if (entry.id === app.current.id) {
      li.classList.add("active");
      open.setAttribute("aria-current", "page");
    }
    const row = el("span", "chat-item-row");
    if (app.running.has(entry.id)) {
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

export function isDrawerOpen() {
  return document.body.classList.contains("drawer-open");
}

export function openDrawer() {
  document.body.classList.add("drawer-open");
  els.scrim.hidden = false;
  els.menu.setAttribute("aria-expanded", "true");
  els.sidebar.querySelector("button")?.focus();
}

export function closeDrawer() {
  if (!isDrawerOpen()) return;
  document.body.classList.remove("drawer-open");
  els.scrim.hidden = true;
  els.menu.setAttribute("aria-expanded", "false");
}
