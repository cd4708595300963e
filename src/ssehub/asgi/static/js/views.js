// How messages look: a user bubble, and an assistant answer (reasoning, Markdown answer,
// status line, notice with an action, footer). Views only show the message object; the Run
// (run.js) changes it.

import { button, el, icon, seconds } from "./dom.js";
import { MarkdownStream, renderInto } from "./markdown.js";
import { app, afterRender } from "./state.js";
import { Status } from "./store.js";

export class UserView {
  constructor(msg) {
    this.node = el("article", "msg user");
    this.node.setAttribute("aria-label", "You");
    const bubble = el("div", "bubble");
    bubble.textContent = msg.content; // user text is text, always
    this.node.append(bubble);
  }
}

export class AssistantView {
  constructor(chat, msg) {
    this.chat = chat;
    this.msg = msg;
    this.stream = null;
    this.connection = "";
    this.stopping = false;
    const node = (this.node = el("article", "msg assistant"));
    node.setAttribute("aria-label", "Assistant");
    const avatar = el("div", "avatar");
    avatar.append(icon("i-logo", "icon logo"));
    const body = el("div", "msg-body");
    const head = el("div", "msg-head");
    this.modelName = el("span", "model-name");
    this.status = el("span", "msg-status");
    this.status.setAttribute("role", "status");
    head.append(this.modelName, this.status);

    this.reasoning = el("details", "reasoning");
    this.reasoning.hidden = true;
    const summary = el("summary");
    this.reasoningLabel = el("span", "reasoning-label", "Thinking…");
    summary.append(icon("i-bulb", "icon bulb"), this.reasoningLabel, icon("i-chevron", "icon chevron"));
    this.reasoningText = el("div", "reasoning-text");
    this.reasoningNode = document.createTextNode("");
    this.reasoningText.append(this.reasoningNode);
    this.reasoning.append(summary, this.reasoningText);

    this.answer = el("div", "answer markdown");
    this.notice = el("div", "notice");
    this.notice.hidden = true;

    this.foot = el("div", "msg-foot");
    this.copyBtn = button("ghost-btn copy-answer", "Copy answer", "i-copy", "Copy");
    this.regenBtn = button("ghost-btn regenerate", "Regenerate answer", "i-redo", "Regenerate");
    this.usage = el("span", "usage muted small");
    this.foot.append(this.copyBtn, this.regenBtn, this.usage);

    body.append(head, this.reasoning, this.answer, this.notice, this.foot);
    node.append(avatar, body);
    this.update();
  }

  /** Render the message as it is now (not streaming). */
  renderStatic() {
    this.stream = null;
    this.answer.classList.remove("streaming", "waiting");
    renderInto(this.answer, this.msg.content || "");
    this.setReasoning(this.msg.reasoning || "");
    this.update();
  }

  /** Begin live rendering from what the message holds already. */
  startStreaming() {
    this.stream = new MarkdownStream(this.answer, this.msg.content || "");
    this.stream.onRender = () => afterRender(this);
    this.setReasoning(this.msg.reasoning || "");
    this.update();
  }

  setReasoning(text) {
    this.reasoningNode.data = text;
    this.reasoning.hidden = !text;
    if (text && !this.msg.content && this.msg.status === Status.STREAMING) this.reasoning.open = true;
  }

  appendReasoning(text) {
    this.reasoningNode.appendData(text);
    if (this.reasoning.hidden) {
      this.reasoning.hidden = false;
      this.reasoning.open = true;
    }
    afterRender(this);
  }

  appendContent(text) {
    if (!this.stream) this.startStreaming();
    this.stream.append(text);
  }

  collapseReasoning() {
    this.reasoning.open = false;
    this.update();
  }

  /** The answer is final: render all of it as Markdown, once. */
  finish() {
    if (this.stream) this.stream.finish();
    else renderInto(this.answer, this.msg.content || "");
    this.stream = null;
    this.update();
    afterRender(this);
  }

  /** Sync everything but the answer text with the message. */
  update() {
    const msg = this.msg;
    const streaming = msg.status === Status.STREAMING;
    this.node.setAttribute("aria-busy", String(streaming));
    this.node.dataset.status = msg.status || Status.DONE;
    this.modelName.textContent = msg.model || "";
    this.answer.classList.toggle("streaming", streaming);
    this.answer.classList.toggle("waiting", streaming && !msg.content);

    if (msg.reasoning) {
      const thinking = streaming && !msg.content;
      this.reasoningLabel.textContent = thinking
        ? "Thinking…"
        : msg.thoughtMs != null
          ? `Thought for ${seconds(msg.thoughtMs)}`
          : "Reasoning";
      this.reasoning.classList.toggle("thinking", thinking);
    }

    let status = "";
    if (streaming && this.connection === "reconnecting") status = "Connection lost — reconnecting…";
    else if (streaming && this.stopping) status = "Stopping…";
    else if (msg.status === Status.STOPPED) status = "Stopped";
    else if (msg.status === Status.LOST) status = "Generation lost";
    else if (msg.finish === "length") status = "Cut off at the token limit";
    this.status.textContent = status;

    this.renderNotice();
    const last = this.chat.messages[this.chat.messages.length - 1] === msg;
    this.foot.hidden = streaming;
    this.copyBtn.hidden = !msg.content;
    this.regenBtn.hidden = !last || app.running.has(this.chat.id) || msg.status === Status.ERROR ||
      msg.status === Status.LOST;
    const u = msg.usage;
    this.usage.textContent = u && u.completion_tokens != null ? `${u.completion_tokens} tokens` : "";
  }

  renderNotice() {
    const msg = this.msg;
    let kind = "";
    let text = "";
    let action = null;
    if (msg.status === Status.ERROR && msg.error) {
      kind = "error";
      const code = msg.error.status ? ` (HTTP ${msg.error.status})` : "";
      text = `${msg.error.message || "The generation failed."}${code}`;
      action = { cls: "retry", label: "Retry" };
    } else if (msg.status === Status.LOST) {
      kind = "error";
      text = `Generation lost: ${msg.lost || "the server no longer has this answer."}`;
      if (msg.content) text += " What arrived is shown above.";
      action = { cls: "retry", label: "Retry" };
    } else if (msg.status === Status.INTERRUPTED) {
      kind = "error";
      text = "Connection lost. The answer may still be running on the server.";
      action = { cls: "reconnect", label: "Reconnect" };
    } else if (msg.gaps) {
      kind = "warning";
      text = "Part of this answer could not be replayed (the server no longer had it).";
    }
    this.notice.hidden = !kind;
    if (!kind) return;
    this.notice.className = `notice ${kind}`;
    this.notice.setAttribute("role", kind === "error" ? "alert" : "status");
    const items = [icon("i-alert"), el("span", "notice-text", text)];
    if (action) {
      const b = el("button", `btn btn-small ${action.cls}`, action.label);
      b.type = "button";
      items.push(b);
    }
    this.notice.replaceChildren(...items);
  }
}
