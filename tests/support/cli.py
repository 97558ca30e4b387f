"""The ``rankr-ghl-sync`` command run as a user runs it: a child process with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment minus any GHL/Rankr/sandbox setting of the machine, on ``database_url``."""
    clean = {
        key: value for key, value in os.environ.items() if not key.startswith(("GHL_", "RANKR_", "SANDBOX"))
    }
    return {**clean, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **extra}


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
