"""A subscriber process killed with SIGKILL mid-stream: the server notices at once (not at the
next write) and releases the subscription and its connection slot."""

from __future__ import annotations

import asyncio
import signal
import sys

import httpx
import pytest

from tests.support.fixtures import Serve
from tests.support.hub import subscriber_count, wait_subscribers
from tests.support.serve import ServeProcess
from tests.support.sse import SSEStream, subscribe_target

pytestmark = pytest.mark.both_fronts  # the serve fixture: front=fast and front=asgi

SUBSCRIBER = r"""
import socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
sock.sendall(("GET " + sys.argv[2] + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").encode())
seen = b""
while b"retry:" not in seen:
    chunk = sock.recv(65536)
    if not chunk:
        sys.exit("stream closed")
    seen += chunk
print("ready", flush=True)
while sock.recv(65536):
    pass
"""


async def test_sigkilled_subscriber_is_dropped_while_idle(
    serve: Serve, http: httpx.AsyncClient, sse_streams: list[SSEStream]
) -> None:
    # a long heartbeat and no publishes: nothing is written to the dead peer, so only the
    # disconnect listener can notice it
    # every open connection counts: three streams and the test's own HTTP client
    hub: ServeProcess = await serve("--heartbeat", "300", "--max-connections", "4")
    # two healthy neighbours on the same topic (they share the topic's wake-up with the victim)
    neighbours = [await SSEStream.open(hub.port, subscribe_target(t)) for t in ("doomed", ["doomed", "x"])]
    sse_streams.extend(neighbours)
    target = subscribe_target(["doomed", "doomed/2"])
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SUBSCRIBER, str(hub.port), target,
        stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 15)
        assert line == b"ready\n"
        assert await subscriber_count(http, hub.url, "doomed") == 3
        assert await subscriber_count(http, hub.url, "doomed/2") == 1
        # the only connection slot is taken
        refused = await SSEStream.open(hub.port, subscribe_target("other"))
        sse_streams.append(refused)
        assert refused.status == 503
        await refused.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
    assert proc.returncode == -signal.SIGKILL

    await wait_subscribers(http, hub.url, "doomed", 2, timeout=5)
    await wait_subscribers(http, hub.url, "doomed/2", 0, timeout=5)
    # the connection slot is free again
    again = await SSEStream.open(hub.port, subscribe_target("doomed"))
    sse_streams.append(again)
    assert again.status == 200
    # and the neighbours still get every event
    response = await http.post(hub.url + "/publish", json={"topic": "doomed", "data": "still here"})
    ident = response.json()["id"]
    for stream in (*neighbours, again):
        event = await stream.next_event()
        assert (event.id, event.data) == (ident, "still here")
