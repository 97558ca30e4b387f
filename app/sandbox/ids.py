"""Record ids that look like the real ones: GHL's 20-character alphanumerics, Rankr's ``con_...``.

Ids come from the operating system's randomness, never from the sandbox's seeded dice: a service keeps
links to ids across sandbox restarts, and a replayed id would silently point a link at a new record.
"""

from __future__ import annotations

import secrets
import string

_ALPHANUMERIC = string.ascii_letters + string.digits


def random_alphanumeric(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def ghl_id() -> str:
    """A GHL-style id such as ``nmFmQEsNgz6AVpgLVUJ0`` (Mongo-like, 20 characters)."""
    return random_alphanumeric(20)


def prefixed_id(prefix: str) -> str:
    """A Rankr-style id such as ``con_5fQk2L0bXw9mT3aZpR7e``."""
    return f"{prefix}_{random_alphanumeric(20)}"
