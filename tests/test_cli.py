"""The command line as a user runs it: help, migrate, serve with the sandboxes, status."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cli import ROOT, cli_env, run_cli
from tests.support.databases import PostgresSchema
from tests.support.server import free_port
from tests.support.service import wait_for

run = run_cli

# Every test here runs the command as a child process, as users do: end to end (make test-e2e).
pytestmark = pytest.mark.e2e


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(f"sqlite:///{tmp_path / 'cli.db'}")


COMMANDS = (
    "serve",
    "worker",
    "migrate",
    "sandbox",
    "status",
    "history",
    "contact",
    "connections",
    "config",
    "rules",
    "backfill",
    "reconcile",
    "replay",
)


def test_help_lists_every_command(env: dict[str, str]) -> None:
    result = run(["--help"], env)
    assert result.returncode == 0
    for command in COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(env: dict[str, str], command: str) -> None:
    result = run([command, "--help"], env)
    assert result.returncode == 0, result.stderr
    assert f"rankr-ghl-sync {command}" in result.stdout
    assert "--help" in result.stdout


def test_a_bad_setting_is_reported_by_name(env: dict[str, str]) -> None:
    result = run(["status"], {**env, "RETRY_SCHEDULE": "soon"})
    assert result.returncode == 2
    assert "RETRY_SCHEDULE" in result.stderr


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_database_never_migrated_is_named_not_a_traceback(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    if database == "postgres":
        empty = PostgresSchema(migrated=False)  # a schema of its own, with no tables
        request.addfinalizer(empty.drop)
        url = empty.url
    result = run(["status"], cli_env(url))
    assert result.returncode == 2, result.stderr
    assert "run 'rankr-ghl-sync migrate' first" in result.stderr
    assert "connections" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def served(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    assert run(["migrate"], env).returncode == 0
    number = free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(number)],
        cwd=ROOT,
        env={**env, "WORKER_POLL_SECONDS": "0.1"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{number}"
    try:
        wait_for(lambda: _ready(url), timeout=30, what="serve to become ready")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
        log.close()
        banner = (tmp_path / "serve.log").read_text()
        assert f"{url}/sandbox/ghl/ui" in banner
        assert f"{url}/webhooks/rankr" in banner


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz").status_code == 200
    except httpx.TransportError:
        return False


def test_serve_syncs_a_contact_typed_into_the_rankr_page(served: str, env: dict[str, str]) -> None:
    """What a newcomer does after `make run`: fill in the Rankr form, find the contact in GHL."""
    with httpx.Client(base_url=served, timeout=10) as http:
        form = {"firstName": "Newcomer", "lastName": "Test", "email": "newcomer@example.com", "tags": "trial"}
        answer = http.post("/sandbox/rankr/ui/contacts", data=form)
        assert answer.status_code in (200, 303)

        def ghl_page() -> str | None:
            text = http.get("/sandbox/ghl/ui").text
            return text if "newcomer@example.com" in text else None

        page = wait_for(ghl_page, what="the contact on the GHL page")
        assert "Newcomer" in page
        wait_for(
            lambda: http.get("/status").json()["connections"][0]["linked"]["contacts"] == 1, what="the link"
        )
        html = http.get("/status", headers={"accept": "text/html"})
        assert html.headers["content-type"].startswith("text/html")
        # A follow-up typed into the Rankr page, and a call booked on the GHL page.
        rankr = http.get("/sandbox/rankr/_sandbox/state").json()["contacts"][0]["contactId"]
        ghl = http.get("/sandbox/ghl/_sandbox/state").json()["contacts"][0]["id"]
        form = {"title": "Welcome call", "dueDate": "2026-12-12T09:00", "status": "open"}
        assert http.post(f"/sandbox/rankr/ui/contacts/{rankr}/tasks", data=form).status_code in (200, 303)
        booking = {"title": "Kick-off", "startTime": "2026-12-13T10:00", "endTime": "2026-12-13T11:00"}
        assert http.post(f"/sandbox/ghl/ui/contacts/{ghl}/appointments", data=booking).status_code in (
            200,
            303,
        )
        wait_for(
            lambda: http.get("/status").json()["connections"][0]["linked"]["tasks"] == 1, what="the task"
        )
    result = run(["status"], env)
    assert result.returncode == 0, result.stderr
    assert "1 contacts, 1 tasks" in result.stdout
    result = run(["contact", rankr, "--appointments"], {**env, "PUBLIC_URL": served})
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["ghlId"], [t["title"] for t in shown["tasks"]]) == (ghl, ["Welcome call"])
    assert [a["title"] for a in shown["appointments"]] == ["Kick-off"]
    assert run(["contact", "nobody"], env).returncode == 1


def test_the_sandboxes_run_on_their_own_port(env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "sandbox", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/sandbox/ghl/ui").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=30, what="the sandboxes")
        token = httpx.post(
            f"http://127.0.0.1:{port}/sandbox/rankr/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
            },
        )
        assert token.status_code == 200
        assert token.json()["token_type"].lower() == "bearer"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_replay_puts_dead_events_back_by_id_by_connection_or_all(env: dict[str, str]) -> None:
    assert run(["migrate"], env).returncode == 0
    database = env["DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute(
            "INSERT INTO connections (id, name, rankr_account_id, ghl_location_id, status, created_at,"
            " updated_at) VALUES (1, 'c', 'acct_1', 'loc_1', 'active', '2026-11-26', '2026-11-26')"
        )
        for n, (account, status) in enumerate(
            [("acct_1", "dead"), ("loc_1", "dead"), ("acct_other", "dead"), ("acct_1", "done")], start=1
        ):
            db.execute(
                "INSERT INTO webhook_events (source, event_id, type, account_key, ordering_key, payload,"
                " received_at, status, attempts, next_attempt_at, last_error) VALUES ('rankr', ?,"
                " 'contact.updated', ?, ?, '{}', '2026-11-26 08:00:00', ?, 3, '2026-11-26 08:00:00', 'x')",
                (f"msg_{n}", account, f"k{n}", status),
            )

    def statuses() -> list[tuple[str, str, int]]:
        with sqlite3.connect(database) as db:
            return list(db.execute("SELECT event_id, status, attempts FROM webhook_events ORDER BY id"))

    assert run(["replay"], env).returncode == 2
    assert run(["replay", "--all", "--connection", "1"], env).returncode == 2
    assert "no connection 7" in run(["replay", "--connection", "7"], env).stderr

    result = run(["replay", "--event", "msg_3"], env)
    assert result.returncode == 0, result.stderr
    assert "1 dead event(s)" in result.stdout
    assert statuses()[2] == ("msg_3", "pending", 0)
    result = run(["replay", "--connection", "1"], env)
    assert "2 dead event(s)" in result.stdout
    assert [status for _, status, _ in statuses()] == ["pending", "pending", "pending", "done"]
    assert "0 dead event(s)" in run(["replay", "--all"], env).stdout


def test_commands_that_serve_no_http_do_not_load_the_web_framework() -> None:
    """The CLI, the backfill and the worker start without FastAPI or the sandboxes' routes (a third
    of a second of every command's start; the settings import ``app.sandbox.keys``)."""
    probe = (
        "import sys, app.cli, app.backfill.console, app.worker, app.config; "
        "print(sorted(m for m in sys.modules if m == 'fastapi' or m.startswith('app.sandbox.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "['app.sandbox.keys']"
