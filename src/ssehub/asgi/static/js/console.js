// The hub console: subscribe to topics and watch events live, publish from a form.
// Everything from the network is inserted as text (textContent), never as HTML.

import { clock, el, icon } from "./dom.js";
import { setupPublish, splitTopics } from "./publish.js";
import { FetchEventSource } from "./sse.js";
import { authFetch, setupTokenUI } from "./token.js";

const $ = (sel) => document.querySelector(sel);
const els = {
  subForm: $("#sub-form"),
  chips: $("#sub-chips"),
  topicInput: $("#sub-topic-input"),
  resume: $("#sub-resume"),
  subResult: $("#sub-result"),
  subs: $("#subs"),
  pubForm: $("#pub-form"),
  pubTopic: $("#pub-topic"),
  pubEvent: $("#pub-event"),
  pubData: $("#pub-data"),
  pubJson: $("#pub-json"),
  pubResult: $("#pub-result"),
  pubCurl: $("#pub-curl"),
  topics: $("#topics"),
  topicsEmpty: $("#topics-empty"),
  topicsRefresh: $("#topics-refresh"),
  events: $("#events"),
  eventsEmpty: $("#events-empty"),
  counter: $("#counter"),
  filter: $("#filter"),
  pause: $("#pause"),
  clear: $("#clear"),
};

const MAX_ROWS = 1000;
const pendingTopics = [];
const subscriptions = new Map(); // key -> {source, topics, node}
let received = 0;
let paused = false;
const held = [];
let nextSub = 1;

// ---------------------------------------------------------------- topic chips

function renderChips() {
  const chips = pendingTopics.map((t, i) => {
    const chip = el("span", "chip");
    chip.append(el("span", "", t));
    const x = el("button", "", "×");
    x.type = "button";
    x.setAttribute("aria-label", `Remove topic ${t}`);
    x.dataset.index = String(i);
    chip.append(x);
    return chip;
  });
  els.chips.replaceChildren(...chips, els.topicInput);
}

function addTopics(text) {
  for (const t of splitTopics(text)) if (!pendingTopics.includes(t)) pendingTopics.push(t);
  els.topicInput.value = "";
  renderChips();
}

els.topicInput.addEventListener("keydown", (e) => {
  if ((e.key === "Enter" || e.key === ",") && els.topicInput.value.trim()) {
    e.preventDefault();
    addTopics(els.topicInput.value);
  } else if (e.key === "Backspace" && !els.topicInput.value && pendingTopics.length) {
    pendingTopics.pop();
    renderChips();
    els.topicInput.focus();
  }
});
els.topicInput.addEventListener("paste", () => setTimeout(() => els.topicInput.value.includes(",") && addTopics(els.topicInput.value)));
els.chips.addEventListener("click", (e) => {
  const x = e.target.closest("button[data-index]");
  if (x) {
    pendingTopics.splice(Number(x.dataset.index), 1);
    renderChips();
  }
  els.topicInput.focus();
});

// ---------------------------------------------------------------- subscriptions

function subscribe(topics, resumeId) {
  const url = new URL("subscribe", document.baseURI);
  for (const t of topics) url.searchParams.append("topic", t);
  if (resumeId) url.searchParams.set("last_event_id", resumeId);
  // each event then names the topic(s) it came from (`topic:` lines, ignored by EventSource)
  if (topics.length > 1) url.searchParams.set("topic_field", "1");
  const key = `s${nextSub++}`;
  const label = topics.join(", ");
  const node = el("li", "sub");
  const dot = el("span", "state-dot connecting");
  dot.setAttribute("role", "img");
  const info = el("div");
  const name = el("div", "sub-topics", label);
  name.title = label;
  const meta = el("div", "sub-meta", "connecting…");
  info.append(name, meta);
  const close = el("button", "icon-btn");
  close.type = "button";
  close.setAttribute("aria-label", `Unsubscribe from ${label}`);
  close.title = "Unsubscribe";
  close.append(icon("i-x"));
  node.append(dot, info, close);
  els.subs.append(node);

  let count = 0;
  let lastBeat = null;
  const describe = (state, detail) => {
    const parts = [];
    if (state === "open") parts.push("live");
    else if (state === "reconnecting") parts.push(detail?.delay ? `reconnecting in ${(detail.delay / 1000).toFixed(1)} s` : "reconnecting…");
    else if (state === "failed") parts.push(detail?.error || "failed");
    else parts.push(state);
    parts.push(`${count} event${count === 1 ? "" : "s"}`);
    if (lastBeat) parts.push(`♥ ${clock(lastBeat).slice(0, 8)}`);
    return parts.join(" · ");
  };
  let state = "connecting";
  let detail = null;
  const source = new FetchEventSource(url.href, {
    fetch: authFetch,
    onEvent: (e) => {
      count += 1;
      addEvent(e, topics);
      meta.textContent = describe(state, detail);
    },
    onComment: () => {
      lastBeat = new Date();
      meta.textContent = describe(state, detail);
    },
    onState: (s, d) => {
      state = s;
      detail = d;
      dot.className = `state-dot ${s}`;
      dot.setAttribute("aria-label", s);
      meta.textContent = describe(s, d);
      if (s === "failed") {
        addNote(`Subscription to ${label} failed: ${d?.error || "error"}`);
      }
    },
  });
  close.addEventListener("click", () => {
    source.close();
    node.remove();
    subscriptions.delete(key);
    syncUrl();
  });
  subscriptions.set(key, { source, topics, resumeId, node });
  syncUrl();
}

