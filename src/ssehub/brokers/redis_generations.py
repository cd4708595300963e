"""Generations across processes on Redis (see ``ssehub.relay.coordination``).

Keys (all under the namespace's hash tag, so a namespace stays in one Redis Cluster slot):

- ``{ns}:gen:<G>``      hash ``owner``, ``state`` (running | finished | lost), ``terminal``;
  given a time to live when the generation ends;
- ``{ns}:lease:<G>``    the owner's lease on a running generation (expires unless refreshed);
- ``{ns}:readers:<G>``  hash process → its number of readers of ``G``;
- ``{ns}:proc:<P>``     process ``P`` is alive (expires unless refreshed);
- ``{ns}:ctl``          a short stream of control messages (stop, readers changed), read by
  every process with ``XREAD BLOCK``: ordered, and nothing is lost across a reconnect.

The owner's lease and each process's liveness expire after ``lease`` seconds and are
refreshed every ``lease / 3``. ``claim_lost`` is one script: of all the processes that find a
running generation without a lease, exactly one turns it ``lost``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any

__all__ = ["RedisGenerations"]

log = logging.getLogger("ssehub.relay")
CTL_MAXLEN = 10_000
BLOCK_MS = 1000

#: renew the owner's lease only while the record still says it runs here (else 0: another
#: process declared it lost while this one stalled; a record that vanished is written again)
_RENEW = """
local owner = redis.call('HGET', KEYS[1], 'owner')
local state = redis.call('HGET', KEYS[1], 'state')
if not owner then
  redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'state', 'running')
elseif owner ~= ARGV[1] or state ~= 'running' then
  return 0
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return 1
"""

_CLAIM_LOST = """
if redis.call('HGET', KEYS[1], 'state') == 'running' and redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('HSET', KEYS[1], 'state', 'lost')
  redis.call('EXPIRE', KEYS[1], ARGV[1])
  return 1
