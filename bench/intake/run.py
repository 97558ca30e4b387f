"""Intake benchmark: signed Rankr webhooks against ``serve`` and against the bare baseline, same run.

    python -m bench.intake.run [--database postgres|sqlite] [--seconds 10] [--connections 32] [--rounds 4]

Both servers run as one uvicorn process each (worker off), on a fresh database of their own; wrk
replays pre-signed webhooks with distinct ids. Figures are ratios to the baseline measured in the
same run, alternating the two so drift on a shared machine hits both. Next to requests/s, the CPU
time each server process spent per request (from /proc): the two share 2 cores with wrk and the
database, so throughput moves with whatever else the machine runs, and CPU per request much less.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

from app.kit.signatures import WebhookSecret, sign_standard
from app.sandbox import keys
from tests.support.databases import PostgresSchema, migrate
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
LUA = Path(__file__).with_name("requests.lua")
# The service as production runs it for intake only: no sandboxes mounted, no worker in process,
# upstream settings present but never used.
INTAKE_ONLY = {
    "RANKR_WEBHOOK_SECRETS": keys.RANKR_WEBHOOK_SECRET,
    "RUN_WORKER_IN_PROCESS": "false",
    "SANDBOX": "false",
    "GHL_PRIVATE_TOKEN": "bench-unused",
    "RANKR_API_BASE_URL": "http://127.0.0.1:9/unused",
}


def signed_webhooks(count: int) -> Iterator[tuple[str, int, str, bytes]]:
    """``count`` Rankr webhooks with distinct ids, signed now: (id, timestamp, signature, body)."""
    secret = WebhookSecret.parse(keys.RANKR_WEBHOOK_SECRET)
    stamp = int(datetime.now(UTC).timestamp())
    run = secrets.token_hex(4)
    for number in range(count):
        body = json.dumps(
            {
                "type": "contact.updated",
                "timestamp": datetime.now(UTC).isoformat(),
                "accountId": keys.RANKR_ACCOUNT_ID,
                "data": {
                    "contactId": f"con_{number % 5000}",
                    "accountId": keys.RANKR_ACCOUNT_ID,
                    "email": f"bench{number}@example.com",
                    "firstName": "Bench",
                    "lastName": f"Mark {number}",
                    "tags": ["bench"],
                    "lastModified": "2026-11-26T08:00:00.000Z",
                },
            },
            separators=(",", ":"),
        ).encode()
        msg_id = f"msg_{run}_{number}"
        yield msg_id, stamp, sign_standard(secret, msg_id, stamp, body), body


def signed_requests(path: Path, count: int) -> None:
    """The webhooks as requests.lua reads them, a tab-separated line each."""
    with path.open("w") as out:
        for msg_id, stamp, signature, body in signed_webhooks(count):
            out.write(f"{msg_id}\t{stamp}\t{signature}\t{body.decode()}\n")


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code < 500:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{command} did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(pid: int, port: int, data: Path, seconds: int, connections: int) -> dict[str, float]:
    cpu = cpu_seconds(pid)
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(LUA),
         f"http://127.0.0.1:{port}", "--", str(data), "2"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cpu = cpu_seconds(pid) - cpu
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)

    def percentile(name: str) -> float:
        value, unit = re.search(rf"\s{name}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "rps": rate,
        "cpu_us_per_request": round(cpu / requests * 1e6, 1),
        "p50_ms": percentile("50"),
        "p99_ms": percentile("99"),
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def database(kind: str, directory: Path, name: str) -> tuple[str, PostgresSchema | None]:
    if kind == "sqlite":
        url = f"sqlite:///{directory / name}.db"
        migrate(url)
        return url, None
    schema = PostgresSchema()
    return schema.url, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    results: dict[str, list[dict[str, float]]] = {"baseline": [], "service": []}
    schemas: list[PostgresSchema] = []
    try:
        for round_number in range(args.rounds):
            for target in ("baseline", "service"):
                url, schema = database(args.database, work, f"{target}{round_number}")
                if schema is not None:
                    schemas.append(schema)
                port = free_port()
                env = {
                    **os.environ,
                    **INTAKE_ONLY,
                    "DATABASE_URL": url,
                    "LOG_LEVEL": "WARNING",
                    "PYTHONPATH": str(ROOT),
                }
                if target == "baseline":
                    app = "bench.intake.baseline_app:app"
                    command = [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        app,
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                    ]
                else:
                    command = [sys.executable, "-m", "app", "serve", "--port", str(port)]
                data = work / f"{target}{round_number}.tsv"
                signed_requests(data, 80_000)
                process = start(command, env, port)
                try:
                    results[target].append(wrk(process.pid, port, data, args.seconds, args.connections))
                finally:
                    process.terminate()
                    process.wait(timeout=30)
    finally:
        for schema in schemas:
            schema.drop()
        shutil.rmtree(work, ignore_errors=True)

    def best(target: str, key: str) -> float:
        values = [run[key] for run in results[target]]
        return max(values) if key == "rps" else min(values)

    baseline_cpu = best("baseline", "cpu_us_per_request")
    service_cpu = best("service", "cpu_us_per_request")

    summary = {
        "database": args.database,
        "connections": args.connections,
        "baseline_rps": best("baseline", "rps"),
        "service_rps": best("service", "rps"),
        "throughput_ratio": round(best("service", "rps") / best("baseline", "rps"), 3),
        "baseline_cpu_us": baseline_cpu,
        "service_cpu_us": service_cpu,
        "cpu_ratio": round(baseline_cpu / service_cpu, 3),
        "baseline_p50_ms": best("baseline", "p50_ms"),
        "baseline_p99_ms": best("baseline", "p99_ms"),
        "service_p50_ms": best("service", "p50_ms"),
        "service_p99_ms": best("service", "p99_ms"),
        "non2xx": sum(run["non2xx"] for runs in results.values() for run in runs),
        "runs": results,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
