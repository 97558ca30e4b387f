"""Automations in the sync, in process: a configuration file's rules (template tasks, round-robin
routing, tags), filters, field ownership and enrichment, applied by the worker to sandboxed records."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.inprocess import InProcessService, inprocess_service
from tests.support.service import rankr_event
from tests.sync.records import ghl_tasks, rankr_tasks

pytestmark = pytest.mark.anyio

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
async def service(behaviour_database_url: str, tmp_path: Path) -> AsyncIterator[InProcessService]:
    path = tmp_path / "sync.yaml"
    path.write_text(CONFIG)
    async with inprocess_service(behaviour_database_url, config_file=str(path)) as running:
        yield running


def email(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@gmail.com"


async def rule_audits(service: InProcessService) -> list[dict[str, Any]]:
    """The audit entries of rules, their ``changes`` decoded (SQLite hands JSON back as text)."""
    rows = [row for row in await service.audit() if row["action"] == "rule"]
    for row in rows:
        if isinstance(row["changes"], str):
            row["changes"] = json.loads(row["changes"])
    return rows


async def test_a_hot_lead_gets_the_template_task_once(service: InProcessService) -> None:
    address = email("ada")
    contact = await service.rankr.create(
        email=address, firstName="Ada", lastName="Lovelace", tags=["hot-lead"]
    )
    await service.settle()
    [ghl] = await service.ghl.by_email(address)
    [task] = await ghl_tasks(service, ghl["id"])
    assert task["title"] == "Call Ada Lovelace within 24h"
    # GHL's TaskCreate brought the template task to Rankr like any task.
    assert [t["title"] for t in await rankr_tasks(service, contact["contactId"])] == [
        "Call Ada Lovelace within 24h"
    ]
    [audit] = await rule_audits(service)
    assert audit["changes"]["rule"] == "hot-lead-call"
    # A replay of the created event (a new delivery of the same state) creates nothing more.
    ghl_mark = await service.ghl.mark()
    assert (await service.post_rankr(rankr_event("contact.created", contact))).status_code == 202
    await service.settle()
    assert len(await ghl_tasks(service, ghl["id"])) == 1
    assert await service.ghl.writes_since(ghl_mark) == []


async def test_round_robin_routing_assigns_in_turn_and_tags(service: InProcessService) -> None:
    made = []
    for name in ("bo", "cy", "di"):
        address = email(name)
        await service.rankr.create(email=address, firstName=name.title(), address={"state": "CA"})
        await service.settle()
        made.append((await service.ghl.by_email(address))[0])
    assert [contact.get("assignedTo") for contact in made] == ["ghlUserA", "ghlUserB", "ghlUserA"]
    assert all("team-west" in contact["tags"] for contact in made)
    # The tag reached Rankr through the normal sync.
    assert all(
        "team-west" in c["tags"]
        for c in await service.rankr.contacts()
        if c["firstName"] in {"Bo", "Cy", "Di"}
    )
    assert [audit["changes"]["assignedTo"] for audit in await rule_audits(service)] == [
        "ghlUserA",
        "ghlUserB",
        "ghlUserA",
    ]


async def test_filters_keep_internal_contacts_out_of_ghl(service: InProcessService) -> None:
    address = email("internal")
    await service.rankr.create(email=address, firstName="Staff", tags=["internal"])
    await service.settle()
    assert await service.ghl.by_email(address) == []
    [event] = await service.events("rankr")
    assert event["status"] == "done"  # settled with the reason, not failed
    assert event["last_error"] == "not synced: filters.toGhl: the contact has one of the tags ['internal']"


async def test_a_rankr_owned_field_is_not_written_back_from_ghl(service: InProcessService) -> None:
    address = email("owner")
    contact = await service.rankr.create(email=address, firstName="Own", website="https://own.example")
    await service.settle()
    [ghl] = await service.ghl.by_email(address)
    rankr_mark = await service.rankr.mark()
    await service.ghl.update(ghl["id"], website="https://changed-in-ghl.example", lastName="Er")
    await service.settle()
    current = await service.rankr.get(contact["contactId"])
    assert current is not None
    assert (current["website"], current["lastName"]) == ("https://own.example", "Er")
    assert await service.rankr.writes_since(rankr_mark) == [f"PUT /contacts/{contact['contactId']}"]


async def test_enrichment_fills_empty_fields_on_both_sides(service: InProcessService) -> None:
    address = f"grace.hopper.{uuid.uuid4().hex[:6]}@navy-labs.example"
    contact = await service.rankr.create(email=address, phone="+442071234567", website="https://mine.example")
    await service.settle()
    current = await service.rankr.get(contact["contactId"])
    assert current is not None
    assert (current["firstName"], current["lastName"]) == ("Grace", "Hopper")
    assert current["address"]["country"] == "GB"
    assert current["website"] == "https://mine.example"  # entered by a person: kept
    [ghl] = await service.ghl.by_email(address)
    assert (ghl["firstName"], ghl["country"]) == ("Grace", "GB")


async def test_enrichment_that_fails_never_blocks_the_sync(
    behaviour_database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "sync.yaml"
    path.write_text(
        "enrichment:\n  http:\n    url: http://127.0.0.1:9/enrich\n"
        "    timeoutSeconds: 0.5\n    fields: [companyName]\n"
    )
    async with inprocess_service(behaviour_database_url, config_file=str(path)) as service:
        address = email("failing")
        await service.rankr.create(email=address, firstName="Fay")
        await service.settle()
        assert (await service.ghl.by_email(address))[0]["firstName"] == "Fay"
        runs = [e for e in await service.events() if e["type"] == "automation.run"]
        assert [e["status"] for e in runs] == ["done"]


async def test_a_task_of_a_filtered_out_contact_is_settled_not_dead(service: InProcessService) -> None:
    address = email("staff")
    contact = await service.rankr.create(email=address, firstName="Staff", tags=["internal"])
    answer = await service.rankr.api(
        "POST", f"/contacts/{contact['contactId']}/tasks", json={"title": "Internal chore"}
    )
    assert answer.status_code == 201
    await service.settle()
    assert await service.ghl.by_email(address) == []
    task_events = [e for e in await service.events("rankr") if e["type"] == "task.created"]
    assert [e["status"] for e in task_events] == ["done"]
    assert "is not synced" in task_events[0]["last_error"]
