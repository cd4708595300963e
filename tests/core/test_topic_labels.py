"""``Subscription.label_topics()``: each event names the topics it came from (``topic:`` lines),
for the subscriptions that ask; the log's frames are unchanged and shared."""

from __future__ import annotations

import json

from ssehub.core import Hub, HubLimits
from ssehub.wire import Parser


def labelled(chunk: bytes) -> list[tuple[str, list[str]]]:
    """(data, topic lines) per block of a chunk (the WHATWG parser ignores ``topic:``)."""
    out = []
    for block in chunk.decode().split("\n\n")[:-1]:
        lines = block.split("\n")
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        out.append((data, [line[7:] for line in lines if line.startswith("topic: ")]))
    return out


async def test_multi_topic_events_name_their_own_topic() -> None:
    async with Hub() as hub:
        sub = hub.subscribe(["news", "sport"])
        sub.label_topics()
        plain = hub.subscribe(["news", "sport"])
        await hub.publish("news", "n1")
        await hub.publish("sport", "s1")
        await hub.publish(["news", "sport"], "both")  # one event, sent once, naming both
        await hub.publish("weather", "not ours")
        chunk = sub.poll()
        assert chunk is not None
        assert labelled(chunk) == [("n1", ["news"]), ("s1", ["sport"]), ("both", ["news", "sport"])]
        # a WHATWG parser sees exactly what an unlabelled subscription gets
        plain_chunk = plain.poll()
        assert plain_chunk is not None and b"topic:" not in plain_chunk
        assert Parser().feed(chunk) == Parser().feed(plain_chunk)
        # the log's frames are the same bytes for everyone: the labels are extra pieces
        assert hub.topic("news").log.frames[0] in chunk and hub.topic("news").log.frames[0] in plain_chunk


async def test_one_topic_subscription_labelled_and_the_fast_path_untouched() -> None:
    async with Hub() as hub:
        sub = hub.subscribe("news")
        sub.label_topics()
        plain = hub.subscribe("news")
        ident = await hub.publish("news", "hello")
        assert sub.poll() == f"topic: news\nid: {ident}\ndata: hello\n\n".encode()
        assert plain.poll() == f"id: {ident}\ndata: hello\n\n".encode()


async def test_gaps_are_labelled_too() -> None:
    async with Hub(limits=HubLimits(history_size=2)) as hub:
        first = await hub.publish("news", "1")
        for i in range(4):
            await hub.publish(["news", "sport"], str(i))
        sub = hub.subscribe(["news", "sport"], last_event_id=first)
        sub.label_topics()
        await sub.start()
        chunk = sub.poll()
        assert chunk is not None
        blocks = labelled(chunk)
        gaps = [(json.loads(d)["topic"], t) for d, t in blocks if d.startswith("{")]
        assert gaps == [("news", ["news"]), ("sport", ["sport"])]
        assert blocks[2:] == [("2", ["news", "sport"]), ("3", ["news", "sport"])]


async def test_labels_count_against_the_chunk_limit() -> None:
    async with Hub(limits=HubLimits(max_chunk_bytes=64)) as hub:
        sub = hub.subscribe(["a", "b"])
        sub.label_topics()
        for i in range(10):
            await hub.publish(["a", "b"], f"event {i}")
        seen: list[tuple[str, list[str]]] = []
        while (chunk := sub.poll()) not in (None, b""):
            assert chunk is not None
            seen += labelled(chunk)
        assert seen == [(f"event {i}", ["a", "b"]) for i in range(10)]  # all, once, in order
