"""The ASGI entry point for uvicorn workers: settings come from the environment (``XNATD_*``)."""

from __future__ import annotations

from xnatd import config
from xnatd.api.app import create_app

app = create_app(config.load())
