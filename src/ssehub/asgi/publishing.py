"""POST /publish apart from the server: the checks, the decoding, the commit, the answer.

Both fronts run a publish through this one class, so they share every rule: the ASGI route
(``hub_routes.Publish``) awaits ``run()``; the fast front (``front/``) first tries
``run_now()``, which finishes a small publish on the memory broker without a suspension
point (no task, no await), and awaits ``run()`` only when the broker must be waited for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from starlette.datastructures import Headers
from starlette.types import Scope

from ..core.broker import Prepared
from ..errors import Forbidden, SSEHubError
from ..relay import GENERATION_PREFIX
from ..tokens import Grant
from .auth import Auth
from .bodies import in_item, parse_publications
from .hosts import hosts_of
from .origin import refuse_cross_site
from .query import Query
from .state import HubState

__all__ = ["BATCH_SLICE", "PublishRequest", "publish_gate"]

BROWSER_HEADERS = frozenset({b"origin", b"sec-fetch-site"})  # what refuse_cross_site looks at
#: publications of a batch handled between two yields to the event loop
BATCH_SLICE = 256


def publish_gate(state: HubState, scope: Scope) -> Grant | None:
    """What is checked before the body is read: the request's site (403) and token (401)."""
    for name, _ in scope["headers"]:  # (most publishers are programs that send neither header)
        if name in BROWSER_HEADERS:
            refuse_cross_site(Headers(scope=scope), state.settings, hosts_of(scope))
            break
    return state.auth.authenticate(scope) if state.auth is not None else None


class PublishRequest:
    """One publish request, from its whole body to its JSON answer.

    A bad request raises its SSEHubError from the constructor (decoding) or from ``run``
    (validation): a bad batch publishes nothing.
    """

    __slots__ = ("_ids", "_prepared", "batch", "grant", "pubs", "state")

    def __init__(self, state: HubState, grant: Grant | None, body: bytes, content_type: str,
                 query: Query) -> None:
        self.state = state
        self.grant = grant
        self.pubs, self.batch = parse_publications(body, content_type, query)
        for p in self.pubs:
            for topic in p.topics:
                if isinstance(topic, str) and topic.startswith(GENERATION_PREFIX):
                    raise Forbidden(f"topics under {GENERATION_PREFIX} are written by the LLM relay only")
        self._prepared: list[Prepared] | None = None
        self._ids: list[str] = []

    def _prepare(self, out: list[Prepared]) -> Iterator[None]:
        """Validate and encode every publication into ``out``, yielding between slices (a big
        batch must not hold the loop); then the token's publish rights for every topic."""
        hub = self.state.hub
        for index, p in enumerate(self.pubs):
            try:
                out.append(hub.prepare(p.topics, p.data, event=p.event, retry=p.retry))
            except SSEHubError as exc:
                raise (in_item(index, exc) if self.batch else exc) from None
            if not (index + 1) % BATCH_SLICE:
                yield
        if self.grant is not None:
            Auth.check_publish(self.grant, (t for p in self.pubs for t in p.topics if isinstance(t, str)))

    def run_now(self) -> bytes | None:
        """The answer, if the publish could be finished without waiting; else None (it may
        have validated the publications: ``run()`` goes on from there)."""
        pubs = self.pubs
        if len(pubs) > BATCH_SLICE:
            return None
        hub = self.state.hub
        if len(pubs) == 1 and not self.batch and self.grant is None:  # (most publishes: no loop)
            p = pubs[0]
            prepared = [hub.prepare(p.topics, p.data, event=p.event, retry=p.retry)]
        else:
            prepared = []
            for _ in self._prepare(prepared):
                pass
        self._prepared = prepared
        ids = hub.commit_now(prepared)
        if ids is None:
            return None
        self._ids = ids
        return self._answer()

    async def run(self) -> bytes:
        """Publish, waiting for the broker; the answer's body."""
        prepared = self._prepared
        if prepared is None:
            prepared = []
            for _ in self._prepare(prepared):
                await asyncio.sleep(0)
        hub = self.state.hub
        for start in range(0, len(prepared), BATCH_SLICE):
            if start:
                await asyncio.sleep(0)
            # one broker round trip per slice (per request, for all but huge batches)
            self._ids += await hub.commit_many(prepared[start:start + BATCH_SLICE])
        return self._answer()

    def _answer(self) -> bytes:
        ids = self._ids
        self.state.stats.published += len(ids)
        if self.batch:
            return ('{"ids":[' + ",".join(f'"{i}"' for i in ids) + "]}").encode()
        return b'{"id":"' + ids[0].encode() + b'"}'
