"""The configuration file, the rules and the enrichment providers, without the service around them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Request

from app.automation.config import ConfigError, HttpEnrichment, field_maps, load, parse, to_yaml
from app.automation.enrich import Enricher, HttpProvider, LocalProvider
from app.automation.rules import Signals, decide, render
from app.config import Settings
from tests.support.server import reserve_port, serve

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # a Friday


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "rules.yaml")
    return str(caught.value).splitlines()


def test_the_shipped_example_is_valid() -> None:
    config = load(ROOT / "examples" / "sync-config.yaml")
    assert [rule.name for rule in config.rules] == [
        "hot-lead-call",
        "west-coast-team",
        "engaged-after-three-touches",
    ]


def test_errors_name_the_line_and_the_field() -> None:
    text = """version: 1
taskTemplates:
  call:
    title: "Call {firstName}"
    due: {hours: 2, businessDays: 1}
rules:
  - name: hot
    when:
      event: [contact.made]
    createTask: cal
mapping:
  fields:
    webste: rankr
"""
    found = problems(text)
    assert "rules.yaml:5: taskTemplates.call.due: give exactly one of hours or businessDays" in found
    assert any(line.startswith("rules.yaml:9: rules[0].when.event[0]: Input should be") for line in found)
    assert any(line.startswith("rules.yaml:13: mapping.fields.webste: unknown field") for line in found)


def test_a_rule_naming_a_missing_template_is_refused_at_its_line() -> None:
    text = """taskTemplates:
  call: {title: Call}
rules:
  - name: hot
    when: {event: [contact.created]}
    createTask: cal
"""
    assert problems(text) == ["rules.yaml:6: rules[0].createTask: no task template named 'cal'"]


def test_a_template_naming_no_contact_field_is_refused_with_the_fields_it_may_name() -> None:
    text = """taskTemplates:
  call:
    title: "Hi {firstNmae}"
  visit:
    title: "Visit {address.city}, {customFields.region}"
    body: "Ask {firstName} for {ownerName}"
  fine:
    title: "{firstName} {lastName} {tags} {ownerId} {customFields.score}"
"""
    [call, visit] = problems(text)
    assert call.startswith(
        "rules.yaml:3: taskTemplates.call.title: unknown placeholder {firstNmae} "
        "(did you mean {firstName}?); placeholders are the contact's fields: {address.city}, "
    )
    assert call.endswith("{tags}, {website}, {customFields.<key>}")
    assert visit.startswith(
        "rules.yaml:6: taskTemplates.visit.body: unknown placeholder {ownerName} (did you mean {ownerId}?)"
    )
    [bare] = problems('taskTemplates: {t: {title: "{customFields.} {zzz}"}}')
    assert bare.startswith("rules.yaml:1: taskTemplates.t.title: unknown placeholder {customFields.};")
    assert "did you mean" not in bare


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [", "rules.yaml:1: not valid YAML"),
        ("- a\n- b\n", "rules.yaml:1: the file must hold a mapping"),
        ("colour: blue\n", "rules.yaml:1: colour: Extra inputs are not permitted"),
    ],
)
def test_malformed_files(text: str, expected: str) -> None:
    assert problems(text)[0].startswith(expected)


CONFIG = """
taskTemplates:
  call:
    title: "Call {firstName} {lastName} within 24h"
    due: {businessDays: 2}
rules:
  - name: hot
    when: {event: [contact.created], source: rankr, tagsAny: [Hot-Lead]}
    createTask: call
  - name: west
    when:
      event: [contact.created, contact.updated]
      fields: {address.state: [ca, or]}
    assign: {roundRobin: [u1, u2]}
    addTags: [team-west]
  - name: busy
    when:
      event: [note.added]
      recentActivity: {count: 3, days: 7}
    addTags: [engaged]
"""


def fired(signals: Signals) -> list[str]:
    return [decision.rule.name for decision in decide(parse(CONFIG), signals, NOW, None)]


def test_rules_fire_on_their_trigger_source_tags_fields_and_activity() -> None:
    contact: dict[str, Any] = {"firstName": "Ada", "tags": ["hot-lead"], "address.state": "CA"}
    assert fired(Signals("contact.created", "rankr", contact)) == ["hot", "west"]
    assert fired(Signals("contact.created", "ghl", contact)) == ["west"]
    assert fired(Signals("contact.updated", "rankr", {**contact, "address.state": "NY"})) == []
    assert fired(Signals("note.added", "ghl", contact, recent_activity={7.0: 2})) == []
    assert fired(Signals("note.added", "ghl", contact, recent_activity={7.0: 3})) == ["busy"]


def test_a_rule_naming_locations_runs_only_for_their_connections() -> None:
    config = parse(
        """
rules:
  - name: here
    when: {event: [contact.created]}
    addTags: [a]
    locations: [LocA]
  - name: everywhere
    when: {event: [contact.created]}
    addTags: [b]