end
return 0
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisGenerations:
    shared = True

    def __init__(self, client: Any, reader: Any, prefix: str, *, topic_key: Callable[[str], str],
                 lease: float, timeout: float, ttl: float) -> None:
        self.redis = client
        self.reader = reader  # its socket timeout allows XREAD BLOCK
        self.ns = prefix.rstrip(":")
        self.topic_key = topic_key
        self.lease_ms = max(1, int(lease * 1000))
        self.timeout = timeout
        self.ttl = max(1, int(ttl))
        self.process = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._reader: asyncio.Task[None] | None = None
        self._on_stop: Callable[[str], None] = lambda gid: None
        self._on_readers: Callable[[str], None] = lambda gid: None
        self._claim_lost = client.register_script(_CLAIM_LOST)
        self._renew = client.register_script(_RENEW)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.ns}:{kind}:{name}"

    async def _call(self, coro: Any) -> Any:
        return await asyncio.wait_for(coro, self.timeout)

    # -- lifecycle ------------------------------------------------------------------
    async def start(self, on_stop: Callable[[str], None], on_readers: Callable[[str], None]) -> None:
        self._on_stop, self._on_readers = on_stop, on_readers
        last = "$"
        with contextlib.suppress(Exception):  # Redis down at start: read from the beginning later
            info = await self._call(self.redis.xinfo_stream(f"{self.ns}:ctl"))
            last = _text(info["last-generated-id"])
        await self.refresh([])
        self._reader = asyncio.get_running_loop().create_task(self._read_control(last),
                                                              name="ssehub-generations-control")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        with contextlib.suppress(Exception):
            await self._call(self.redis.delete(self._key("proc", self.process)))

    async def _read_control(self, last: str) -> None:
        """Follow ``{ns}:ctl``: stop requests addressed to this process, reader changes."""
        stream, backoff = f"{self.ns}:ctl", 0.1
        while True:
            try:
                if last == "$":  # never read yet: start at the current end
                    last = _text((await self.redis.xinfo_stream(stream))["last-generated-id"])
                reply = await self.reader.xread({stream: last}, count=500, block=BLOCK_MS)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if "no such key" in str(exc).lower():
                    last = "0-0"
                else:
                    log.debug("control stream: %s", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                continue
            for _, entries in reply or ():
                for ident, fields in entries:
                    last = _text(ident)
                    op, gid = _text(fields.get(b"op", b"")), _text(fields.get(b"gid", b""))
                    to = _text(fields.get(b"to", b""))
                    if op == "stop" and to == self.process:
                        self._on_stop(gid)
                    elif op == "readers" and to == self.process:
                        self._on_readers(gid)

    # -- owner side -----------------------------------------------------------------
    async def claim(self, gid: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._key("gen", gid), mapping={"owner": self.process, "state": "running"})
        pipe.set(self._key("lease", gid), self.process, px=self.lease_ms)
        await self._call(pipe.execute())

    async def refresh(self, gids: list[str]) -> list[str]:
        """Renew this process's liveness and the leases of ``gids``; return those of them
        that another process declared lost (their owner here must stop, silently)."""
        await self._call(self.redis.set(self._key("proc", self.process), "1", px=self.lease_ms))
        if not gids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for gid in gids:
            await self._renew(keys=[self._key("gen", gid), self._key("lease", gid)],
                              args=[self.process, self.lease_ms], client=pipe)
        kept = await self._call(pipe.execute())
        return [gid for gid, ok in zip(gids, kept, strict=True) if not ok]

    async def finish(self, gid: str, terminal_id: str | None, ttl: float, *, topic: str) -> None:
        key = self._key("gen", gid)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(key, mapping={"state": "finished", "terminal": terminal_id or ""})
        pipe.expire(key, max(1, int(ttl)))
        pipe.delete(self._key("lease", gid), self._key("readers", gid))
        pipe.expire(self.topic_key(topic), max(1, int(ttl)))  # the finished answer's history
        await self._call(pipe.execute())

    # -- any process ----------------------------------------------------------------
    async def status(self, gid: str) -> tuple[str, str | None] | None:
        record = await self._call(self.redis.hgetall(self._key("gen", gid)))
        if not record:
            return None
        state = _text(record.get(b"state", b""))
        terminal = _text(record.get(b"terminal", b"")) or None
        return (state, terminal if state == "finished" else None)

    async def _owner(self, gid: str) -> str | None:
        record = await self._call(self.redis.hmget(self._key("gen", gid), ["owner", "state"]))
        owner, state = record
        if owner is None or state is None or _text(state) != "running":
            return None
        return _text(owner)

    async def request_stop(self, gid: str) -> bool:
        owner = await self._owner(gid)
        if owner is None:
            return False
        await self._call(self.redis.xadd(f"{self.ns}:ctl", {"op": "stop", "gid": gid, "to": owner},
                                         maxlen=CTL_MAXLEN, approximate=True))
        return True

    async def set_readers(self, gid: str, count: int) -> None:
        owner = await self._owner(gid)
        key = self._key("readers", gid)
        pipe = self.redis.pipeline(transaction=False)
        if count > 0:
            pipe.hset(key, self.process, count)
            pipe.pexpire(key, max(self.lease_ms * 20, 60_000))
        else:
            pipe.hdel(key, self.process)
        if owner is not None:
            pipe.xadd(f"{self.ns}:ctl", {"op": "readers", "gid": gid, "to": owner},
                      maxlen=CTL_MAXLEN, approximate=True)
        await self._call(pipe.execute())

    async def remote_readers(self, gid: str) -> int:
        counts = await self._call(self.redis.hgetall(self._key("readers", gid)))
        others = [(_text(p), int(c)) for p, c in counts.items() if _text(p) != self.process and int(c) > 0]
        if not others:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for proc, _ in others:
            pipe.exists(self._key("proc", proc))
        alive = await self._call(pipe.execute())
        return sum(c for (_, c), live in zip(others, alive, strict=True) if live)

    async def claim_lost(self, gid: str) -> bool:
        won = await self._call(self._claim_lost(keys=[self._key("gen", gid), self._key("lease", gid)],
                                                args=[self.ttl]))
        return bool(won)
