"""Peak memory of ``rankr-ghl-sync backfill --dry-run`` as the number of contacts grows.

Serves the sandboxes on their own port (``rankr-ghl-sync sandbox``), seeds N contacts on each side
(half of them the same people), and runs the dry run (list both sides, decide for every record) in
a process of its own under ``/usr/bin/time -v``: its maximum resident set size, and the wall time.
A streaming backfill keeps the first figure about the same however large N is.

    .venv/bin/python -m bench.backfill.memory 2000 20000
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.sandbox import keys

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def seed(base: str, side: str, contacts: list[dict[str, object]]) -> None:
    with httpx.Client(timeout=120) as http:
        http.post(f"{base}/sandbox/{side}/_sandbox/control", json={"rate_max": 10**9}).raise_for_status()
        for start in range(0, len(contacts), 5000):
            chunk = contacts[start : start + 5000]
            http.post(f"{base}/sandbox/{side}/_sandbox/seed", json={"contacts": chunk}).raise_for_status()


def measure(count: int, port: int) -> tuple[int, float]:
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as scratch:
        database = f"sqlite:///{scratch}/bench.db"
        env = {
            **os.environ,
            "SANDBOX": "true",
            "PUBLIC_URL": base,
            "DATABASE_URL": database,
            "LOG_LEVEL": "ERROR",
        }
        subprocess.run([BIN / "rankr-ghl-sync", "migrate"], env=env, check=True, capture_output=True)
        with sqlite3.connect(f"{scratch}/bench.db") as db:
            db.execute(
                "INSERT INTO connections (id, name, rankr_account_id, ghl_location_id, status, created_at,"
                " updated_at) VALUES (1, 'bench', ?, ?, 'active', '2026-01-01', '2026-01-01')",
                (keys.RANKR_ACCOUNT_ID, keys.GHL_LOCATION_ID),
            )
        sandbox = subprocess.Popen(
            [BIN / "rankr-ghl-sync", "sandbox", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    httpx.get(f"{base}/sandbox/ghl/_sandbox/control").raise_for_status()
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            half = count // 2
            seed(
                base, "rankr", [{"email": f"p{i}@bench.example", "firstName": f"R{i}"} for i in range(count)]
            )
            seed(
                base,
                "ghl",
                [{"email": f"p{i + half}@bench.example", "lastName": f"G{i}"} for i in range(count)],
            )
            started = time.monotonic()
            run = subprocess.run(
                ["/usr/bin/time", "-v", BIN / "rankr-ghl-sync", "backfill", "--dry-run"],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            elapsed = time.monotonic() - started
        finally:
            sandbox.terminate()
            sandbox.wait()
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    return (int(peak.group(1)) if peak else -1), elapsed


def main() -> None:
    for position, count in enumerate(int(arg) for arg in sys.argv[1:] or ["2000", "20000"]):
        peak, elapsed = measure(count, 8730 + position)
        print(f"{count:>7} contacts per side: peak RSS {peak / 1024:.0f} MiB, dry run {elapsed:.1f} s")


if __name__ == "__main__":
    main()
