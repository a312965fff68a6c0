"""ASGI entry point for ``uvicorn qrgate.http.asgi:app`` (settings from the environment)."""

from qrgate.config import Settings
from qrgate.http.app import create_app

app = create_app(Settings.from_env())
