"""The database goes away and comes back: senders are told to retry, and nothing needs a restart."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.problems import RETRY_AFTER_SECONDS
from tests.support.proxy import proxied
from tests.support.service import ghl_event, rankr_event, running_service, wait_for

pytestmark = pytest.mark.postgres


def rankr_contact(email: str) -> dict[str, Any]:
    data = {
        "contactId": f"con_{uuid.uuid4().hex[:12]}",
        "email": email,
        "firstName": "Outage",
        "lastModified": "2026-11-26T08:00:00.000Z",
    }
    return rankr_event("contact.created", data)


def test_while_the_database_is_away_the_api_answers_503_and_recovers_by_itself(postgres_url: str) -> None:
    url = make_url(postgres_url)
    with proxied((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        through_proxy = postgres_url.replace(f":{url.port}/", f":{proxy.port}/", 1)
        with running_service(through_proxy, worker_poll_seconds=0.2) as service:
            assert service.post_rankr(rankr_contact("before@example.com")).status_code == 202
            service.settle()

            proxy.cut()
            away = service.post_rankr(rankr_contact("during@example.com"))
            assert away.status_code == 503
            assert away.headers["content-type"].startswith("application/problem+json")
            assert away.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
            assert "database" in away.json()["detail"]
            # GHL re-sends only after a 429: that is what it gets while nothing can be stored.
            ghl = service.post_ghl(ghl_event("ContactCreate", {"id": "ghlOutage1", "email": "g@example.com"}))
            assert ghl.status_code == 429
            assert ghl.headers["content-type"].startswith("application/problem+json")
            status = service.http.get(f"{service.url}/status")
            assert status.status_code == 503
            assert status.headers["content-type"].startswith("application/problem+json")
            assert service.http.get(f"{service.url}/readyz").status_code == 503
            assert service.http.get(f"{service.url}/healthz").status_code == 200

            proxy.restore()
            # The sender retries; the service answers as soon as the database is back.
            retried = rankr_contact("during@example.com")

            def stored() -> bool:
                try:
                    return service.post_rankr(retried).status_code in (200, 202)
                except httpx.HTTPError:
                    return False

            wait_for(stored, timeout=30, what="the service to store events again")
            service.settle(timeout=30)
            assert len(service.ghl.by_email("during@example.com")) == 1
            assert len(service.ghl.by_email("before@example.com")) == 1
            assert {event["status"] for event in service.events()} == {"done"}
