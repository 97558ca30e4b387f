"""Built-in emulators of the GHL and Rankr APIs, for trying the service out and for end-to-end tests.

``Sandbox`` serves both under one FastAPI app (GHL at ``/ghl``, Rankr at ``/rankr``): in-memory
records, the products' request and error shapes, signed webhooks back to the service for every
change, rate limits with the products' headers, injectable faults, HTML pages to edit records by
hand, and control/inspection routes under ``/{ghl,rankr}/_sandbox``.
"""

from app.sandbox.config import SandboxConfig
from app.sandbox.ghl.sandbox import GhlSandbox
from app.sandbox.rankr.sandbox import RankrSandbox
from app.sandbox.requestlog import RecordedRequest
from app.sandbox.sandbox import Sandbox, create_standalone_app
from app.sandbox.webhooks import Delivery

__all__ = [
    "Delivery",
    "GhlSandbox",
    "RankrSandbox",
    "RecordedRequest",
    "Sandbox",
    "SandboxConfig",
    "create_standalone_app",
]
