// Markdown rendering for model output: markdown-it -> DOMPurify -> DOM nodes.
//
// Every piece of HTML that reaches the page goes through DOMPurify and is inserted as a
// DocumentFragment (RETURN_DOM_FRAGMENT), so no code in this project assigns innerHTML.
// markdown-it runs with `html: false` (raw HTML in model output is shown as text) and
// images are turned into links (no third-party requests, no tracking pixels).
//
// Streaming: `MarkdownStream` re-renders at most once per animation frame, and only the
// unfinished tail of the text: blocks that can no longer change (everything before a blank
// line that is followed by an unindented line, outside a code fence and not continuing a
// list) are rendered once and frozen. `finish()` renders the whole text once more so that
// document-wide constructs (reference links, loose lists) come out exactly right.

import markdownit from "../vendor/markdown-it.min.js";
import DOMPurify from "../vendor/purify.es.js";
import hljs from "../vendor/highlight.min.js";
import { icon } from "./dom.js";

export { icon };

const md = markdownit({
  html: false,
  linkify: true,
  typographer: false,
  highlight(code, lang) {
    const name = (lang || "").trim().split(/\s+/)[0].toLowerCase();
    if (name && hljs.getLanguage(name)) {
      try {
        return hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
      } catch {
        /* fall through: markdown-it escapes the code itself */
      }
    }
    return "";
  },
});

// Images become links: the page's Content-Security-Policy would block them anyway.
md.renderer.rules.image = (tokens, idx, options, env, self) => {
  const token = tokens[idx];
  const src = token.attrGet("src") || "";
  const alt = self.renderInlineAsText(token.children || [], options, env) || "image";
  return `<a href="${md.utils.escapeHtml(src)}" class="img-link">🖼 ${md.utils.escapeHtml(alt)}</a>`;
};

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "option", "iframe", "img", "video", "audio", "source", "picture"],
  FORBID_ATTR: ["style", "id", "name"],
  ALLOW_DATA_ATTR: false,
  RETURN_DOM_FRAGMENT: true,
};

let hooksInstalled = false;
function installHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // markdown-it aligns table cells with style="text-align:…"; keep that as a class instead.
  DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
    if (data.attrName === "style" && (node.nodeName === "TD" || node.nodeName === "TH")) {
      const m = /^text-align:\s*(left|right|center)\s*;?$/i.exec(data.attrValue || "");
      if (m) node.classList.add(`align-${m[1].toLowerCase()}`);
    }
  });
  DOMPurify.addHook("afterSanitizeAttributes", (node) => {
    if (node.nodeName === "A" && node.hasAttribute("href")) {
      node.setAttribute("target", "_blank");
      node.setAttribute("rel", "noopener noreferrer nofollow");
    }
  });
}

/** Sanitize an HTML string into a DocumentFragment. */
export function sanitize(html) {
  installHooks();
  return DOMPurify.sanitize(html, PURIFY);
}

/** Render Markdown text into a sanitized, decorated DocumentFragment. */
export function renderFragment(text) {
  const fragment = sanitize(md.render(text));
  decorate(fragment);
  return fragment;
}

/** Replace the children of `el` with `text` rendered as Markdown. */
export function renderInto(el, text) {
  el.replaceChildren(renderFragment(text));
}

// Wrap each code block in a frame with its language and a copy button.
function decorate(root) {
  for (const pre of root.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    const lang = code ? languageOf(code) : "";
    const frame = document.createElement("div");
    frame.className = "codeblock";
    const head = document.createElement("div");
    head.className = "codeblock-head";
    const label = document.createElement("span");
    label.className = "codeblock-lang";
    label.textContent = lang || "text";
    const copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy-code";
    copy.setAttribute("aria-label", `Copy ${lang || "code"} to clipboard`);
    copy.append(icon("i-copy"), Object.assign(document.createElement("span"), { textContent: "Copy" }));
    head.append(label, copy);
    pre.replaceWith(frame);
    frame.append(head, pre);
    if (code) code.classList.add("hljs");
  }
  for (const table of root.querySelectorAll("table")) {
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    table.replaceWith(wrap);
    wrap.append(table);
  }
}

function languageOf(code) {
  for (const cls of code.classList) if (cls.startsWith("language-")) return cls.slice(9);
  return "";
}

const FENCE = /^ {0,3}(`{3,}|~{3,})(.*)$/;
const LIST_ITEM = /^([*+-]|\d{1,9}[.)])(\s|$)/;

/**
 * Find where the stable prefix of a growing Markdown text ends.
 * Scans complete lines from `state.pos`, tracking fenced code, and returns the offset of the
 * last safe split point (start of an unindented, non-list line that follows a blank line).
 */
export function advanceBoundary(text, state) {
  let { pos, fence, blank, boundary } = state;
  for (;;) {
    const nl = text.indexOf("\n", pos);
    if (nl < 0) break;
    const line = text.slice(pos, nl);
    if (fence) {
      const m = FENCE.exec(line);
      if (m && m[1][0] === fence[0] && m[1].length >= fence.length && !m[2].trim()) fence = null;
      blank = false;
    } else if (!line.trim()) {
      blank = true;
    } else {
      if (blank && /^\S/.test(line) && !LIST_ITEM.test(line)) boundary = pos;
      const m = FENCE.exec(line);
      if (m && !(m[1][0] === "`" && m[2].includes("`"))) fence = m[1];
      blank = false;
    }
    pos = nl + 1;
  }
  Object.assign(state, { pos, fence, blank, boundary });
  return boundary;
}

/** Streams Markdown into an element, re-rendering at most once per animation frame. */
export class MarkdownStream {
  constructor(el, text = "") {
    this.el = el;
    this.frozen = document.createElement("div");
    this.frozen.className = "md-frozen";
    this.live = document.createElement("div");
    this.live.className = "md-live";
    el.replaceChildren(this.frozen, this.live);
    this.text = "";
    this.frozenTo = 0;
    this.scan = { pos: 0, fence: null, blank: false, boundary: 0 };
    this.frame = 0;
    this.renderedLength = -1;
    this.minGap = 0; // ms between renders, grows when rendering is slow
    this.lastRender = 0;
    this.onRender = null;
    if (text) this.append(text);
  }

  append(chunk) {
    if (!chunk) return;
    this.text += chunk;
    this.schedule();
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame((now) => {
      this.frame = 0;
      if (now - this.lastRender < this.minGap) {
        this.schedule();
        return;
      }
      this.flush();
    });
  }

  /** Render what has arrived so far (normally called from an animation frame). */
  flush() {
    if (this.renderedLength === this.text.length) return;
    const t0 = performance.now();
    const boundary = advanceBoundary(this.text, this.scan);
    if (boundary > this.frozenTo) {
      this.frozen.append(renderFragment(this.text.slice(this.frozenTo, boundary)));
      this.frozenTo = boundary;
    }
    this.live.replaceChildren(renderFragment(this.text.slice(this.frozenTo)));
    this.renderedLength = this.text.length;
    const spent = performance.now() - t0;
    this.lastRender = performance.now();
    this.minGap = Math.min(250, spent * 3);
    this.onRender?.();
  }

  /** The text is complete: render it whole, once. */
  finish() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    this.el.replaceChildren(renderFragment(this.text));
    this.renderedLength = this.text.length;
    this.onRender?.();
  }
}
