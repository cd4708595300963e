"""Topic patterns: '*' is any run of characters ('/' included); everything else is literal."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssehub.core.patterns import TopicPatterns, compile_patterns


def reference(pattern: str, topic: str) -> bool:
    """The meaning, spelled as a regex: literal pieces joined by '.*'."""
    regex = ".*".join(re.escape(piece) for piece in pattern.split("*"))
    return re.fullmatch(regex, topic, re.DOTALL) is not None


@pytest.mark.parametrize(("pattern", "topic", "expected"), [
    ("news", "news", True),
    ("news", "news/a", False),
    ("news/*", "news/a", True),
    ("news/*", "news/a/b", True),  # '/' is matched by '*'
    ("news/*", "news/", True),
    ("news/*", "news", False),
    ("*", "anything/at/all", True),
    ("*/x", "a/b/x", True),
    ("*/x", "a/b/xy", False),
    ("a*b*c", "abc", True),
    ("a*b*c", "aXbYc", True),
    ("a*b*c", "acb", False),
    ("ab*ba", "aba", False),  # the prefix and suffix must not overlap
    ("ab*ba", "abba", True),
    ("**", "x", True),
    ("a**b", "ab", True),
    # no other glob syntax: ?, [..] and \ are literal
    ("n?ws", "news", False),
    ("n?ws", "n?ws", True),
    ("[ab]", "a", False),
    ("[ab]", "[ab]", True),
    ("a\\*", "a\\b", True),
    ("a\\*", "a*", False),
    ("", "x", False),
])
def test_pattern_meaning(pattern: str, topic: str, expected: bool) -> None:
    assert TopicPatterns([pattern]).matches(topic) is expected
    assert reference(pattern, topic) is expected


def test_a_set_matches_when_any_pattern_does() -> None:
    patterns = TopicPatterns(["news/*", "prices", "*/alerts"])
    assert patterns.matches("news/x")
    assert patterns.matches("prices")
    assert patterns.matches("eu/alerts")
    assert not patterns.matches("price")
    assert not TopicPatterns([]).matches("x")
    assert not TopicPatterns([])


def test_compiled_once_per_claim() -> None:
    assert compile_patterns(("a/*", "b")) is compile_patterns(("a/*", "b"))


alphabet = st.sampled_from("ab/*?[")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet, max_size=8), st.text(st.sampled_from("ab/*?["), max_size=10))
def test_agrees_with_the_regex_reference(pattern: str, topic: str) -> None:
    assert TopicPatterns([pattern]).matches(topic) is reference(pattern, topic)


def test_many_stars_stay_linear() -> None:
    """A backtracking matcher takes exponential time here; the piecewise one does not."""
    pattern = "*a" * 30 + "*b"
    assert not TopicPatterns([pattern]).matches("a" * 256)
