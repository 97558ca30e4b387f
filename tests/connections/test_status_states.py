"""The overall status: ``unconfigured`` without a connection (and how to add one), ``ok`` only when
every connection is verified and syncing, ``degraded`` naming each failing connection; in the JSON,
on the page and in the ``status`` command. ``/readyz`` stays "can take webhooks"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.connections.verify import unconfigured_hint
from app.ops.status_page import heading, render_status_page
from tests.connections.conftest import started
from tests.support import service as support
from tests.support.cli import cli_env, run_cli
from tests.support.inprocess import SERVICE_URL, InProcessService

pytestmark = pytest.mark.anyio


async def test_no_connection_is_unconfigured_and_says_how_to_add_one(database_url: str) -> None:
    async with started(database_url, sandbox=False) as service:
        assert (await service.http.get("/readyz")).json() == {"status": "ready"}
        facts = await service.status(admin=True)
        assert facts["status"] == "unconfigured"
        assert facts["connections"] == []
        assert "http://service.test/oauth/ghl/install" in facts["message"]
        assert "GHL_LOCATION_ID, GHL_PRIVATE_TOKEN, RANKR_ACCOUNT_ID" in facts["message"]
        page = (await service.http.get("/status", headers={"accept": "text/html"})).text
        assert 'id="overall" class="level-none" data-status="unconfigured">unconfigured<' in page
        assert "Nothing is synced: there is no connection." in page
        assert "http://service.test/oauth/ghl/install" in page


async def test_a_verified_connection_is_ok_and_a_failing_one_degrades_naming_it(
    service: InProcessService,
) -> None:
    facts = await service.status(admin=True)
    assert facts["status"] == "ok"
    [entry] = facts["connections"]
    page = (await service.http.get("/status", headers={"accept": "text/html"})).text
    assert 'data-status="ok">ok<' in page
    assert 'data-verification="verified"' in page
    assert "GHL location &#39;Sandbox sub-account&#39;" in page

    await service.ghl.sandbox_post("/oauth", private_token_scopes=["contacts.readonly"])
    answer = await service.http.post(f"/admin/connections/{entry['id']}/verify", headers=service.admin)
    assert answer.json()["verified"] is False
    facts = await service.status(admin=True)
    assert facts["status"] == "degraded"
    assert facts["message"] == "1 of 1 connection(s) need attention"
    [problem] = facts["problems"]
    assert problem["connectionId"] == entry["id"]
    assert problem["name"] == entry["name"]
    assert problem["reason"].startswith(
        "not verified: the GHL token lacks the scope locations/tasks.readonly"
    )
    page = (await service.http.get("/status", headers={"accept": "text/html"})).text
    assert 'class="level-red" data-status="degraded">degraded<' in page
    assert 'data-verification="failed"' in page
    assert "Fix: create a Private Integration token" in page
    assert "[ghl_scope_missing]" in page


def _facts(*levels: str, status: str = "ok") -> dict[str, Any]:
    events = {"pending": 0, "processing": 0, "retrying": 0, "done": 0, "skipped": 0, "dead": 0}
    return {
        "status": status,
        "message": "",
        "problems": [],
        "generatedAt": "2026-12-06T10:00:00+00:00",
        "connections": [
            {
                "id": n,
                "name": f"acct_{n} <-> loc_{n}",
                "state": "active",
                "events": events,
                "linked": {"contacts": 0},
                "health": {"level": level, "reasons": []},
                "verification": {
                    "verified": True,
                    "state": "verified",
                    "checkedAt": "2026-12-06T09:59:00+00:00",
                    "problem": None,
                    "locationName": None,
                },
            }
            for n, level in enumerate(levels, start=1)
        ],
        "unrouted": {"accounts": 0, "events": {"dead": 0}},
    }


@pytest.mark.parametrize(
    ("levels", "status", "expected"),
    [
        ((), "unconfigured", ("unconfigured", "none")),
        (("green", "green"), "ok", ("ok", "green")),
        (("green", "amber"), "ok", ("ok, with warnings", "amber")),
        (("amber",), "degraded", ("degraded", "amber")),
        (("amber", "red"), "degraded", ("degraded", "red")),
    ],
)
def test_the_page_heading_follows_the_worst_connection(
    levels: tuple[str, ...], status: str, expected: tuple[str, str]
) -> None:
    assert heading(_facts(*levels, status=status), list(levels)) == expected


def test_ids_on_the_page_do_not_break_mid_word_and_wide_tables_scroll() -> None:
    page = render_status_page(_facts("green"), detailed=False)
    assert ".id, td.record, td.event { white-space: nowrap; }" in page
    assert ".scroll { overflow-x: auto;" in page
    assert "table.errors td.error { min-width: 10em; overflow-wrap: anywhere; }" in page
    assert '<div class="scroll">\n  <table class="facts">' in page


@pytest.mark.e2e  # the command runs as a child process
def test_the_status_command_says_unconfigured_and_how_to_add_a_connection(tmp_path: Path) -> None:
    env = cli_env(f"sqlite:///{tmp_path / 'status.db'}", SANDBOX="false")
    assert run_cli(["migrate"], env).returncode == 0
    result = run_cli(["status"], env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("overall: unconfigured")
    assert "/oauth/ghl/install" in lines[1]
    assert "GHL_PRIVATE_TOKEN" in lines[1]


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({}, "no connection yet: install the GHL app at http://service.test/oauth/ghl/install"),
        (
            {"ghl_private_token": "pit-secret", "rankr_client_id": "c"},
            "the settings describe no connection: GHL_LOCATION_ID, RANKR_ACCOUNT_ID, RANKR_CLIENT_SECRET, "
            "RANKR_API_BASE_URL not set; set them and restart, or install the GHL app at "
            "http://service.test/oauth/ghl/install",
        ),
    ],
)
def test_the_unconfigured_hint_names_the_missing_settings(settings: dict[str, Any], says: str) -> None:
    hint = unconfigured_hint(
        support.test_settings("sqlite:///unused.db", SERVICE_URL, sandbox=False, **settings)
    )
    assert says in hint
    assert "pit-secret" not in hint