/** Keep the page URL in step so a reload (or a shared link) subscribes again. */
function syncUrl() {
  const params = new URLSearchParams();
  const first = subscriptions.values().next().value;
  if (first) {
    for (const t of first.topics) params.append("topic", t);
    if (first.resumeId) params.set("last_event_id", first.resumeId);
  }
  const q = params.toString();
  history.replaceState(null, "", q ? `?${q}` : location.pathname);
}

els.subForm.addEventListener("submit", (e) => {
  e.preventDefault();
  if (els.topicInput.value.trim()) addTopics(els.topicInput.value);
  if (!pendingTopics.length) {
    els.subResult.className = "result err";
    els.subResult.textContent = "Add at least one topic.";
    els.topicInput.focus();
    return;
  }
  els.subResult.textContent = "";
  subscribe([...pendingTopics], els.resume.value.trim());
  if (!els.pubTopic.value) {
    els.pubTopic.value = pendingTopics[0];
    updateCurl();
  }
  pendingTopics.length = 0;
  els.resume.value = "";
  renderChips();
  setTimeout(loadTopics, 300);
});

// ---------------------------------------------------------------- events table

function prettyData(data) {
  const t = data.trim();
  if ((t.startsWith("{") && t.endsWith("}")) || (t.startsWith("[") && t.endsWith("]"))) {
    try {
      const value = JSON.parse(t);
      const compact = JSON.stringify(value);
      return compact.length <= 90 ? compact : JSON.stringify(value, null, 2);
    } catch {
      /* not JSON after all */
    }
  }
  return data;
}

function addEvent(e, topics) {
  const row = { e, topics, at: new Date() };
  received += 1;
  els.counter.textContent = `${received} received${paused ? ` · ${held.length + 1} held` : ""}`;
  if (paused) {
    held.push(row);
    return;
  }
  insertRow(row);
}

function insertRow({ e, topics, at }) {
  const tr = el("tr", "fresh");
  const isGap = e.type === "gap";
  // the event's own topic(s), when the stream names them; a one-topic subscription's topic
  let topicText = (e.topics?.length ? e.topics : topics).join(", ");
  let dataText = e.data;
  if (isGap) {
    tr.classList.add("gap");
    try {
      const g = JSON.parse(e.data);
      topicText = g.topic ?? topicText;
      dataText = `Events were lost${g.last_event_id ? ` after ${g.last_event_id}` : ""}: ${g.reason || "unknown reason"}. Continuing from the oldest event still retained.`;
    } catch {
      /* show raw */
    }
  }
  const time = el("td", "c-time", clock(at));
  const id = el("td", "c-id", isGap ? "—" : e.id || "—");
  const name = el("td", "c-event");
  const badge = el("span", `badge ${["message", "gap", "error", "done"].includes(e.type) ? e.type : ""}`, e.type);
  name.append(badge);
  const topic = el("td", "c-topic", topicText);
  topic.title = topicText;
  const data = el("td", "c-data");
  const pre = el("pre", "", isGap ? dataText : prettyData(dataText));
  data.append(pre);
  tr.append(time, id, name, topic, data);
  tr.dataset.search = `${e.type} ${e.id} ${topicText} ${e.data}`.toLowerCase();
  applyFilter(tr);
  els.events.prepend(tr);
  setTimeout(() => tr.classList.remove("fresh"), 1300);
  while (els.events.rows.length > MAX_ROWS) els.events.lastElementChild.remove();
  els.eventsEmpty.hidden = true;
}

