"""The pure chunk → event mapping: think tags, terminal rules, error shapes."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ssehub.relay.mapping import (
    ChunkMapper,
    Out,
    ThinkSplitter,
    error_from_response,
    map_completion,
    merge_texts,
)


def chunk(finish: str | None = None, **delta: Any) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


def texts(outs: list[Out]) -> tuple[str, str]:
    r = "".join(o.data["text"] for o in outs if o.event == "reasoning")
    c = "".join(o.data["text"] for o in outs if o.event == "content")
    return r, c


def split_feed(text: str, cuts: list[int]) -> list[Out]:
    s = ThinkSplitter()
    bounds = [0, *sorted(set(cuts)), len(text)]
    out: list[Out] = []
    for a, b in itertools.pairwise(bounds):
        out += s.feed(text[a:b])
    return out + s.flush()


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab <>/thinké🙂\n", max_size=30), st.text(alphabet="xy <>/🙂\n", max_size=30),
       st.data())
def test_think_tags_split_anywhere(reasoning: str, answer: str, data: st.DataObject) -> None:
    reasoning = reasoning.replace("</think>", "")
    text = f"<think>\n{reasoning}</think>\n\n{answer}"
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=12))
    r, c = texts(split_feed(text, cuts))
    assert (r, c) == (reasoning.lstrip(), answer.lstrip())


@given(st.text(max_size=40), st.data())
def test_content_without_tags_is_untouched(text: str, data: st.DataObject) -> None:
    stripped = text.lstrip()
    if stripped.startswith("<think>") or (stripped and "<think>".startswith(stripped)):
        text = "x" + text
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=8))
    r, c = texts(split_feed(text, cuts))
    assert r == ""
    assert c == (text if text.strip() else "")


def test_think_only_at_the_start() -> None:
    out = split_feed("Use <think>…</think> tags.", [3, 5, 9])
    assert texts(out) == ("", "Use <think>…</think> tags.")


def test_unclosed_think_is_reasoning_at_end() -> None:
    assert texts(split_feed("<think>still thinking</thi", [])) == ("still thinking</thi", "")


def test_reasoning_fields_and_role_only_delta() -> None:
    m = ChunkMapper()
    out = m.feed(chunk(role="assistant", content=None, reasoning_content=""))
    out += m.feed(chunk(reasoning_content="a", content=None))
    out += m.feed(chunk(reasoning="b", content=""))
    out += m.feed(chunk(reasoning_content="c", reasoning="c"))  # both: said once
    out += m.feed(chunk(content="d"))
    assert out == [Out("reasoning", {"text": t}) for t in "abc"] + [Out("content", {"text": "d"})]


def test_usage_published_once_before_done_and_terminal_once() -> None:
    m = ChunkMapper()
    usage1 = {"prompt_tokens": 1, "completion_tokens": 1}
    usage2 = {"prompt_tokens": 1, "completion_tokens": 2}
    out = m.feed(json.dumps({"choices": [{"index": 0, "delta": {"content": "x"}}], "usage": usage1}))
    out += m.feed(chunk("stop"))
    out += m.feed(chunk("stop"))  # duplicate finish chunk (OpenRouter)
    out += m.feed(json.dumps({"choices": [], "usage": usage2}))
    out += m.feed("[DONE]")
    out += m.feed(chunk(content="after"))
    out += m.end()
    assert out == [Out("content", {"text": "x"}), Out("usage", usage2),
                   Out("done", {"finish_reason": "stop"})]


def test_error_shapes_mid_stream() -> None:
    cases = [
        ({"error": {"message": "boom", "code": 502}}, "boom", 502),
        ({"error": {"message": "x", "code": "server_error"}}, "x", None),
        ({"error": "plain"}, "plain", None),
        ({"object": "error", "message": "vllm", "code": 400}, "vllm", 400),
        ({"error": {"message": "Provider returned error", "code": 400, "metadata": {"raw": "ERROR"}}},
         "Provider returned error: ERROR", 400),
    ]
    for obj, message, status in cases:
        m = ChunkMapper()
        assert m.feed(json.dumps(obj)) == [Out("error", {"message": message, "status": status})]
        assert m.feed("[DONE]") == [] and m.end() == []


def test_finish_reason_error_event_error_and_garbage() -> None:
    m = ChunkMapper()
    assert m.feed(chunk("error"))[-1].event == "error"
    m = ChunkMapper()
    assert m.feed("overloaded", event="error") == [Out("error", {"message": "overloaded", "status": None})]
    m = ChunkMapper()
    assert m.feed("{not json")[0].data["status"] is None and m.finished
    m = ChunkMapper()
    assert m.feed("[1, 2]")[0].event == "error"


def test_end_without_finish_is_an_error_with_finish_is_done() -> None:
    m = ChunkMapper()
    m.feed(chunk(content="x"))
    assert m.end()[-1] == Out("error", {"message": "upstream closed the connection before the answer "
                                                  "was complete", "status": None})
    m = ChunkMapper()
    m.feed(chunk("length", content="x"))
    assert m.end() == [Out("done", {"finish_reason": "length"})]
    m = ChunkMapper()
    assert m.feed("[DONE]") == [Out("done", {"finish_reason": "stop"})]


def test_fail_after_finish_is_ignored() -> None:
    m = ChunkMapper()
    m.feed("[DONE]")
    assert m.fail("timeout") == []
    m = ChunkMapper()
    assert m.fail("timed out", 504) == [Out("error", {"message": "timed out", "status": 504})]


def test_error_messages_are_single_line_and_bounded() -> None:
    out = error_from_response(500, json.dumps({"error": {"message": "a\nb\r\n" + "x" * 2000}}).encode())
    assert "\n" not in out.data["message"] and len(out.data["message"]) <= 500
    assert error_from_response(502, b"").data == {"message": "upstream answered HTTP 502", "status": 502}
    html = error_from_response(500, b"<h1>x</h1>", "text/html")
    assert html.data["message"] == "upstream answered HTTP 500"


def test_whole_completion() -> None:
    doc = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "<think>r</think>ok"},
                        "finish_reason": "stop"}], "usage": {"total_tokens": 3}}
    assert map_completion(doc) == [Out("reasoning", {"text": "r"}), Out("content", {"text": "ok"}),
                                   Out("usage", {"total_tokens": 3}), Out("done", {"finish_reason": "stop"})]
    assert map_completion({"choices": []})[-1].event == "error"
    assert map_completion({"error": {"message": "no"}}) == [Out("error", {"message": "no", "status": None})]


def test_merge_texts() -> None:
    outs = [Out("reasoning", {"text": "a"}), Out("reasoning", {"text": "b"}), Out("content", {"text": "c"}),
            Out("content", {"text": "d"}), Out("usage", {}), Out("done", {"finish_reason": "stop"})]
    assert merge_texts(outs) == [Out("reasoning", {"text": "ab"}), Out("content", {"text": "cd"}),
                                 Out("usage", {}), Out("done", {"finish_reason": "stop"})]


ANY_CHUNK = st.one_of(
    st.builds(lambda t: chunk(content=t), st.text(max_size=5)),
    st.builds(lambda t: chunk(reasoning_content=t), st.text(max_size=5)),
    st.sampled_from([chunk("stop"), chunk("length"), chunk("error"), "[DONE]", "garbage",
                     json.dumps({"choices": []}), json.dumps({"error": {"message": "x"}}),
                     json.dumps({"choices": [], "usage": {"total_tokens": 1}})]),
)


@given(st.lists(ANY_CHUNK, max_size=20))
def test_exactly_one_terminal_whatever_arrives(chunks: list[str]) -> None:
    m = ChunkMapper()
    out: list[Out] = []
    for c in chunks:
        out += m.feed(c)
    out += m.end()
    kinds = [o.event for o in out]
    assert kinds.count("done") + kinds.count("error") == 1
    assert kinds[-1] in ("done", "error")
    assert kinds.count("usage") <= 1
