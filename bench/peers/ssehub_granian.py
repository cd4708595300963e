"""ssehub's ASGI app for granian (a Rust HTTP server): ``granian --interface asgi ssehub_granian:app``.

Design (d) of issue 9: the same app, another server. Settings come from the SSEHUB_* environment.
"""

from ssehub.asgi import create_app
from ssehub.config import load_settings

app = create_app(load_settings())
