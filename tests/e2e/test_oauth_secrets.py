"""A full OAuth run, with every log record captured at DEBUG: no token, secret or key shows up in the
logs, in /status, or in the events' errors. Sandbox-issued tokens carry the prefixes ``sbx_at_`` /
``sbx_rt_``, so any of them that leaks is found without knowing its value."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from app.kit.logs import ConsoleFormatter, JsonFormatter
from app.sandbox import keys
from tests.support.install import install, oauth_control, token_of
from tests.support.service import query, running_service, wait_for

KEY = Fernet.generate_key().decode()
SECRETS = (
    "sbx_at_",
    "sbx_rt_",
    keys.GHL_CLIENT_SECRET,
    keys.GHL_PRIVATE_TOKEN,
    keys.RANKR_CLIENT_SECRET,
    keys.RANKR_WEBHOOK_SECRET,
    keys.RANKR_WEBHOOK_SECRET.removeprefix("whsec_"),
    KEY,
)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handlers = []
    for formatter in (JsonFormatter(), ConsoleFormatter()):
        handler = logging.StreamHandler(out)
        handler.setFormatter(formatter)
        handlers.append(handler)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield out
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(level)


def test_no_token_or_secret_reaches_logs_status_or_errors(database_url: str, captured: io.StringIO) -> None:
    overrides = {"token_encryption_key": KEY, "needs_reauth_recheck_seconds": 0.3, "log_level": "DEBUG"}
    with running_service(database_url, **overrides) as service:
        assert install(service).status_code == 200
        for n in range(3):
            email = f"secret{n}.{uuid.uuid4().hex[:6]}@example.com"
            service.rankr.create(email=email)
            wait_for(lambda email=email: service.ghl.by_email(email), what="the contact in GHL")
            oauth_control(service, "/expire")  # every round needs a refresh
        contact = service.ghl.create(email=f"ghlside.{uuid.uuid4().hex[:6]}@example.com")
        wait_for(lambda: service.rankr.by_email(contact["email"]), what="the contact in Rankr")
        oauth_control(service, lose_refresh_answers=1)
        oauth_control(service, "/expire")
        service.rankr.create(email=f"lost.{uuid.uuid4().hex[:6]}@example.com")
        wait_for(lambda: token_of(service)["state"] == "needs_reauth", what="needs_reauth")
        status = service.http.get(f"{service.url}/status").text
        html = service.http.get(f"{service.url}/status", headers={"accept": "text/html"}).text
        errors = " ".join(str(row["last_error"]) for row in service.events())
        audit = str(query(service.database_url, "SELECT changes, detail FROM audit_entries"))
    logs = captured.getvalue()
    assert "ghl.token_refreshed" in logs  # the capture saw the service's records
    assert "ghl.token_refresh_refused" in logs
    for where, text in (("logs", logs), ("status", status + html), ("errors", errors), ("audit", audit)):
        for secret in SECRETS:
            assert secret not in text, f"{secret[:10]}... found in {where}"
