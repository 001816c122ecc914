"""The shot browser: server-rendered pages over the mesh at ``/`` (assets, a title, search, a feature), with their
templates and a little script of their own under ``static/``; nothing is fetched from outside the service."""

from mediamesh.orchestrator.interfaces.web.routes import STATIC_PATH, mount

__all__ = ["STATIC_PATH", "mount"]
