// What the chat page's modules share: its elements and the few pieces of mutable state.
// (Module scripts run after the document is parsed, so the elements exist here.)

import { createChat } from "./store.js";

const $ = (sel) => document.querySelector(sel);

export const els = {
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

export const app = {
  current: createChat(), // the chat on screen
  running: new Map(), // chat id -> Run (its answer is streaming)
  models: [], // what GET v1/models listed: [{id, provider, label, owner}]
  pinned: true, // the view follows new text (the user has not scrolled up)
  /** Re-sync the parts of the page that depend on which chats are running. */
  changed: () => {},
};

export function scrollToBottom() {
  els.scroller.scrollTop = els.scroller.scrollHeight;
}

/** After new text in `view`: keep the newest text in sight unless the user scrolled up. */
export function afterRender(view) {
  if (view.chat === app.current && app.pinned) scrollToBottom();
}
