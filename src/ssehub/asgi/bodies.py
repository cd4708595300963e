"""Reading and decoding request bodies for publish: size-limited, every format, precise errors.

``data`` rules, the same in every form: the JSON and form bodies must have a ``data`` field
(400 ``missing field: data``; ``data=`` or ``"data": ""`` publish an empty event on
purpose); with the topic in the query string the body *is* the data, so an empty body is an
empty event. ``retry`` is an integer 0 … 86,400,000 (ms) in every form. A body that looks
like JSON sent with a form or no content type is answered 415 with what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import Receive

from ..errors import InvalidField, MalformedBody, PayloadTooLarge, SSEHubError, UnsupportedMediaType
from ..wire import MAX_RETRY_MS
from .query import Query

__all__ = ["RESERVED_EVENTS", "Publication", "in_item", "parse_publications", "read_body"]


class Publication(NamedTuple):  # (a NamedTuple: built once per publish, cheaper than a dataclass)
    topics: tuple[str, ...] | list[Any]
    data: str
    event: str | None = None
    retry: int | None = None


async def read_body(receive: Receive, headers: Headers, limit: int) -> bytes:
    """The whole request body, or PayloadTooLarge as soon as it is known to exceed ``limit``."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body larger than max_event_bytes ({limit} bytes)")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise MalformedBody("client disconnected before the body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body larger than max_event_bytes ({limit} bytes)")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _as_text(data: object) -> str:
    """A JSON string is sent as its text; any other JSON value as compact UTF-8 JSON."""
    if isinstance(data, str):
        return data
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _retry(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        # no int() of a 5,000-digit string: it raises ValueError (CPython's digit limit)
        value = int(value) if len(value.lstrip("0")) <= 8 else MAX_RETRY_MS + 1
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_RETRY_MS:
        return value
    raise InvalidField(f"retry must be an integer from 0 to {MAX_RETRY_MS} (milliseconds)")


def in_item(index: int, exc: SSEHubError) -> SSEHubError:
    """The same error, its message prefixed with the batch item it is about."""
    error = type(exc)(f"item {index}: {exc.message}")
    error.status = exc.status
    return error


#: event names ssehub itself emits on ordinary topics: a subscriber can trust every one it sees
RESERVED_EVENTS = frozenset({"gap"})


def _event(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MalformedBody("event must be a string")
    if value in RESERVED_EVENTS:
        raise MalformedBody(f"event name {value!r} is reserved for ssehub's own notices")
    return value


_FIELDS = {"topic", "data", "event", "retry"}


def _from_object(obj: object) -> Publication:
    if not isinstance(obj, Mapping):
        raise MalformedBody("body must be a JSON object (or an array of them)")
    unknown = set(obj) - _FIELDS
    if unknown:
        raise MalformedBody(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "topic" not in obj:
        raise MalformedBody("missing field: topic")
    if "data" not in obj:
        raise MalformedBody("missing field: data")
    topic = obj["topic"]
    topics = (topic,) if isinstance(topic, str) else topic
    if not isinstance(topics, list | tuple):
        raise MalformedBody("topic must be a string or an array of strings")
    try:
        data = _as_text(obj["data"])
    except ValueError:
        raise MalformedBody("data must be valid JSON (no NaN or Infinity)") from None
    return Publication(tuple(topics), data, _event(obj.get("event")), _retry(obj.get("retry")))


def parse_publications(
    body: bytes, content_type: str, query: Query
) -> tuple[list[Publication], bool]:
    """Decode a publish request (``content_type``: its Content-Type header, "" if none): its
    publications and whether it was a batch (a JSON array).

    Names and values are validated by the hub, not here.
    """
    try:
        if "topic" in query:
            # POST /publish?topic=T[&event=E]: the whole body is the data, verbatim
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise MalformedBody("body must be UTF-8 text") from None
            return [Publication(tuple(query.getlist("topic")), text, _event(query.get("event")),
                                _retry(query.get("retry")))], False
        ctype = content_type.split(";", 1)[0].strip().lower()
        if ctype == "application/json" or ctype.endswith("+json"):
            try:
                obj = json.loads(body)
            except (ValueError, UnicodeDecodeError) as exc:
                raise MalformedBody(f"malformed JSON: {exc}") from None
            if isinstance(obj, list):
                if not obj:
                    raise MalformedBody("empty array: nothing to publish")
                items = []
                for index, item in enumerate(obj):
                    try:
                        items.append(_from_object(item))
                    except SSEHubError as exc:
                        raise in_item(index, exc) from None
                return items, True
            return [_from_object(obj)], False
        if ctype in ("", "application/x-www-form-urlencoded", "text/plain") and body.lstrip()[:1] in (
                b"{", b"["):
            raise UnsupportedMediaType("the body looks like JSON: send it with "
                                       "Content-Type: application/json")
        if ctype == "application/x-www-form-urlencoded":
            try:
                pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False,
                                  errors="strict")
            except UnicodeDecodeError:
                raise MalformedBody("form body must be UTF-8") from None
            form: dict[str, list[str]] = {}
            for key, value in pairs:
                if key not in _FIELDS:
                    raise MalformedBody(f"unknown field: {key}")
                form.setdefault(key, []).append(value)
            if "topic" not in form:
                raise MalformedBody("missing field: topic")
            if "data" not in form:
                raise MalformedBody("missing field: data (send data= for an empty event)")
            for key in ("data", "event", "retry"):
                if len(form.get(key, ())) > 1:
                    raise MalformedBody(f"field {key} given more than once")
            data = form["data"][0]
            event = _event(form["event"][0]) if "event" in form else None
            retry = form["retry"][0] if "retry" in form else None
            return [Publication(tuple(form["topic"]), data, event, _retry(retry))], False
    except RecursionError:
        raise MalformedBody("JSON nested too deeply") from None
    raise UnsupportedMediaType(
        "use Content-Type application/json or application/x-www-form-urlencoded, "
        "or name the topic in the query string to publish the raw body"
    )
