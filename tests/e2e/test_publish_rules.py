"""Publish: `data` is required in the JSON and form bodies, `retry` is bounded in every form,
a JSON body sent without its content type is told what to do, batch errors name the item."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.fixtures import HubServer


@pytest.fixture
async def base(hub_server: HubServer) -> str:
    server = await hub_server()
    url: str = server.url
    return url


async def test_data_is_required_in_json_and_form(base: str, http: httpx.AsyncClient) -> None:
    resp = await http.post(base + "/publish", json={"topic": "d"})
    assert (resp.status_code, resp.json()) == (400, {"error": "missing field: data"})
    resp = await http.post(base + "/publish", data={"topic": "d"})
    assert resp.status_code == 400 and resp.json()["error"].startswith("missing field: data")
    # an empty event on purpose: data= / "data": "" / an empty body with the topic in the query
    for kwargs in ({"data": {"topic": "d", "data": ""}}, {"json": {"topic": "d", "data": ""}},
                   {"params": {"topic": "d"}, "content": b""}):
        assert (await http.post(base + "/publish", **kwargs)).status_code == 200, kwargs


@pytest.mark.parametrize("retry", ["86400001", "9" * 5000, "-1", "1.5"])
async def test_retry_is_bounded_in_every_form(base: str, http: httpx.AsyncClient, retry: str) -> None:
    message = "retry must be an integer from 0 to 86400000 (milliseconds)"
    forms: list[dict[str, Any]] = [
        {"data": {"topic": "r", "data": "x", "retry": retry}},
        {"params": {"topic": "r", "retry": retry}, "content": b"x"},
    ]
    if retry.lstrip("-").isdigit() and len(retry) < 30:
        forms.append({"json": {"topic": "r", "data": "x", "retry": int(retry)}})
    for kwargs in forms:
        resp = await http.post(base + "/publish", **kwargs)
        assert (resp.status_code, resp.json()) == (400, {"error": message}), kwargs
    assert (await http.post(base + "/publish", content=b'{"topic": "r", "data": 1, "retry": 1e400}',
                            headers={"content-type": "application/json"})).status_code == 400


async def test_retry_at_the_bound_is_accepted(base: str, http: httpx.AsyncClient) -> None:
    for kwargs in ({"json": {"topic": "r", "data": "x", "retry": 86_400_000}},
                   {"data": {"topic": "r", "data": "x", "retry": "0"}}):
        assert (await http.post(base + "/publish", **kwargs)).status_code == 200


@pytest.mark.parametrize("ctype", [None, "application/x-www-form-urlencoded", "text/plain"])
async def test_json_without_its_content_type_is_told_what_to_send(base: str, http: httpx.AsyncClient,
                                                              ctype: str | None) -> None:
    headers = {"content-type": ctype} if ctype else {}
    for body in (b'{"topic": "j", "data": 1}', b'  [{"topic": "j", "data": 1}]'):
        resp = await http.post(base + "/publish", content=body, headers=headers)
        assert resp.status_code == 415
        hint = "the body looks like JSON: send it with Content-Type: application/json"
        assert resp.json() == {"error": hint}


async def test_batch_errors_name_the_item(base: str, http: httpx.AsyncClient) -> None:
    items = [{"topic": "b", "data": 1}, {"topic": "b"}]
    resp = await http.post(base + "/publish", json=items)
    assert (resp.status_code, resp.json()) == (400, {"error": "item 1: missing field: data"})
    items = [{"topic": "b", "data": 1}, {"topic": "b", "data": 2}, {"topic": "bad\x01", "data": 3}]
    resp = await http.post(base + "/publish", json=items)
    assert resp.status_code == 400
    assert resp.json()["error"].startswith("item 2: topic must not contain"), resp.json()
    items = [{"topic": "b", "data": 1, "retry": 10**9}]
    assert (await http.post(base + "/publish", json=items)).json()["error"].startswith("item 0: retry")
    # nothing of a refused batch was published
    topics = (await http.get(base + "/topics")).json()["topics"]
    assert [t for t in topics if t["topic"] == "b"] == []
