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
    "urls",
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


PRODUCTION = {"SANDBOX": "false", "GHL_PRIVATE_TOKEN": "pit-test"}


def test_urls_prints_what_to_register_where(env: dict[str, str]) -> None:
    production = {**env, **PRODUCTION, "PUBLIC_URL": "https://sync.example.com/"}
    result = run(["urls"], production)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = {line.strip().split("  ", 1)[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["webhook URL"].endswith(" https://sync.example.com/webhooks/ghl")
    assert "ContactCreate, ContactDelete" in lines["events to tick"]
    assert lines["redirect URL"].endswith(" https://sync.example.com/oauth/ghl/callback")
    assert "https://sync.example.com/oauth/ghl/install?rankrAccountId=" in lines["install (open)"]
    assert lines["URL"].endswith(" https://sync.example.com/webhooks/rankr")
    assert "contact.created" in lines["events"]
    assert "note.deleted" in lines["events"]
    assert "RANKR_WEBHOOK_SECRETS (none set" in lines["signing secret"]
    assert (
        "contacts.readonly contacts.write locations/tasks.readonly locations.readonly "
        "locations/customFields.readonly users.readonly oauth.write" in lines["scopes"]
    )
    sheet = json.loads(run(["urls", "--json"], production).stdout)
    assert sheet["ghl"]["webhookUrl"] == "https://sync.example.com/webhooks/ghl"
    assert sheet["rankr"]["events"][0] == "contact.created"
    assert (sheet["publicUrlSet"], sheet["sandbox"], sheet["warnings"]) == (True, False, [])


def test_urls_without_public_url_says_what_is_missing(env: dict[str, str]) -> None:
    result = run(["urls"], {**env, **PRODUCTION})
    assert result.returncode == 0
    [warning] = result.stderr.splitlines()
    assert warning.startswith("warning: PUBLIC_URL is not set")
    assert "(PUBLIC_URL not set: derived)" in result.stdout
    assert "http://127.0.0.1:8000/webhooks/ghl" in result.stdout


@pytest.mark.parametrize("command", ["serve", "worker", "urls"])
def test_a_public_url_that_is_not_an_absolute_http_url_stops_the_start(
    env: dict[str, str], command: str
) -> None:
    result = run([command], {**env, "PUBLIC_URL": "sync.example.com"})
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: PUBLIC_URL: ")
    assert "absolute http(s) URL" in line


def _serve_until_ready(env: dict[str, str], tmp_path: Path) -> tuple[str, str]:
    """Start serve on a free port, wait for /readyz, stop it: its stdout (banner) and stderr."""
    assert run(["migrate"], env).returncode == 0
    number = free_port()
    out, err = (tmp_path / "serve.out").open("w"), (tmp_path / "serve.err").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(number)],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=err,
    )
    try:
        wait_for(lambda: _ready(f"http://127.0.0.1:{number}"), timeout=30, what="serve to become ready")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        out.close()
        err.close()
    return (tmp_path / "serve.out").read_text(), (tmp_path / "serve.err").read_text()


def test_serve_outside_sandbox_mode_without_public_url_derives_it_and_says_so(
    env: dict[str, str], tmp_path: Path
) -> None:
    banner, errors = _serve_until_ready({**env, **PRODUCTION}, tmp_path)
    [warning] = [line for line in errors.splitlines() if line.startswith("warning:")]
    assert "PUBLIC_URL is not set" in warning
    assert "from --host/--port" in warning
    [ghl] = [line for line in banner.splitlines() if "GHL webhook URL" in line]
    assert "http://127.0.0.1:" in ghl
    assert "/webhooks/ghl" in ghl
    assert "(derived" in ghl
    [redirect] = [line for line in banner.splitlines() if "OAuth redirect" in line]
    assert "/oauth/ghl/callback" in redirect
    assert "(derived" in redirect


def test_serve_prints_public_url_and_warns_when_it_is_plain_http(env: dict[str, str], tmp_path: Path) -> None:
    banner, errors = _serve_until_ready(
        {**env, **PRODUCTION, "PUBLIC_URL": "http://sync.example.com"}, tmp_path
    )
    [warning] = [line for line in errors.splitlines() if line.startswith("warning:")]
    assert "PUBLIC_URL http://sync.example.com is plain http" in warning
    assert "  GHL webhook URL    http://sync.example.com/webhooks/ghl\n" in banner
    assert "  OAuth redirect     http://sync.example.com/oauth/ghl/callback\n" in banner
    assert "derived" not in banner


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
    """The CLI, the backfill and the worker start without FastAPI or any of the sandboxes (a third
    of a second of every command's start; the settings read ``app.sandbox_mode``)."""
    probe = (
        "import sys, app.cli, app.backfill.console, app.worker, app.config; "
        "print(sorted(m for m in sys.modules if m == 'fastapi' or m.startswith('app.sandbox.')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
