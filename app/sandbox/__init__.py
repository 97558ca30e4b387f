"""Built-in emulators of the GHL and Rankr APIs, for trying the service out and for end-to-end tests.

``Sandbox`` serves both under one FastAPI app (GHL at ``/ghl``, Rankr at ``/rankr``): in-memory
records, the products' request and error shapes, signed webhooks back to the service for every
change, rate limits with the products' headers, injectable faults, HTML pages to edit records by
hand, and control/inspection routes under ``/{ghl,rankr}/_sandbox``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.sandbox.config import SandboxConfig
    from app.sandbox.ghl.sandbox import GhlSandbox
    from app.sandbox.rankr.sandbox import RankrSandbox
    from app.sandbox.requestlog import RecordedRequest
    from app.sandbox.sandbox import Sandbox, create_standalone_app
    from app.sandbox.webhooks import Delivery

# Imported on first use: the settings import ``app.sandbox.keys``, and every command would otherwise
# pay for building the sandboxes' web app (FastAPI and their routes) at start.
_WHERE = {
    "Delivery": "app.sandbox.webhooks",
    "GhlSandbox": "app.sandbox.ghl.sandbox",
    "RankrSandbox": "app.sandbox.rankr.sandbox",
    "RecordedRequest": "app.sandbox.requestlog",
    "Sandbox": "app.sandbox.sandbox",
    "SandboxConfig": "app.sandbox.config",
    "create_standalone_app": "app.sandbox.sandbox",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = [
    "Delivery",
    "GhlSandbox",
    "RankrSandbox",
    "RecordedRequest",
    "Sandbox",
    "SandboxConfig",
    "create_standalone_app",
]
