// Auth on the pages. With auth on, the hub reads a token from the `ssehub_token` cookie
// (or an Authorization header, or a `token` query parameter). When a request of the page
// gets a 401, the page asks for a token once (a small dialog), keeps it as the
// `ssehub_token` cookie (SameSite=Strict, path=/, so EventSource sends it too) and tries
// the request again. The header shows a "Token" button to change or clear it.

import { el } from "./dom.js";

export const COOKIE = "ssehub_token";

let pending = null; // the open dialog's promise: concurrent 401s share one prompt
let cancelledAt = -Infinity; // when the user last dismissed the dialog without a token
// A 401 this soon after a cancel (a request that was already under way: a reconnect, a
// periodic refresh) is answered as cancelled instead of asking again at once.
const QUIET_AFTER_CANCEL_MS = 3000;
let bar = null;

export function currentToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

export function setToken(token) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `${COOKIE}=${encodeURIComponent(token)}; SameSite=Strict; path=/${secure}`;
  refreshBar();
}

export function clearToken() {
  document.cookie = `${COOKIE}=; SameSite=Strict; path=/; max-age=0`;
  refreshBar();
}

async function errorOf(resp) {
  try {
    const body = await resp.clone().json();
    if (typeof body?.error === "string") return body.error;
  } catch {
    /* not JSON */
  }
  return "";
}

/**
 * fetch(), but a 401 asks the user for a token and retries with it (the cookie). Returns
 * the last response: still a 401 when the user cancelled the dialog.
 */
export async function authFetch(url, init) {
  for (;;) {
    const resp = await fetch(url, init);
    if (resp.status !== 401) return resp;
    if (!pending && performance.now() - cancelledAt < QUIET_AFTER_CANCEL_MS) return resp;
    const reason = await errorOf(resp);
    if (!(await askForToken(reason))) return resp;
  }
}

/** Show the token dialog; resolves true once a token was saved, false when cancelled. */
export function askForToken(reason = "") {
  if (!pending) {
    pending = openDialog(reason).finally(() => {
      pending = null;
    });
  }
  return pending;
}

function openDialog(reason) {
  return new Promise((resolve) => {
    const dialog = el("dialog", "token-dialog");
    dialog.setAttribute("aria-labelledby", "token-title");
    const form = el("form", "token-form");
    form.method = "dialog";
    const title = el("h2", "", "This hub needs a token");
    title.id = "token-title";
    const why = el("p", "muted small", reason ? `The server said: ${reason}` : "");
    why.hidden = !reason;
    const label = el("label", "token-label", "Token");
    const input = el("input", "token-input");
    input.type = "password";
    input.name = "token";
    input.autocomplete = "off";
    input.required = true;
    input.placeholder = "paste the token (JWT)";
    label.append(input);
    const hint = el("p", "muted small",
      "It is kept in this browser as the ssehub_token cookie (this site only) until you clear it.");
    const actions = el("div", "token-actions");
    const cancel = el("button", "btn btn-outline token-cancel", "Cancel");
    cancel.type = "button";
    const save = el("button", "btn token-save", "Save and retry");
    save.type = "submit";
    actions.append(cancel, save);
    form.append(title, why, label, hint, actions);
    dialog.append(form);
    document.body.append(dialog);
    let saved = false;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      setToken(token);
      saved = true;
      dialog.close();
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      if (!saved) cancelledAt = performance.now();
      dialog.remove();
      refreshBar();
      resolve(saved);
    });
    dialog.showModal();
    input.focus();
  });
}

function refreshBar() {
  if (!bar) return;
  const has = !!currentToken();
  bar.hidden = !has;
}

/** A small "Token" control in `host` (the page header): change or clear the token. */
export function setupTokenUI(host) {
  if (!host || bar) return;
  bar = el("div", "token-bar");
  const change = el("button", "btn btn-small btn-outline token-change", "Token");
  change.type = "button";
  change.title = "Change the token this page sends";
  const clear = el("button", "btn btn-small btn-outline token-clear", "Clear token");
  clear.type = "button";
  clear.title = "Forget the token (delete the ssehub_token cookie)";
  change.addEventListener("click", () => askForToken());
  clear.addEventListener("click", clearToken);
  bar.append(change, clear);
  host.append(bar);
  refreshBar();
}