"""
    )
    signals = Signals("contact.created", "rankr", {})
    assert [d.rule.name for d in decide(config, signals, NOW, "LocA")] == ["here", "everywhere"]
    assert [d.rule.name for d in decide(config, signals, NOW, "LocB")] == ["everywhere"]


def test_custom_fields_of_a_location_apply_to_its_connection_only_and_round_trip_through_the_file() -> None:
    text = """
mapping:
  customFields: {industry: shared_id}
  locations:
    LocA: {customFields: {industry: a_id, size: a_size}}
"""
    config = parse(text)
    assert parse(to_yaml(config)) == config
    maps = field_maps(Settings(_env_file=None), config)  # type: ignore[call-arg]
    assert dict(maps.at("LocA").custom_fields) == {"industry": "a_id", "size": "a_size"}
    assert dict(maps.at("LocB").custom_fields) == {"industry": "shared_id"}
    assert dict(maps.at(None).custom_fields) == {"industry": "shared_id"}
    assert "LocA" in problems("mapping:\n  locations:\n    LocA: {customFields: {industry: 3}}\n")[0]


def test_task_template_is_rendered_and_due_in_business_days() -> None:
    signals = Signals("contact.created", "rankr", {"firstName": "Ada", "tags": ["hot-lead"]})
    [decision] = [d for d in decide(parse(CONFIG), signals, NOW, None) if d.task]
    assert decision.task is not None
    assert decision.task.title == "Call Ada within 24h"  # no lastName: no gap left
    assert decision.task.due == datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # Fri + 2 business days = Tue
    assert render("{tags} / {unknown}", {"tags": ["a", "b"]}) == "a, b /"


# --- enrichment ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_local_provider_derives_only_what_it_can() -> None:
    found = await LocalProvider().propose(
        {"email": "ada.lovelace@engines.example", "phone": "+44 20 7123 4567"}
    )
    assert found == {
        "website": "https://engines.example",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "address.country": "GB",
    }
    assert await LocalProvider().propose({"email": "ada@gmail.com", "firstName": "Ada"}) == {}


@pytest.mark.anyio
async def test_enricher_fills_empty_fields_only() -> None:
    enricher = Enricher([LocalProvider()], cache_for=timedelta(0), clock=lambda: NOW)
    contact = {"email": "grace.hopper@navy.example", "website": "https://mine.example", "firstName": None}
    fills, failures = await enricher.fills(contact)
    assert fills == {"firstName": "Grace", "lastName": "Hopper"}  # the website a person entered stays
    assert failures == []


@pytest.fixture
def enrichment_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stand-in enrichment service on loopback: answers by the email it is sent."""
    seen: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/enrich")
    async def enrich(request: Request) -> Any:
        body = await request.json()
        seen.append(body)
        if body.get("email", "").startswith("broken"):
            raise HTTPException(500, "enrichment backend down")
        return {"companyName": "Analytical Engines Ltd", "website": "https://ae.example", "phone": "+1"}

    with serve(app, reserve_port()) as url:
        yield f"{url}/enrich", seen


@pytest.mark.anyio
async def test_http_provider_takes_its_fields_caches_and_keeps_to_its_budget(
    enrichment_server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = enrichment_server
    config = HttpEnrichment(url=url, fields=["companyName"], requests_per_minute=2)  # type: ignore[arg-type]
    enricher = Enricher([HttpProvider(config)], cache_for=timedelta(hours=1), clock=lambda: NOW)
    fills, failures = await enricher.fills({"email": "ada@ae.example"})
    assert (fills, failures) == ({"companyName": "Analytical Engines Ltd"}, [])
    assert seen == [{"email": "ada@ae.example"}]
    assert (await enricher.fills({"email": "ada@ae.example"}))[0] == fills  # from the cache
    assert len(seen) == 1
    await enricher.fills({"email": "bob@ae.example"})
    fills, failures = await enricher.fills({"email": "eve@ae.example"})
    assert fills == {}
    assert failures == ["http: over its budget of 2 requests a minute"]


@pytest.mark.anyio
async def test_a_failing_provider_is_a_note_not_an_error(
    enrichment_server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, _ = enrichment_server
    broken = HttpProvider(HttpEnrichment(url=url, fields=["companyName"]))  # type: ignore[arg-type]
    closed = reserve_port()
    gone = HttpProvider(
        HttpEnrichment(url=f"http://127.0.0.1:{closed.getsockname()[1]}/x", fields=["companyName"])  # type: ignore[arg-type]
    )
    closed.close()
    enricher = Enricher([broken, gone, LocalProvider()], cache_for=timedelta(0), clock=lambda: NOW)
    fills, failures = await enricher.fills({"email": "broken.pipe@plumbers.example"})
    assert fills["website"] == "https://plumbers.example"  # the local provider still answered
    assert failures[0] == "http: answered 500"
    assert failures[1].startswith("http: ConnectError")
