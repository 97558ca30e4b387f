"""Automations end to end: a configuration file, the service, both sandboxes, SQLite and Postgres."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.sandbox import keys
from tests.support.cli import cli_env, run_cli
from tests.support.service import Service, rankr_event, running_service

CONFIG = """
version: 1
mapping:
  fields:
    website: rankr
filters:
  toGhl:
    tagsNone: [internal]
taskTemplates:
  call:
    title: "Call {firstName} {lastName} within 24h"
    body: "Hot lead at {companyName}"
    due: {hours: 24}
rules:
  - name: hot-lead-call
    when: {event: [contact.created], source: rankr, tagsAny: [hot-lead]}
    createTask: call
  - name: west-team
    when:
      event: [contact.created]
      fields: {address.state: [CA]}
    assign: {roundRobin: [ghlUserA, ghlUserB]}
    addTags: [team-west]
enrichment:
  local: true
"""


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Service]:
    path = tmp_path / "sync.yaml"
    path.write_text(CONFIG)
    with running_service(database_url, config_file=str(path)) as running:
        yield running


def email(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@gmail.com"


def ghl_tasks(service: Service, contact_id: str) -> list[dict[str, Any]]:
    return list(service.ghl.api("GET", f"/contacts/{contact_id}/tasks").json()["tasks"])


def rule_audits(service: Service) -> list[dict[str, Any]]:
    """The audit entries of rules, their ``changes`` decoded (SQLite hands JSON back as text)."""
    rows = [row for row in service.audit() if row["action"] == "rule"]
    for row in rows:
        if isinstance(row["changes"], str):
            row["changes"] = json.loads(row["changes"])
    return rows


def test_a_hot_lead_gets_the_template_task_once(service: Service) -> None:
    address = email("ada")
    contact = service.rankr.create(email=address, firstName="Ada", lastName="Lovelace", tags=["hot-lead"])
    service.settle()
    [ghl] = service.ghl.by_email(address)
    [task] = ghl_tasks(service, ghl["id"])
    assert task["title"] == "Call Ada Lovelace within 24h"
    # GHL's TaskCreate brought the template task to Rankr like any task.
    rankr_tasks = service.rankr.api("GET", f"/contacts/{contact['contactId']}/tasks").json()["data"]
    assert [t["title"] for t in rankr_tasks] == ["Call Ada Lovelace within 24h"]
    [audit] = rule_audits(service)
    assert audit["changes"]["rule"] == "hot-lead-call"
    # A replay of the created event (a new delivery of the same state) creates nothing more.
    ghl_mark = service.ghl.mark()
    assert service.post_rankr(rankr_event("contact.created", contact)).status_code == 202
    service.settle()
    assert len(ghl_tasks(service, ghl["id"])) == 1
    assert service.ghl.writes_since(ghl_mark) == []


def test_round_robin_routing_assigns_in_turn_and_tags(service: Service) -> None:
    made = []
    for name in ("bo", "cy", "di"):
        address = email(name)
        service.rankr.create(email=address, firstName=name.title(), address={"state": "CA"})
        service.settle()
        made.append(service.ghl.by_email(address)[0])
    assert [contact.get("assignedTo") for contact in made] == ["ghlUserA", "ghlUserB", "ghlUserA"]
    assert all("team-west" in contact["tags"] for contact in made)
    # The tag reached Rankr through the normal sync.
    assert all(
        "team-west" in c["tags"] for c in service.rankr.contacts() if c["firstName"] in {"Bo", "Cy", "Di"}
    )
    assert [audit["changes"]["assignedTo"] for audit in rule_audits(service)] == [
        "ghlUserA",
        "ghlUserB",
        "ghlUserA",
    ]


def test_filters_keep_internal_contacts_out_of_ghl(service: Service) -> None:
    address = email("internal")
    service.rankr.create(email=address, firstName="Staff", tags=["internal"])
    service.settle()
    assert service.ghl.by_email(address) == []
    [event] = service.events("rankr")
    assert event["status"] == "done"  # settled with the reason, not failed
    assert event["last_error"] == "not synced: filters.toGhl: the contact has one of the tags ['internal']"


def test_a_rankr_owned_field_is_not_written_back_from_ghl(service: Service) -> None:
    address = email("owner")
    contact = service.rankr.create(email=address, firstName="Own", website="https://own.example")
    service.settle()
    [ghl] = service.ghl.by_email(address)
    rankr_mark = service.rankr.mark()
    service.ghl.update(ghl["id"], website="https://changed-in-ghl.example", lastName="Er")
    service.settle()
    current = service.rankr.get(contact["contactId"])
    assert current is not None
    assert (current["website"], current["lastName"]) == ("https://own.example", "Er")
    assert service.rankr.writes_since(rankr_mark) == [f"PUT /contacts/{contact['contactId']}"]


def test_enrichment_fills_empty_fields_on_both_sides(service: Service) -> None:
    address = f"grace.hopper.{uuid.uuid4().hex[:6]}@navy-labs.example"
    contact = service.rankr.create(email=address, phone="+442071234567", website="https://mine.example")
    service.settle()
    current = service.rankr.get(contact["contactId"])
    assert current is not None
    assert (current["firstName"], current["lastName"]) == ("Grace", "Hopper")
    assert current["address"]["country"] == "GB"
    assert current["website"] == "https://mine.example"  # entered by a person: kept
    [ghl] = service.ghl.by_email(address)
    assert (ghl["firstName"], ghl["country"]) == ("Grace", "GB")


def test_enrichment_that_fails_never_blocks_the_sync(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text(
        "enrichment:\n  http:\n    url: http://127.0.0.1:9/enrich\n"
        "    timeoutSeconds: 0.5\n    fields: [companyName]\n"
    )
    with running_service(database_url, config_file=str(path)) as service:
        address = email("failing")
        service.rankr.create(email=address, firstName="Fay")
        service.settle()
        assert service.ghl.by_email(address)[0]["firstName"] == "Fay"
        runs = [e for e in service.events() if e["type"] == "automation.run"]
        assert [e["status"] for e in runs] == ["done"]


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


def test_a_task_of_a_filtered_out_contact_is_settled_not_dead(service: Service) -> None:
    address = email("staff")
    contact = service.rankr.create(email=address, firstName="Staff", tags=["internal"])
    answer = service.rankr.api(
        "POST", f"/contacts/{contact['contactId']}/tasks", json={"title": "Internal chore"}
    )
    assert answer.status_code == 201
    service.settle()
    assert service.ghl.by_email(address) == []
    task_events = [e for e in service.events("rankr") if e["type"] == "task.created"]
    assert [e["status"] for e in task_events] == ["done"]
    assert "is not synced" in task_events[0]["last_error"]
