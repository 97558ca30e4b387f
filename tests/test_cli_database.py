"""The command line on a database that is not there: the cause and the fix in two lines, exit status 2."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import ROOT, cli_env, run_cli
from tests.support.databases import POSTGRES_SERVER
from tests.support.server import free_port
from tests.support.service import wait_for

SERVER = POSTGRES_SERVER.rsplit("/", 1)[0].removeprefix("postgresql://root@")  # 127.0.0.1:5432
PASSWORD = "hunter2"

# The command runs as a child process, as users run it: end to end (make test-e2e).
pytestmark = pytest.mark.e2e

# (the database URL, words the error must say)
CASES = {
    "closed port": (
        f"postgresql://root:{PASSWORD}@127.0.0.1:1/test",
        "error: cannot reach the database at 127.0.0.1:1 (connection refused)",
    ),
    "missing database": (
        f"postgresql://root:{PASSWORD}@{SERVER}/nosuchdb",
        f'error: the database "nosuchdb" does not exist on {SERVER}',
    ),
    "wrong role": (
        f"postgresql://nobody:{PASSWORD}@{SERVER}/test",
        f'error: the database at {SERVER} refused user "nobody"',
    ),
    "unopenable sqlite path": (
        "sqlite:///{tmp}/no/such/dir/sync.db",
        "error: cannot open the SQLite file {tmp}/no/such/dir/sync.db: "
        "the directory {tmp}/no/such/dir does not exist",
    ),
}
NEEDS_POSTGRES = {"missing database", "wrong role"}


def case(name: str, tmp_path: Path) -> tuple[str, str]:
    url, words = CASES[name]
    return url.format(tmp=tmp_path), words.format(tmp=tmp_path)


def params(*commands: str) -> list[object]:
    return [
        pytest.param(command, name, marks=[pytest.mark.postgres] if name in NEEDS_POSTGRES else [])
        for command in commands
        for name in CASES
    ]


@pytest.mark.parametrize(
    ("command", "name"),
    [
        *params("status", "migrate", "serve"),
        ("worker", "closed port"),
        ("backfill", "unopenable sqlite path"),
    ],
)
def test_a_database_that_cannot_be_used_is_two_lines_and_exit_2(
    command: str, name: str, tmp_path: Path
) -> None:
    url, words = case(name, tmp_path)
    args = [command, "--port", str(free_port())] if command == "serve" else [command]
    result = run_cli(args, cli_env(url), timeout=30)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(words), result.stderr
    assert len(lines) == 2, result.stderr
    assert lines[1].startswith("  fix: ")
    assert "Traceback" not in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert "Application startup failed" not in result.stderr
    assert result.stdout == ""  # not even the serve banner


def test_with_log_level_debug_the_traceback_comes_first(tmp_path: Path) -> None:
    url, words = case("closed port", tmp_path)
    result = run_cli(["status"], cli_env(url, LOG_LEVEL="DEBUG"), timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("Traceback")
    assert "ConnectionRefusedError" in result.stderr
    assert result.stderr.splitlines()[-2] == words
    assert PASSWORD not in result.stderr


def test_serve_on_a_database_never_migrated_starts_and_says_so_once(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    env = cli_env(f"sqlite:///{tmp_path / 'empty.db'}", WORKER_POLL_SECONDS="0.01", SANDBOX_MODE="true")
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:

        def readiness() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz")
            except httpx.TransportError:
                return None

        answer = wait_for(readiness, timeout=30, what="serve to answer")
        assert answer.status_code == 503
        assert "run 'rankr-ghl-sync migrate' first" in answer.json()["detail"]
        time.sleep(1)  # a hundred polls of the worker, each failing on the missing tables
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    lines = log.read_text().splitlines()
    assert len(lines) == 1, "\n".join(lines)
    assert "WARNING db.not_ready" in lines[0]
    assert "run 'rankr-ghl-sync migrate' first" in lines[0]
