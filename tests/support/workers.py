"""``rankr-ghl-sync worker`` processes for tests, against the service's database and sandboxes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_worker(database_url: str, public_url: str, log: Path, **settings: str) -> subprocess.Popen[bytes]:
    """A worker process (sandbox mode, fast polling and retries); its output goes to ``log``."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SANDBOX": "true",
        "PUBLIC_URL": public_url,
        "WORKER_POLL_SECONDS": "0.05",
        "WORKER_CONCURRENCY": "4",
        "RETRY_SCHEDULE": "0.2,0.5,1",
        "LOG_LEVEL": "INFO",
        **settings,
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
