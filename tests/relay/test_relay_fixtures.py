"""Every upstream fixture, under every chunking and line ending, maps to the same events."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssehub.relay.mapping import ChunkMapper, error_from_response
from ssehub.wire import Parser

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "upstream"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
STREAMS = sorted(EXPECTED["streams"])


def run(pieces: Iterable[bytes]) -> list[list[object]]:
    parser, mapper, out = Parser(), ChunkMapper(), []
    for piece in pieces:
        for event in parser.feed(piece):
            out += mapper.feed(event.data, event.event)
    parser.close()
    out += mapper.end()
    return [[o.event, o.data] for o in out]


def body(name: str, newline: bytes = b"\n") -> bytes:
    raw = (FIXTURES / name).read_bytes()
    return raw.replace(b"\n", newline) if newline != b"\n" else raw


def test_every_fixture_is_listed() -> None:
    on_disk = sorted(p.name for p in FIXTURES.glob("*.sse"))
    assert on_disk == STREAMS
    assert sorted(p.name for p in (FIXTURES / "errors").iterdir()) == sorted(EXPECTED["errors"])


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
def test_whole_and_byte_at_a_time(name: str, newline: bytes) -> None:
    data = body(name, newline)
    expected = EXPECTED["streams"][name]
    assert run([data]) == expected
    assert run(data[i : i + 1] for i in range(len(data))) == expected


def awkward_cuts(data: bytes) -> list[int]:
    """Every cut inside a multi-byte UTF-8 character or between CR and LF, plus a stride."""
    cuts = {i for i in range(1, len(data)) if 0x80 <= data[i] < 0xC0}  # before a continuation byte
    cuts |= {i + 1 for i in range(len(data) - 1) if data[i : i + 2] == b"\r\n"}
    cuts |= set(range(1, len(data), 23))
    return sorted(cuts)


@pytest.mark.parametrize("name", STREAMS)
def test_split_in_two_at_every_awkward_byte(name: str) -> None:
    """Two pieces, cut inside every UTF-8 character and between every CR and LF."""
    data = body(name, b"\r\n")
    expected = EXPECTED["streams"][name]
    for cut in awkward_cuts(data):
        assert run([data[:cut], data[cut:]]) == expected, cut


def test_fixtures_hold_multibyte_text_and_cr_lf_cuts() -> None:
    """The chunking tests above really cut inside characters and between CR and LF."""
    data = body("siliconflow_deepseek_r1.sse", b"\r\n")
    emoji = "👋".encode()
    at = data.index(emoji)
    assert run([data[: at + 2], data[at + 2 :]]) == EXPECTED["streams"]["siliconflow_deepseek_r1.sse"]
    cr = data.index(b"\r\n")
    assert run([data[: cr + 1], data[cr + 1 :]]) == EXPECTED["streams"]["siliconflow_deepseek_r1.sse"]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(STREAMS), st.sampled_from([b"\n", b"\r\n", b"\r"]), st.data())
def test_any_chunking(name: str, newline: bytes, data: st.DataObject) -> None:
    raw = body(name, newline)
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=40))))
    bounds = [0, *cuts, len(raw)]
    pieces = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    assert run(pieces) == EXPECTED["streams"][name]


@pytest.mark.parametrize("name", sorted(EXPECTED["errors"]))
def test_error_bodies(name: str) -> None:
    case = EXPECTED["errors"][name]
    out = error_from_response(case["status"], (FIXTURES / "errors" / name).read_bytes(), case["content_type"])
    assert [out.event, out.data] == case["expect"]


def test_exactly_one_terminal_event_per_stream() -> None:
    for name, events in EXPECTED["streams"].items():
        kinds = [e for e, _ in events]
        assert kinds.count("done") + kinds.count("error") == 1, name
        assert kinds[-1] in ("done", "error"), name
        if "usage" in kinds:
            assert kinds.index("usage") == len(kinds) - 2, name
