"""Automation's commands end to end (config custom-fields, rules test, config check) beside the
service; the automations in the sync are tested in process in tests/automation/test_runner.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.sandbox import keys
from tests.automation.test_runner import CONFIG, email
from tests.support.cli import cli_env, run_cli
from tests.support.service import Service, rankr_event, running_service


@pytest.fixture
def service(sqlite_url: str, tmp_path: Path) -> Iterator[Service]:
    """The commands' output does not depend on the database: SQLite."""
    path = tmp_path / "sync.yaml"
    path.write_text(CONFIG)
    with running_service(sqlite_url, config_file=str(path)) as running:
        yield running


def test_config_commands_list_custom_fields_and_try_rules(service: Service, tmp_path: Path) -> None:
    answer = service.ghl.api(
        "POST",
        "/contacts/",
        json={
            "locationId": keys.GHL_LOCATION_ID,
            "email": email("cf"),
            "customFields": [{"key": "industry", "field_value": "Looms"}],
        },
    )
    assert answer.status_code == 201, answer.text
    service.settle()
    env = cli_env(service.database_url, PUBLIC_URL=service.url)
    listed = run_cli(["config", "custom-fields"], env)
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.startswith("industry: ")
    # The dry run says what the rules would do, and writes nothing.
    event = tmp_path / "event.json"
    person = {
        "contactId": "c1",
        "firstName": "Ann",
        "lastName": "Lee",
        "tags": ["hot-lead"],
        "lastModified": "2026-11-26T10:00:00Z",
    }
    event.write_text(json.dumps(rankr_event("contact.created", person)))
    config = tmp_path / "sync.yaml"
    ghl_mark = service.ghl.mark()
    tried = run_cli(["rules", "test", str(event), "--config", str(config)], env)
    assert tried.returncode == 0, tried.stderr
    shown = json.loads(tried.stdout)
    assert [d["rule"] for d in shown["decisions"]] == ["hot-lead-call"]
    assert shown["decisions"][0]["createTask"]["title"] == "Call Ann Lee within 24h"
    assert service.ghl.writes_since(ghl_mark) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    when: {event: [contact.created]}\n    createTask: nope\n")
    checked = run_cli(["config", "check", str(bad)], env)
    assert checked.returncode == 1
    assert f"{bad}:4: rules[0].createTask: no task template named 'nope'" in checked.stderr
