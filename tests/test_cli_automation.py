"""``rules test`` and ``config check`` as a user runs them: a body the service does not know, or a
template it cannot fill, is one line naming what is wrong and what was expected, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import cli_env, run_cli

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "sync-config.yaml"

REFUSED = [
    ("not-json", "{type: contact.created", "not JSON (Expecting property name enclosed in double quotes"),
    (
        "array",
        '[{"type": "contact.created"}]',
        "JSON array, not an object; expected a webhook body of Rankr or GHL",
    ),
    ("string", '"contact.created"', "JSON string, not an object; expected a webhook body of Rankr or GHL"),
    (
        "neither",
        '{"event": "contact.created", "payload": {}}',
        "neither a Rankr webhook (type, accountId and a data object) nor a GHL webhook "
        "(type and locationId or companyId)",
    ),
    (
        "rankr-type",
        '{"type": "deal.created", "accountId": "acct_1", "data": {"dealId": "d1"}}',
        "unknown Rankr event type 'deal.created'; expected one of contact.created, contact.deleted, ",
    ),
    (
        "ghl-type",
        '{"type": "OpportunityCreate", "locationId": "loc_1", "id": "o1"}',
        "unknown GHL event type 'OpportunityCreate'; expected one of AppInstall, AppUninstall, ",
    ),
    (
        "rankr-contact",
        '{"type": "contact.created", "accountId": "acct_1", "data": {"contactId": 5, "lastModified": "x"}}',
        "data.contactId: Input should be a valid string (and 1 more); "
        "expected a contact as contact.created carries it",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED]
)
def test_rules_test_names_what_is_wrong_with_the_body(tmp_path: Path, text: str, expected: str) -> None:
    event = tmp_path / "event.json"
    event.write_text(text, encoding="utf-8")
    result = run_cli(
        ["rules", "test", str(event), "--config", str(CONFIG)], cli_env(f"sqlite:///{tmp_path}/x.db")
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"{event}: {expected}")


def test_rules_test_names_a_file_it_cannot_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    result = run_cli(
        ["rules", "test", str(missing), "--config", str(CONFIG)], cli_env(f"sqlite:///{tmp_path}/x.db")
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{missing}: cannot be read (No such file or directory); expected a webhook body of Rankr or GHL"
    ]


def test_config_check_refuses_a_placeholder_no_contact_has(tmp_path: Path) -> None:
    config = tmp_path / "sync.yaml"
    config.write_text('taskTemplates:\n  call:\n    title: "Hi {firstNmae}"\n', encoding="utf-8")
    result = run_cli(["config", "check", str(config)], cli_env(f"sqlite:///{tmp_path}/x.db"))
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(
        f"{config}:3: taskTemplates.call.title: unknown placeholder {{firstNmae}} "
        "(did you mean {firstName}?); placeholders are the contact's fields: {address.city}, "
    )
    assert "Traceback" not in result.stderr
