"""The client, like EventSource, fails on a 200 that is not text/event-stream (a proxy's
login page, a misrouted URL) instead of parsing HTML as events or retrying forever."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from ssehub import client


async def page(request):  # type: ignore[no-untyped-def]
    return HTMLResponse("<html>please log in</html>")


async def test_subscribe_refuses_a_response_that_is_not_an_event_stream() -> None:
    app = Starlette(routes=[Route("/subscribe", page)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        with pytest.raises(client.ClientError, match="text/event-stream"):
            async for _ in client.subscribe("http://hub", "t", client=http, max_failures=1):
                pass
