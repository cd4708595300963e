// The console's publish form: POST publish as JSON, with the equivalent curl command shown.

import { authFetch } from "./token.js";

export function splitTopics(text) {
  return text
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
}

function shellQuote(s) {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Wire the form. `els`: pubForm, pubTopic, pubEvent, pubData, pubJson, pubResult, pubCurl.
 * `onPublished()` runs after a successful publish. Returns {updateCurl}.
 */
export function setupPublish(els, { onPublished = () => {} } = {}) {
  function publishBody() {
    const topics = splitTopics(els.pubTopic.value);
    const body = { topic: topics.length === 1 ? topics[0] : topics, data: els.pubData.value };
    const event = els.pubEvent.value.trim();
    if (event) body.event = event;
    if (els.pubJson.checked) body.data = JSON.parse(els.pubData.value || "null");
    return body;
  }

  function updateCurl() {
    let text;
    try {
      const body = publishBody();
      const url = new URL("publish", document.baseURI).href;
      text = `curl -H 'Content-Type: application/json' \\\n  -d ${shellQuote(JSON.stringify(body))} \\\n  ${url}`;
    } catch {
      text = "(data is not valid JSON)";
    }
    els.pubCurl.textContent = text;
  }

  function result(cls, text) {
    els.pubResult.className = cls;
    els.pubResult.textContent = text;
  }

  async function publish() {
    let body;
    try {
      body = publishBody();
    } catch (err) {
      result("result err", `Data is not valid JSON: ${err.message}`);
      return;
    }
    if (!splitTopics(els.pubTopic.value).length) {
      result("result err", "A topic is required.");
      els.pubTopic.focus();
      return;
    }
    result("result", "Publishing…");
    try {
      const resp = await authFetch("publish", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      let answer = null;
      try {
        answer = await resp.json();
      } catch {
        /* not JSON */
      }
      if (resp.ok) {
        result("result ok", `Published · id ${answer?.id ?? "?"}`);
        onPublished();
      } else {
        result("result err", `${answer?.error || "Publish failed"} (HTTP ${resp.status})`);
      }
    } catch {
      result("result err", "Could not reach the server.");
    }
  }

  els.pubForm.addEventListener("submit", (e) => {
    e.preventDefault();
    publish();
  });
  els.pubForm.addEventListener("input", updateCurl);
  els.pubData.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      publish();
    }
  });
  return { updateCurl };
}
