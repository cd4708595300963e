"""ssehub — a Server-Sent Events hub: topics with exact resume, and LLM token streaming.

In process::

    async with Hub() as hub:
        await hub.publish("news", "hello")
        async for event in hub.subscribe(["news"], last_event_id="earliest"): ...

As an ASGI app: ``create_app(settings)``; as a server: ``ssehub serve``.
"""

from __future__ import annotations

from .asgi import create_app
from .config import Settings, load_settings
from .core import Hub, Subscription
from .errors import SSEHubError
from .wire import Event

__all__ = ["Event", "Hub", "SSEHubError", "Settings", "Subscription", "create_app", "load_settings"]
__version__ = "0.1.0"
