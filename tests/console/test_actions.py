"""Ready-made actions: a catalogue in plain words, switched on (a task template and its rule in the
settings), edited, previewed against a recent real event with the dry run, and switched off."""

from __future__ import annotations

import html
from urllib.parse import unquote_plus

import pytest

from app.automation.config import sync_config
from app.connections import repository as connections
from app.console import catalogue
from app.db import unit_of_work
from app.kit.clock import utcnow
from app.sandbox import keys
from tests.console.conftest import Browser
from tests.support.inprocess import InProcessService

pytestmark = pytest.mark.anyio
PAGE = "/admin/console/connections/1/actions"


async def post(browser: Browser, path: str, form: dict[str, str] | None = None) -> str:
    answer = await browser.post(f"{PAGE}{path}", form, page=PAGE)
    assert answer.status_code == 303, answer.text
    return unquote_plus(answer.headers["location"])


async def test_the_catalogue_describes_every_action(signed_in: Browser) -> None:
    page = (await signed_in.get(PAGE)).text
    for action in catalogue.CATALOGUE:
        assert action.title in page
        assert html.escape(action.description).replace("&#x27;", "&#39;") in page


async def test_switching_on_writes_the_template_and_rule_the_sync_then_runs(
    console: InProcessService, signed_in: Browser
) -> None:
    told = await post(
        signed_in,
        "/call-new-lead",
        {
            "title": "Call {firstName} now",
            "body": "",
            "dueHours": "4",
            "assignee": "",
            "source": "rankr",
            "tagsAny": "",
        },
    )
    assert "msg=Call every new lead: on for this connection." in told
    config = sync_config(console.app.state.settings)
    assert config.task_templates["call-new-lead"].title == "Call {firstName} now"
    assert [rule.name for rule in config.rules] == ["action-call-new-lead"]
    created = await console.rankr.create(email="lead@example.com", firstName="Ada")
    await console.settle()
    tasks = await console.rankr.api("GET", f"/contacts/{created['contactId']}/tasks")
    assert [task["title"] for task in tasks.json()["data"]] == ["Call Ada now"]
    page = (await signed_in.get(PAGE)).text
    assert 'value="Call {firstName} now"' in page

    off = await post(signed_in, "/call-new-lead/off")
    assert "msg=Call every new lead: off for this connection." in off
    config = sync_config(console.app.state.settings)
    assert (config.rules, config.task_templates) == ([], {})


async def test_a_wrong_setting_is_refused_with_the_reason(
    console: InProcessService, signed_in: Browser
) -> None:
    told = await post(signed_in, "/call-new-lead", {"title": "Call {firstNmae}", "dueHours": "4"})
    assert (
        "error=Call every new lead: taskTemplates.call-new-lead: "
        "unknown placeholder {firstNmae} (did you mean {firstName}?)" in told
    )
    number = await post(signed_in, "/tag-engaged", {"count": "three", "days": "7", "tags": "engaged"})
    assert "error=Tag engaged contacts: a number was expected" in number
    assert sync_config(console.app.state.settings).rules == []
    assert "There is no action nope" in await post(signed_in, "/nope")


async def test_preview_runs_the_action_on_a_recent_event_and_writes_nothing(
    console: InProcessService, signed_in: Browser
) -> None:
    empty = (await signed_in.get(PAGE, params={"preview_of": "call-new-lead"})).text
    assert "no contact.created event of this connection is stored yet" in empty
    await console.rankr.create(email="grace@example.com", firstName="Grace", lastName="Hopper")
    await console.settle()
    page = (await signed_in.get(PAGE, params={"preview_of": "call-new-lead"})).text
    assert "Call Grace Hopper" in page
    assert "action-call-new-lead" in page
    assert sync_config(console.app.state.settings).rules == []
    assert await console.query("SELECT id FROM rule_runs") == []


CALL = {"title": "Call {firstName} now", "dueHours": "4", "source": "any"}
OTHER = "/admin/console/connections/2/actions"


async def tasks_of(console: InProcessService, email: str) -> list[str]:
    created = await console.rankr.create(email=email, firstName="Ada")
    await console.settle()
    tasks = await console.rankr.api("GET", f"/contacts/{created['contactId']}/tasks")
    return [task["title"] for task in tasks.json()["data"]]


async def test_an_action_switched_on_for_one_connection_does_not_run_for_another(
    console: InProcessService, signed_in: Browser
) -> None:
    async with unit_of_work(console.app.state.sessions) as session:
        await connections.ensure(session, "acct_other", "LocOther", utcnow())
    answer = await signed_in.post(f"{OTHER}/call-new-lead", CALL, page=OTHER)
    assert "on for this connection" in unquote_plus(answer.headers["location"])
    [rule] = sync_config(console.app.state.settings).rules
    assert rule.locations == ["LocOther"]
    assert 'id="action-call-new-lead"' in (page := (await signed_in.get(OTHER)).text)
    assert 'id="off-call-new-lead"' in page
    assert 'id="off-call-new-lead"' not in (await signed_in.get(PAGE)).text  # off for the sandbox's

    assert await tasks_of(console, "first@example.com") == []  # the sandbox location's connection

    await post(signed_in, "/call-new-lead", CALL)
    [rule] = sync_config(console.app.state.settings).rules
    assert rule.locations == ["LocOther", keys.GHL_LOCATION_ID]
    assert await tasks_of(console, "second@example.com") == ["Call Ada now"]

    await signed_in.post(f"{OTHER}/call-new-lead/off", page=OTHER)
    [rule] = sync_config(console.app.state.settings).rules
    assert rule.locations == [keys.GHL_LOCATION_ID]
    assert 'id="off-call-new-lead"' in (await signed_in.get(PAGE)).text


def test_switching_off_for_one_connection_a_rule_of_every_connection_leaves_it_on_for_the_others() -> None:
    doc = {"rules": [{"name": "action-follow-up", "when": {"event": ["task.completed"]}, "addTags": ["x"]}]}
    catalogue.switch_off(catalogue.BY_ID["follow-up"], doc, "LocA", ["LocA", "LocB"])
    assert doc["rules"][0]["locations"] == ["LocB"]
    catalogue.switch_off(catalogue.BY_ID["follow-up"], doc, "LocB", ["LocA", "LocB"])
    assert doc["rules"] == []
