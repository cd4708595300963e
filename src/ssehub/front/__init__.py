"""The fast front: uvicorn's protocol serving POST /publish and GET /subscribe itself."""

from .protocol import FrontProtocol, front_protocol_class, proxy_headers

__all__ = ["FrontProtocol", "front_protocol_class", "proxy_headers"]
