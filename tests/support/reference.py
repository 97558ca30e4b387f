"""Where the reference material (``../shared``: official GHL specs, the Rankr contract) lives.

Beside the repository as ``../shared`` (as in CI), or named by ``SHARED_DIR``. A clone made elsewhere
(``git clone . /tmp/x``) finds it beside the repository it was cloned from.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _origin() -> Path | None:
    try:
        url = subprocess.run(
            ["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except FileNotFoundError:
        return None
    path = Path(url.removeprefix("file://"))
    return path.resolve() if url and path.is_dir() else None


def find_shared() -> Path:
    candidates = [Path(os.environ["SHARED_DIR"])] if os.environ.get("SHARED_DIR") else []
    candidates.append(ROOT.parent / "shared")
    origin = _origin()
    if origin is not None:
        candidates.append(origin.parent / "shared")
    for candidate in candidates:
        if (candidate / "SERVICE-CONTRACT.md").is_file():
            return candidate
    tried = ", ".join(str(candidate) for candidate in candidates)
    raise FileNotFoundError(f"the reference material (shared/) was not found; tried {tried}; set SHARED_DIR")


SHARED = find_shared()