function addNote(text) {
  const tr = el("tr", "note");
  const td = el("td", "", `${clock()} — ${text}`);
  td.colSpan = 5;
  tr.append(td);
  tr.dataset.search = text.toLowerCase();
  els.events.prepend(tr);
  els.eventsEmpty.hidden = true;
}

function applyFilter(tr) {
  const q = els.filter.value.trim().toLowerCase();
  tr.hidden = !!q && !tr.dataset.search.includes(q);
}

els.filter.addEventListener("input", () => {
  for (const tr of els.events.rows) applyFilter(tr);
});
els.pause.addEventListener("click", () => {
  paused = !paused;
  els.pause.textContent = paused ? "Resume" : "Pause";
  els.pause.setAttribute("aria-pressed", String(paused));
  if (!paused) {
    for (const row of held.splice(0)) insertRow(row);
    els.counter.textContent = `${received} received`;
  }
});
els.clear.addEventListener("click", () => {
  els.events.replaceChildren();
  held.length = 0;
  received = 0;
  els.counter.textContent = "0 received";
  els.eventsEmpty.hidden = false;
});

// ---------------------------------------------------------------- active topics

async function loadTopics() {
  let list;
  try {
    const resp = await authFetch("topics", { headers: { Accept: "application/json" } });
    if (!resp.ok) throw new Error(String(resp.status));
    const body = await resp.json();
    list = Array.isArray(body) ? body : Array.isArray(body?.topics) ? body.topics : body && typeof body === "object" ? Object.entries(body).map(([topic, v]) => ({ topic, ...(typeof v === "object" ? v : { subscribers: v }) })) : [];
  } catch {
    els.topicsEmpty.textContent = "Topic list unavailable.";
    els.topics.replaceChildren();
    els.topicsEmpty.hidden = false;
    return;
  }
  const all = list.map((t) => (typeof t === "string" ? { topic: t } : t)).filter((t) => t && (t.topic || t.name));
  // Chat generations are topics too (chat/<id>); they would drown the list.
  const shown = all.filter((t) => !String(t.topic ?? t.name).startsWith("chat/"));
  const hiddenChats = all.length - shown.length;
  const items = shown
    .slice(0, 200)
    .map((t) => {
      const name = String(t.topic ?? t.name);
      const li = el("li");
      const b = el("button", "", name);
      b.type = "button";
      b.title = `Add ${name} to the subscription`;
      b.dataset.topic = name;
      const n = t.subscribers ?? t.subscriber_count ?? t.count;
      const count = el("span", "count", n != null ? `${n} sub${n === 1 ? "" : "s"}` : "");
      if (t.last_event_id) count.title = `last event ${t.last_event_id}`;
      li.append(b, count);
      return li;
    });
  els.topics.replaceChildren(...items);
  if (hiddenChats) {
    els.topics.append(el("li", "muted small", `+ ${hiddenChats} chat generation topic${hiddenChats === 1 ? "" : "s"}`));
  }
  els.topicsEmpty.textContent = "No active topics.";
  els.topicsEmpty.hidden = items.length + hiddenChats > 0;
}

els.topics.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-topic]");
  if (b) addTopics(b.dataset.topic.replace(/,/g, ""));
});
els.topicsRefresh.addEventListener("click", loadTopics);

// ---------------------------------------------------------------- start

let updateCurl = () => {};

function init() {
  setupTokenUI(document.querySelector(".console-top"));
  ({ updateCurl } = setupPublish(els, { onPublished: loadTopics }));
  const code = els.eventsEmpty.querySelector("code");
  if (code) code.textContent = `curl -d topic=news -d data=hello ${new URL("publish", document.baseURI).href}`;
  const params = new URLSearchParams(location.search);
  const topics = params.getAll("topic").filter(Boolean);
  if (topics.length) {
    subscribe(topics, params.get("last_event_id") || "");
    els.pubTopic.value = topics[0];
  }
  updateCurl();
  loadTopics();
  document.documentElement.dataset.ready = "true";
}

init();
