// Small DOM helpers shared by the pages. Text is only ever inserted with textContent.

const SVG = "http://www.w3.org/2000/svg";

/** An element with an optional class and text (as text, never HTML). */
export function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text != null) node.textContent = text;
  return node;
}

/** An inline SVG that uses a symbol of the page's sprite. */
export function icon(id, cls = "icon") {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS(SVG, "use");
  use.setAttribute("href", `#${id}`);
  svg.append(use);
  return svg;
}

/** A type=button with an accessible label, an optional icon and visible text. */
export function button(cls, label, iconId, text) {
  const b = el("button", cls);
  b.type = "button";
  b.setAttribute("aria-label", label);
  b.title = label;
  if (iconId) b.append(icon(iconId));
  if (text) b.append(el("span", "", text));
  return b;
}

let toastTimer = 0;
/** Show `text` in the page's #toast for a few seconds, with an optional {label, run} action. */
export function toast(text, action) {
  const box = document.querySelector("#toast");
  if (!box) return;
  box.replaceChildren(el("span", "", text));
  if (action) {
    const b = el("button", "toast-action", action.label);
    b.type = "button";
    b.addEventListener("click", () => {
      box.hidden = true;
      action.run();
    });
    box.append(b);
  }
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), action ? 6000 : 3500);
}

export async function copyText(text) {
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

export function flashCopied(btn) {
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

export function seconds(ms) {
  const s = Math.max(1, Math.round(ms / 1000));
  return s < 90 ? `${s} s` : `${Math.round(s / 60)} min`;
}

export function relativeTime(ts) {
  const d = (Date.now() - ts) / 1000;
  if (d < 60) return "just now";
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  return new Date(ts).toLocaleDateString();
}

export function clock(date = new Date()) {
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}
