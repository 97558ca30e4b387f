"""The world the delivery benchmarks run in: sandboxes in this process, the service in processes of its own.

The GHL and Rankr sandboxes serve on a loopback port from a thread of this process, so a benchmark
changes their stores directly (as people do in the products' UIs: no API call, so the request logs
hold the service's calls only) and reads their request logs and webhook deliveries in memory. The
service runs as in production: ``serve`` (API, optionally with the worker in process) and ``worker``
processes, on a fresh database, with production settings pointed at the sandboxes. They start from
bytecode, as in the image (``compileall`` first: an environment with PYTHONDONTWRITEBYTECODE would
otherwise compile the service's modules at every start, which a backfill's wall time includes).
"""

from __future__ import annotations

import asyncio
import compileall
import gc
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.sandbox import Sandbox, SandboxConfig, create_standalone_app
from app.sandbox.requestlog import RecordedRequest
from bench.faults.run import database, open_events, service_env
from tests.support.server import free_port, serve

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class World:
    sandbox: Sandbox
    sandbox_url: str
    service_url: str
    database_url: str
    env: dict[str, str]
    logs: Path
    loop: asyncio.Runner
    engine: AsyncEngine
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str, name: str, module: str = "app") -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args], cwd=ROOT, env=self.env, stdout=log, stderr=log
            )
        self.processes.append(process)
        return process

    def workers(self, count: int) -> list[subprocess.Popen[bytes]]:
        return [self.start("worker", name=f"worker{n}") for n in range(count)]

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def open_events(self) -> int:
        # One engine for the world's life: an engine and a connection per poll cost this process
        # and Postgres more CPU than the query, and a benchmark polls while the service works.
        return self.loop.run(open_events(self.engine))

    def wait_delivered(self, timeout: float = 300) -> None:
        """Until the sandboxes sent every webhook (answered by the service)."""
        deadline = time.monotonic() + timeout
        while self.sandbox.dispatcher.pending() > 0:
            if time.monotonic() > deadline:
                raise TimeoutError("webhooks still pending")
            time.sleep(0.05)

    def settle(self, timeout: float = 600, poll: float = 0.2) -> float:
        """Until every webhook is delivered and every event applied; returns when it was (monotonic)."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < 2:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not settled: {self.open_events()} events open")
            busy = self.sandbox.dispatcher.pending() + self.open_events()
            quiet = quiet + 1 if busy == 0 else 0
            time.sleep(poll)
        return time.monotonic()

    def calls(self, side: str, mark: int) -> list[RecordedRequest]:
        """The service's API calls to ``side`` since ``mark`` (token requests left out)."""
        product = self.sandbox.ghl if side == "ghl" else self.sandbox.rankr
        return [r for r in product.requests_since(mark) if r.path != "/oauth/token"]


def wait_ready(url: str, path: str = "/readyz") -> None:
    for _ in range(300):
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


@contextmanager
def no_full_collections() -> Iterator[None]:
    """No full garbage collection in this process while a benchmark runs (young objects still are).

    The sandboxes stamp a request with the time their thread gets to it, and their rate limiter counts
    by those stamps. A full collection of this process, with the sandboxes' stores and logs, takes
    90-150 ms here; the requests that came in meanwhile are stamped together, a bunch the service
    never sent, and a window of the limiter that starts at that bunch holds more than the service's
    schedule put into it: a 429 two seconds later (at 100 per 2 s). GHL's limiter does not pause for
    this process's collector, so the benchmarks' sandboxes do not either.
    """
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, 2**31 - 1)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, full)
        gc.collect()


@contextmanager
def world(
    kind: str,
    logs: Path,
    *,
    worker_in_serve: bool = False,
    settings: dict[str, Any] | None = None,
    sandbox: dict[str, Any] | None = None,
    server: tuple[str, ...] = ("app", "serve"),
) -> Iterator[World]:
    """Sandboxes + ``serve`` on a fresh database; ``settings`` override the service's environment,
    ``sandbox`` the sandboxes' configuration, ``server`` the module (and its arguments) that serves
    in the service's place, given ``--port``."""
    logs.mkdir(parents=True, exist_ok=True)
    compileall.compile_dir(ROOT / "app", quiet=1)
    config = SandboxConfig(webhook_target=None, random_seed=1, **(sandbox or {}))
    app = create_standalone_app(config)
    with ExitStack() as stack:
        stack.enter_context(no_full_collections())
        database_url = stack.enter_context(database(kind))
        sandbox_url = stack.enter_context(serve(app))
        # The service's port is picked once the sandbox listens: picked before, it could be handed
        # to the sandbox as soon as it was freed, and serve then failed to bind it.
        port = free_port()
        service_url = f"http://127.0.0.1:{port}"
        config.webhook_target = service_url
        env = service_env(database_url, service_url, sandbox_url)
        env["RUN_WORKER_IN_PROCESS"] = "true" if worker_in_serve else "false"
        env.update({key.upper(): str(value) for key, value in (settings or {}).items()})
        loop = stack.enter_context(asyncio.Runner())
        engine = create_engine(database_url)
        stack.callback(lambda: loop.run(engine.dispose()))
        here = World(app.state.sandbox, sandbox_url, service_url, database_url, env, logs, loop, engine)
        module, *arguments = server
        here.start(*arguments, "--port", str(port), name="serve", module=module)
        try:
            wait_ready(service_url)
            yield here
        finally:
            for process in reversed(here.processes):
                here.stop(process)
