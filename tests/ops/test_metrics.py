"""``GET /metrics`` as Prometheus scrapes it: per-process counters, and the backlog from the database."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.ops.metrics import endpoint_template
from tests.support.cli import ROOT, cli_env
from tests.support.inprocess import InProcessService, inprocess_service
from tests.support.server import free_port, reserve_port
from tests.support.service import rankr_event, wait_for

pytestmark = pytest.mark.anyio

STAMP = "2026-11-26T08:00:00.000Z"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(service: InProcessService) -> tuple[str, Samples]:
    answer = await service.http.get(f"{service.url}/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return answer.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def test_endpoints_are_templated_so_record_ids_never_become_labels() -> None:
    assert endpoint_template("/sandbox/ghl/contacts/Zx81kPq0aa") == "/sandbox/ghl/contacts/{id}"
    assert endpoint_template("/v1/contacts/con_abc123/notes") == "/v1/contacts/{id}/notes"
    assert endpoint_template("/contacts/upsert") == "/contacts/upsert"
    assert endpoint_template("/contacts/search/duplicate") == "/contacts/search/duplicate"


async def test_a_sync_shows_up_in_the_counters_and_histogram(database_url: str) -> None:
    async with inprocess_service(database_url) as service:
        await service.ghl.control(rate_max=100)  # the documented budget, which the gauge reports
        _, before = await scrape(service)
        email = f"metrics.{uuid.uuid4().hex[:8]}@example.com"
        created = await service.rankr.create(email=email, firstName="Metric")
        await service.settle()
        [ghl] = await service.ghl.by_email(email)
        await service.ghl.update(ghl["id"], lastName="Later")
        await service.settle()
        bad = await service.http.post(
            f"{service.url}/webhooks/rankr",
            content=b"{}",
            headers={"webhook-id": "x", "webhook-timestamp": "1"},
        )
        assert bad.status_code == 401
        text, after = await scrape(service)

        def delta(name: str, **labels: str) -> float:
            return total(after, name, **labels) - total(before, name, **labels)

        webhooks = "rankr_ghl_sync_webhooks_received_total"
        assert delta(webhooks, source="rankr", type="contact.created", outcome="accepted") == 1
        assert delta(webhooks, source="rankr", type="unknown", outcome="rejected_401") == 1
        ran = len(await service.events("rankr"))  # the create, and the echo of the update the service made
        assert ran == 2
        assert delta("rankr_ghl_sync_events_total", source="rankr", outcome="processed") == ran
        latency = "rankr_ghl_sync_event_processing_seconds_count"
        assert delta(latency, source="rankr", outcome="processed") == ran
        upstream = "rankr_ghl_sync_upstream_requests_total"
        assert (
            delta(
                upstream, system="ghl", method="POST", endpoint="/sandbox/ghl/contacts/upsert", status="200"
            )
            >= 1
        )
        assert (
            delta(
                upstream, system="rankr", method="PUT", endpoint="/sandbox/rankr/contacts/{id}", status="200"
            )
            == 1
        )
        ghl_ran = len(await service.events("ghl"))
        assert delta("rankr_ghl_sync_events_total", source="ghl", outcome="processed") == ghl_ran
        assert ghl["id"] not in text
        assert created["contactId"] not in text
        [connection] = (await service.status())["connections"]
        budget = value(
            after, "rankr_ghl_sync_rate_budget_remaining", system="ghl", connection=str(connection["id"])
        )
        assert 0 < budget < 100
        for status in ("pending", "processing", "retrying", "dead"):
            labels = {"connection": str(connection["id"]), "status": status}
            assert ("rankr_ghl_sync_backlog_events", frozenset(labels.items())) in after
            assert value(after, "rankr_ghl_sync_backlog_events", **labels) == 0


async def test_the_backlog_comes_from_the_database_whoever_does_the_work(database_url: str) -> None:
    """With the worker in another process (here: none), the API still reports the backlog."""
    async with inprocess_service(database_url, run_worker_in_process=False) as service:
        for _ in range(2):
            data = {"contactId": f"con_{uuid.uuid4().hex[:10]}", "lastModified": STAMP}
            assert (await service.post_rankr(rankr_event("contact.created", data))).status_code == 202
        stray = rankr_event("contact.created", {"contactId": "con_x", "lastModified": STAMP})
        stray["accountId"] = "acct_nobody"
        assert (await service.post_rankr(stray)).status_code == 202
        _, samples = await scrape(service)
        [connection] = (await service.status())["connections"]
        key = str(connection["id"])
        assert value(samples, "rankr_ghl_sync_backlog_events", connection=key, status="pending") == 2
        assert value(samples, "rankr_ghl_sync_backlog_events", connection="none", status="pending") == 1
        assert value(samples, "rankr_ghl_sync_backlog_oldest_age_seconds", connection=key) >= 0
        assert ("rankr_ghl_sync_backlog_oldest_age_seconds", frozenset({("connection", key)})) in samples


async def test_metrics_is_open_like_healthz(behaviour_database_url: str) -> None:
    async with inprocess_service(behaviour_database_url, admin_token="s3cret") as service:
        assert (await service.http.get(f"{service.url}/metrics")).status_code == 200


async def test_the_documented_alert_rules_use_metrics_the_service_exports(
    behaviour_database_url: str,
) -> None:
    rules = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 5
    async with inprocess_service(behaviour_database_url) as service:
        await service.rankr.create(email=f"alerts.{uuid.uuid4().hex[:6]}@example.com")
        await service.settle()
        text, _ = await scrape(service)
    exported = {family.name for family in text_string_to_metric_families(text)}
    for expr in exprs:
        for name in re.findall(r"\brankr_ghl_sync_\w+", expr):
            base = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert base in exported, f"{name} in docs/alerts.yml is not exported"


@pytest.mark.e2e
def test_a_separate_worker_serves_its_own_counters_on_metrics_port(sqlite_url: str) -> None:
    port = free_port()
    env = cli_env(sqlite_url, METRICS_PORT=str(port), SANDBOX="true")
    process = subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env)
    try:

        def scraped() -> str | None:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.TransportError:
                return None
            return text if "rankr_ghl_sync_events" in text else None

        text = wait_for(scraped, timeout=30, what="the worker's metrics")
        assert "rankr_ghl_sync_upstream_requests" in text
        assert "rankr_ghl_sync_backlog_events" not in text  # the API reports the backlog
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


@pytest.mark.e2e
def test_a_worker_whose_metrics_port_is_taken_says_so_and_still_works(
    sqlite_url: str, tmp_path: Path
) -> None:
    taken = reserve_port()
    taken.listen()
    port = taken.getsockname()[1]
    env = cli_env(sqlite_url, METRICS_PORT=str(port), SANDBOX="true", LOG_LEVEL="INFO")
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env, stderr=out)
    try:
        wait_for(lambda: "worker.started" in log.read_text(), timeout=30, what="the worker to start")
        assert f"worker.metrics_port_unavailable port={port}" in log.read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        taken.close()
    assert code == 0
