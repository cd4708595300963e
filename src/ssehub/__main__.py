"""``python -m ssehub`` is the ``ssehub`` command."""

import sys

from .cli import main

sys.exit(main())
