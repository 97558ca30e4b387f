"""Resident memory of ``serve`` under a flood of oversized, unauthenticated requests.

    python -m bench.flood [--seconds 20] [--connections 8] [--limit-mb 50]

Starts ``rankr-ghl-sync serve`` (sandbox mode, an ``ADMIN_TOKEN`` set so the admin routes are closed,
a temporary migrated SQLite database) on a free loopback port, measures its resident memory idle
(VmRSS of the process and any children), then floods it from several connections at once with:
100 MB bodies to ``/admin/replay`` without a token, streamed without a Content-Length and with a
lying one (1 KiB declared); request heads of 16-32 MB; 2 MB bodies to both webhooks (declared and
streamed). RSS is sampled every 100 ms. Prints idle, peak, peak - idle and the answers by status;
exits 1 if peak - idle passes the limit or any answer is a 5xx. Loopback only, bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from tests.support.server import free_port

MB = 1024 * 1024
CHUNK = 256 * 1024
# Bytes each kind of request got onto the wire before the server answered or hung up.
sent = Counter[str]()


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` and its descendants, in KiB (0 for a process that is gone)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += rss_kib(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


async def _answer(reader: asyncio.StreamReader) -> str:
    line = await reader.readline()
    parts = line.split()
    return parts[1].decode() if len(parts) > 1 and parts[1].isdigit() else "closed"


async def exchange(
    port: int, head: bytes, chunks: Callable[[], itertools.chain[bytes]] | None, kind: str
) -> str:
    """Send ``head`` then ``chunks`` until the server answers or hangs up; its status (or how it ended)."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return "refused"
    answer = asyncio.create_task(_answer(reader))
    try:
        for piece in itertools.chain([head], chunks() if chunks else []):
            if answer.done():
                break
            writer.write(piece)
            await writer.drain()
            sent[kind] += len(piece)
        return await asyncio.wait_for(answer, timeout=10)
    except (ConnectionError, OSError):
        return await asyncio.wait_for(answer, timeout=10) if answer.done() else "reset"
    except TimeoutError:
        return "no answer"
    finally:
        answer.cancel()
        writer.close()


def filler(total: int, chunked: bool) -> Callable[[], itertools.chain[bytes]]:
    block = b"x" * CHUNK

    def pieces() -> itertools.chain[bytes]:
        count = total // CHUNK
        if not chunked:
            return itertools.chain(itertools.repeat(block, count))
        framed = b"%x\r\n%s\r\n" % (CHUNK, block)
        return itertools.chain(itertools.repeat(framed, count), [b"0\r\n\r\n"])

    return pieces


def head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def attacks(port: int) -> list[tuple[str, Callable[[], Awaitable[str]]]]:
    big, webhook = 100 * MB, 2 * MB

    def huge_head() -> Awaitable[str]:
        size = secrets.choice(range(16, 33)) * MB
        start = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
        return exchange(port, start, filler(size, chunked=False), "head 16-32 MB")

    return [
        (
            "replay 100 MB streamed",
            lambda: exchange(
                port,
                head("POST", "/admin/replay", "Transfer-Encoding: chunked"),
                filler(big, chunked=True),
                "replay 100 MB streamed",
            ),
        ),
        (
            "replay 100 MB, Content-Length 1 KiB",
            lambda: exchange(
                port,
                head("POST", "/admin/replay", "Content-Length: 1024"),
                filler(big, False),
                "replay 100 MB, Content-Length 1 KiB",
            ),
        ),
        ("head 16-32 MB", huge_head),
        (
            "webhook 2 MB declared",
            lambda: exchange(
                port,
                head("POST", "/webhooks/rankr", f"Content-Length: {webhook}"),
                filler(webhook, False),
                "webhook 2 MB declared",
            ),
        ),
        (
            "webhook 2 MB streamed",
            lambda: exchange(
                port,
                head("POST", "/webhooks/ghl", "Transfer-Encoding: chunked"),
                filler(webhook, True),
                "webhook 2 MB streamed",
            ),
        ),
    ]


async def flood(port: int, pid: int, seconds: float, connections: int) -> tuple[list[int], Counter[str]]:
    samples: list[int] = []
    answers: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    kinds = attacks(port)

    async def sample() -> None:
        while time.monotonic() < deadline + 1:
            samples.append(rss_kib(pid))
            await asyncio.sleep(0.1)

    async def attacker(offset: int) -> None:
        for index in itertools.count(offset):
            if time.monotonic() >= deadline:
                return
            name, attack = kinds[index % len(kinds)]
            answers[f"{name}: {await attack()}"] += 1

    await asyncio.gather(sample(), *(attacker(n) for n in range(connections)))
    return samples, answers


def start(directory: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{directory / 'flood.db'}",
        "SANDBOX": "true",
        "ADMIN_TOKEN": secrets.token_urlsafe(24),
        "RECONCILE_INTERVAL_SECONDS": "0",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "app"]
    subprocess.run([*command, "migrate"], env=env, cwd=directory, check=True, capture_output=True)
    log = (directory / "serve.log").open("wb")
    return subprocess.Popen(
        [*command, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=directory,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"serve exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("serve was not ready within 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--limit-mb", type=float, default=50.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flood-") as tmp:
        directory = Path(tmp)
        port = free_port()
        process = start(directory, port)
        try:
            wait_ready(f"http://127.0.0.1:{port}", process)
            time.sleep(2)  # start-up work (verification, first requests) settles
            idle = max(rss_kib(process.pid) for _ in range(10) if time.sleep(0.1) is None)
            samples, answers = asyncio.run(flood(port, process.pid, args.seconds, args.connections))
            alive = process.poll() is None
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    peak = max(samples)
    server_errors = sum(n for answer, n in answers.items() if answer.rsplit(": ", 1)[1].startswith("5"))
    result = {
        "seconds": args.seconds,
        "connections": args.connections,
        "idle_mib": round(idle / 1024, 1),
        "peak_mib": round(peak / 1024, 1),
        "growth_mib": round((peak - idle) / 1024, 1),
        "samples": len(samples),
        "sent_mib": {kind: round(count / MB) for kind, count in sorted(sent.items())},
        "answers": dict(sorted(answers.items())),
        "server_errors": server_errors,
        "alive_after": alive,
    }
    print(json.dumps(result, indent=2))
    failed = (peak - idle) / 1024 > args.limit_mb or server_errors or not alive
    if failed:
        print(f"FAIL: peak - idle must stay under {args.limit_mb} MiB with no 5xx", file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
