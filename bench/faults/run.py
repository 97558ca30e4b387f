"""Fault run: thousands of changes both ways through the sandboxes on a bad day, then both sides compared.

    python -m bench.faults.run [--database postgres|sqlite] [--contacts 200] [--workers 3]
                               [--load-seconds 120] [--seconds 600] [--seed 7]

Loopback only, bounded in time (``--seconds``: the whole run fails past it) and in count. This
process runs the GHL and Rankr sandboxes on a port of their own; people "use" the products by
changing the sandbox stores directly (as in the products' UIs: it spends no API budget), which
sends the products' signed webhooks. The service runs as it does in production: one ``serve`` (API
only, never restarted) and ``--workers`` ``worker`` processes, on a fresh database.

While people create, edit (in bursts) and delete contacts on both sides, the run injects:
- 20-30 % 5xx answers (500/502/503/504) on both APIs, in phases;
- 429 storms: GHL's limiter squeezed to 15 requests per 10 s, Rankr's to 60 per minute, and phases
  of injected 429s without Retry-After;
- timeouts: answers held back past the service's HTTP timeout after the change was made (the
  service cannot know it happened), and requests held back before anything happened;
- webhooks dropped by the sandboxes and delivered by this script later, shuffled (reordering), and
  deliveries sent a second time (duplicates);
- SIGKILL of a random worker every few seconds, restarted at once.

Then the faults stop, the service drains its backlog, and every contact is compared across the two
sides. It prints events sent and applied, upstream calls, 429s, dead events, lost, duplicate and
differing records; the exit status is 0 only when lost, duplicate and differing are all 0 and no
event is dead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine
from app.integrations.ghl.schemas import GhlContact
from app.integrations.rankr.schemas import RankrContact
from app.kit.signatures import WebhookSecret, load_private_key, sign_ghl_ed25519, sign_standard
from app.sandbox import Sandbox, SandboxConfig, create_standalone_app, keys
from app.sandbox.store import RecordNotFound
from app.sync import mapping
from app.sync.mapping import FieldMaps
from tests.support.databases import PostgresSchema, migrate
from tests.support.server import free_port, serve
from tests.support.service import max_in_window

ROOT = Path(__file__).resolve().parents[2]
HTTP_TIMEOUT = 2.0
CITIES = ["London", "Paris", "Berlin", "Lisbon", "Oslo", "Rome", "Vienna", "Prague"]
TAGS = ["vip", "lead", "trial", "partner", "churned", "newsletter"]


# --- the world this run builds and tears down ----------------------------------------------------------


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "postgres":
        schema = PostgresSchema()
        try:
            yield schema.url
        finally:
            schema.drop()
        return
    directory = Path(tempfile.mkdtemp(prefix="faults-"))
    try:
        url = f"sqlite:///{directory / 'faults.db'}"
        migrate(url)
        yield url
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def service_env(database_url: str, public_url: str, sandbox_url: str) -> dict[str, str]:
    """Production settings, pointed at the sandboxes of this process (sandbox mode off)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GHL_", "RANKR_", "SANDBOX"))}
    return {
        **clean,
        "DATABASE_URL": database_url,
        "SANDBOX": "false",
        "PUBLIC_URL": public_url,
        "RUN_WORKER_IN_PROCESS": "false",
        "GHL_API_BASE_URL": f"{sandbox_url}/sandbox/ghl",
        "GHL_LOCATION_ID": keys.GHL_LOCATION_ID,
        "GHL_PRIVATE_TOKEN": keys.GHL_PRIVATE_TOKEN,
        "GHL_WEBHOOK_PUBLIC_KEY": keys.GHL_RSA_PUBLIC_PEM,
        "GHL_WEBHOOK_ED25519_PUBLIC_KEY": keys.GHL_ED25519_PUBLIC_PEM,
        "RANKR_API_BASE_URL": f"{sandbox_url}/sandbox/rankr",
        "RANKR_ACCOUNT_ID": keys.RANKR_ACCOUNT_ID,
        "RANKR_CLIENT_ID": keys.RANKR_CLIENT_ID,
        "RANKR_CLIENT_SECRET": keys.RANKR_CLIENT_SECRET,
        "RANKR_WEBHOOK_SECRETS": keys.RANKR_WEBHOOK_SECRET,
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }


def fault_env(database_url: str, public_url: str, sandbox_url: str) -> dict[str, str]:
    """``service_env`` sped up for a bad day in 10 minutes: a killed worker's events are taken over
    within seconds, a request the sandbox holds is given up on after ``HTTP_TIMEOUT``, and retries
    come within seconds. Under a load the machine cannot carry, a 5 s lease expires while its worker
    still works, and another worker takes the event too: the delivery benchmarks use the defaults."""
    return {
        **service_env(database_url, public_url, sandbox_url),
        "HTTP_TIMEOUT_SECONDS": str(HTTP_TIMEOUT),
        "RETRY_SCHEDULE": "1,2,4,8,15",
        "MAX_ATTEMPTS": "15",
        "WORKER_LEASE_SECONDS": "5",
        "WORKER_POLL_SECONDS": "0.2",
    }


class Processes:
    """``serve`` and the workers; workers are killed and restarted at random."""

    def __init__(self, env: dict[str, str], port: int, workers: int, logs: Path) -> None:
        self._env = env
        self._port = port
        self._logs = logs
        self.serve = self._start(["serve", "--port", str(port)], "serve")
        self.workers: list[subprocess.Popen[bytes]] = [
            self._start(["worker"], f"worker{n}") for n in range(workers)
        ]
        self.kills = 0

    def _start(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        with (self._logs / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "app", *args], cwd=ROOT, env=self._env, stdout=log, stderr=log
            )

    def kill_one(self, dice: random.Random) -> None:
        n = dice.randrange(len(self.workers))
        self.workers[n].send_signal(signal.SIGKILL)
        self.workers[n].wait()
        self.kills += 1
        self.workers[n] = self._start(["worker"], f"worker{n}")

    def stop(self) -> None:
        for process in [*self.workers, self.serve]:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.workers, self.serve]:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


# --- people using the two products ---------------------------------------------------------------------


@dataclass
class Person:
    email: str
    origin: str  # the side it was created on
    deleted: bool = False


@dataclass
class Tally:
    creates: Counter[str] = field(default_factory=Counter)
    updates: Counter[str] = field(default_factory=Counter)
    deletes: Counter[str] = field(default_factory=Counter)
    late: int = 0
    duplicates: int = 0
    phases: list[tuple[float, float, str]] = field(default_factory=list)


class People:
    """Creates, edits and deletes contacts in the sandbox stores, as people do in the products' UIs."""

    def __init__(self, sandbox: Sandbox, dice: random.Random, tally: Tally) -> None:
        self._sandbox = sandbox
        self._dice = dice
        self._tally = tally
        self.people: list[Person] = []

    def _find(self, side: str, email: str) -> str | None:
        if side == "rankr":
            for contact in self._sandbox.rankr.store.list_contacts():
                if contact.text.get("email") == email:
                    return str(contact.contact_id)
            return None
        for ghl in self._sandbox.ghl.store.list_contacts():
            if ghl.text.get("email") == email:
                return str(ghl.id)
        return None

    def create(self, side: str, number: int) -> None:
        email = f"p{number}.{uuid.uuid4().hex[:6]}@faults.example"
        first, last = f"Person{number}", self._dice.choice(["Smith", "Jones", "Brown", "Garcia"])
        city = self._dice.choice(CITIES)
        tags = self._dice.sample(TAGS, 2)
        if side == "rankr":
            fields = {"email": email, "firstName": first, "lastName": last, "address": {"city": city}}
            self._sandbox.rankr.store.create_contact({**fields, "tags": tags})
        else:
            fields = {"email": email, "firstName": first, "lastName": last, "city": city}
            self._sandbox.ghl.store.create_contact({**fields, "tags": tags})
        self.people.append(Person(email, side))
        self._tally.creates[side] += 1

    def change(self, person: Person, side: str) -> dict[str, Any]:
        field_name = self._dice.choice(["firstName", "lastName", "companyName", "website", "city", "tags"])
        value: Any = f"{field_name} {self._dice.randrange(10_000)}"
        if field_name == "tags":
            value = self._dice.sample(TAGS, self._dice.randrange(1, 4))
        elif field_name == "website":
            value = f"https://{self._dice.randrange(10_000)}.faults.example"
        elif field_name == "city":
            value = self._dice.choice(CITIES)
            if side == "rankr":
                return {"address": {"city": value}}
        return {field_name: value}

    def burst(self, person: Person) -> None:
        """One to five quick edits of one contact, on one side."""
        side = self._dice.choice(["rankr", "ghl"])
        record = self._find(side, person.email)
        if record is None:
            return  # not synced there yet (or deleted): edit where it exists next time
        store: Any = self._sandbox.rankr.store if side == "rankr" else self._sandbox.ghl.store
        for _ in range(self._dice.randrange(1, 6)):
            try:
                store.update_contact(record, self.change(person, side))
            except RecordNotFound:
                return
            self._tally.updates[side] += 1

    def delete(self, person: Person) -> None:
        side = self._dice.choice(["rankr", "ghl"])
        record = self._find(side, person.email)
        if record is None:
            return
        store: Any = self._sandbox.rankr.store if side == "rankr" else self._sandbox.ghl.store
        try:
            store.delete_contact(record)
        except RecordNotFound:
            return
        person.deleted = True
        self._tally.deletes[side] += 1


async def use_the_products(people: People, contacts: int, seconds: float, dice: random.Random) -> None:
    """``contacts`` creates per side, edits in bursts and some deletes, spread over ``seconds``."""
    operations: list[str] = ["create:rankr", "create:ghl"] * contacts
    operations += ["burst"] * (contacts * 3) + ["delete"] * (contacts // 5)
    dice.shuffle(operations)
    # Creates first-ish: edits need something to edit.
    operations.sort(key=lambda op: (0 if op.startswith("create") else 1) * dice.random())
    pause = seconds / len(operations)
    number = 0
    for operation in operations:
        if operation.startswith("create"):
            number += 1
            people.create(operation.split(":")[1], number)
        else:
            alive = [person for person in people.people if not person.deleted]
            if alive:
                person = dice.choice(alive)
                (people.burst if operation == "burst" else people.delete)(person)
        await asyncio.sleep(pause)


# --- faults ----------------------------------------------------------------------------------------------


async def inject_faults(sandbox: Sandbox, tally: Tally, dice: random.Random, until: float) -> None:
    """Phases of a few seconds each: 5xx, limiter squeezes, injected 429s, late answers, quiet."""
    sides = {"ghl": sandbox.ghl, "rankr": sandbox.rankr}
    kinds = ["5xx", "squeeze", "429", "late-answers", "5xx", "slow-requests", "quiet"]
    # Every kind comes up in each round, in a shuffled order (5xx twice).
    phases: list[str] = []
    for side in sides.values():
        side.apply_control({"webhook_drop_rate": 0.15})
    while time.monotonic() < until:
        if not phases:
            phases = dice.sample(kinds, len(kinds))
        phase = phases.pop()
        started = time.monotonic()
        length = dice.uniform(4, 7)
        for name, side in sides.items():
            if phase == "5xx":
                status = dice.choice([500, 502, 503, 504])
                side.apply_control({"error_rate": dice.uniform(0.2, 0.3), "error_status": status})
            elif phase == "squeeze":
                side.apply_control({"rate_max": 15 if name == "ghl" else 60})
            elif phase == "429":
                side.apply_control({"error_rate": 0.3, "error_status": 429})
            elif phase == "late-answers":
                side.apply_control({"answer_latency_ms": HTTP_TIMEOUT * 1000 + 500})
            elif phase == "slow-requests":
                side.apply_control({"latency_ms": HTTP_TIMEOUT * 1000 + 500})
        await asyncio.sleep(length)
        tally.phases.append((started, time.monotonic(), phase))
        calm(sandbox)
        for side in sides.values():
            side.apply_control({"webhook_drop_rate": 0.15})
        await asyncio.sleep(dice.uniform(1, 3))


def calm(sandbox: Sandbox) -> None:
    for side, rate_max in (
        (sandbox.ghl, sandbox.config.ghl_rate_max),
        (sandbox.rankr, sandbox.config.rankr_rate_max),
    ):
        side.apply_control(
            {
                "error_rate": 0.0,
                "error_status": 503,
                "latency_ms": 0.0,
                "answer_latency_ms": 0.0,
                "rate_max": rate_max,
                "webhook_drop_rate": 0.0,
            }
        )


async def kill_workers(processes: Processes, dice: random.Random, until: float) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(dice.uniform(2, 6))
        processes.kill_one(dice)


class Redelivery:
    """Delivers what the sandboxes dropped, later and shuffled; sends some deliveries a second time."""

    def __init__(self, sandbox: Sandbox, service_url: str, dice: random.Random, tally: Tally) -> None:
        self._sandbox = sandbox
        self._url = service_url
        self._dice = dice
        self._tally = tally
        self._seen: set[str] = set()
        self._queue: list[tuple[float, Any]] = []
        self._ed25519 = load_private_key(keys.GHL_ED25519_PRIVATE_PEM)
        self._secret = WebhookSecret.parse(keys.RANKR_WEBHOOK_SECRET)
        self.refused: list[tuple[str, int]] = []

    @property
    def pending(self) -> int:
        return len(self._queue)

    def collect(self) -> None:
        for delivery in self._sandbox.dispatcher.deliveries():
            if delivery.id in self._seen:
                continue
            if delivery.state == "dropped":
                self._seen.add(delivery.id)
                self._queue.append((time.monotonic() + self._dice.uniform(0.5, 6), delivery))
                self._tally.late += 1
            elif delivery.state == "delivered":
                self._seen.add(delivery.id)
                if self._dice.random() < 0.1:
                    self._queue.append((time.monotonic() + self._dice.uniform(0, 4), delivery))
                    self._tally.duplicates += 1

    async def send_due(self, http: httpx.AsyncClient) -> None:
        now = time.monotonic()
        due = [item for item in self._queue if item[0] <= now]
        self._queue = [item for item in self._queue if item[0] > now]
        self._dice.shuffle(due)
        for _, delivery in due:
            answer = await http.post(
                f"{self._url}/webhooks/{delivery.source}",
                content=delivery.body,
                headers=self._headers(delivery),
            )
            if answer.status_code >= 300:
                self.refused.append((delivery.id, answer.status_code))

    def _headers(self, delivery: Any) -> dict[str, str]:
        if delivery.source == "ghl":
            return {
                "content-type": "application/json",
                "x-ghl-signature": sign_ghl_ed25519(self._ed25519, delivery.body),  # type: ignore[arg-type]
            }
        stamp = int(time.time())
        return {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_standard(self._secret, delivery.id, stamp, delivery.body),
        }


# --- the run -----------------------------------------------------------------------------------------------


async def open_events(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        result = await connection.execute(
            text("SELECT count(*) FROM webhook_events WHERE status IN ('pending', 'processing', 'retrying')")
        )
        return int(result.scalar_one())


async def event_figures(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        result = await connection.execute(text("SELECT status, last_error, attempts FROM webhook_events"))
        rows = result.all()
    statuses = Counter(row.status for row in rows)
    coalesced = sum(1 for row in rows if (row.last_error or "").startswith("coalesced"))
    return {
        "stored": len(rows),
        "statuses": dict(statuses),
        "coalesced": coalesced,
        "claimed more than once": sum(1 for row in rows if row.attempts > 1),
        "dead reasons": Counter((row.last_error or "")[:120] for row in rows if row.status == "dead"),
    }


def compare(sandbox: Sandbox, people: list[Person]) -> dict[str, Any]:
    """Both sides, record by record, in the canonical fields the service syncs."""
    maps = FieldMaps()
    rankr: dict[str, list[dict[str, Any]]] = {}
    ghl: dict[str, list[dict[str, Any]]] = {}
    for wire in sandbox.rankr.store.snapshot()["contacts"]:
        fields = mapping.from_rankr(RankrContact.model_validate(wire), maps)
        rankr.setdefault(str(fields.get("email")), []).append(fields)
    for wire in sandbox.ghl.store.snapshot()["contacts"]:
        fields = mapping.from_ghl(GhlContact.model_validate(wire), maps)
        ghl.setdefault(str(fields.get("email")), []).append(fields)
    lost, duplicates, differing, examples = 0, 0, 0, []
    for person in people:
        mine, theirs = rankr.get(person.email, []), ghl.get(person.email, [])
        duplicates += max(0, len(mine) - 1) + max(0, len(theirs) - 1)
        if bool(mine) != bool(theirs):
            lost += 1
            examples.append(
                f"{person.email}: rankr {len(mine)}, ghl {len(theirs)} (deleted: {person.deleted})"
            )
        elif mine and mapping.fingerprint(mine[0]) != mapping.fingerprint(theirs[0]):
            differing += 1
            diff = {
                k: (mine[0].get(k), theirs[0].get(k))
                for k in {*mine[0], *theirs[0]}
                if mine[0].get(k) != theirs[0].get(k)
            }
            examples.append(f"{person.email}: differs {diff}")
    strangers = len({*rankr, *ghl} - {person.email for person in people})
    return {
        "people": len(people),
        "alive": sum(1 for email in {p.email for p in people} if rankr.get(email) or ghl.get(email)),
        "lost": lost,
        "duplicate": duplicates + strangers,
        "differing": differing,
        "examples": examples[:10],
    }


def requests_figures(sandbox: Sandbox, tally: Tally) -> dict[str, Any]:
    """The service's API calls per sandbox: statuses, 429s by fault phase, the busiest window."""
    figures: dict[str, Any] = {}
    offset = time.monotonic() - datetime.now(UTC).timestamp()  # request times are wall clock
    for name, side in (("ghl", sandbox.ghl), ("rankr", sandbox.rankr)):
        requests = [r for r in side.requests if r.path != "/oauth/token"]
        limited = [r for r in requests if r.status == 429]

        def phase_of(at: datetime) -> str:
            moment = at.timestamp() + offset
            for start, end, phase in tally.phases:
                # A squeeze lasts until the window it filled has passed.
                if start <= moment <= end + (10 if phase == "squeeze" else 0.5):
                    return phase
            return "calm"

        answered = [r.as_json() for r in requests if r.status != 429]
        busiest = max_in_window(answered, seconds=10 if name == "ghl" else 60)
        figures[name] = {
            "calls": len(requests),
            "statuses": dict(Counter(r.status for r in requests)),
            "429": len(limited),
            "429 by phase": dict(Counter(phase_of(r.at) for r in limited)),
            "busiest window": busiest,
        }
    return figures


async def run(args: argparse.Namespace) -> int:
    dice = random.Random(args.seed)
    logs = Path(tempfile.mkdtemp(prefix="faults-logs-"))
    tally = Tally()
    config = SandboxConfig(webhook_target=None, random_seed=args.seed)
    app = create_standalone_app(config)
    sandbox: Sandbox = app.state.sandbox
    deadline = time.monotonic() + args.seconds
    started = time.monotonic()
    with database(args.database) as database_url, serve(app) as sandbox_url:
        # Picked once the sandbox listens, so the sandbox cannot be handed the service's port.
        service_port = free_port()
        service_url = f"http://127.0.0.1:{service_port}"
        config.webhook_target = service_url
        processes = Processes(
            fault_env(database_url, service_url, sandbox_url), service_port, args.workers, logs
        )
        engine = create_engine(database_url)
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                await wait_ready(http, service_url)
                people = People(sandbox, dice, tally)
                redelivery = Redelivery(sandbox, service_url, dice, tally)
                load_until = time.monotonic() + args.load_seconds
                print(
                    f"fault run: {args.contacts} contacts per side, {args.workers} workers, {args.database};"
                    f" load for {args.load_seconds:.0f} s, at most {args.seconds:.0f} s in all (logs: {logs})"
                )
                chaos = [
                    asyncio.create_task(inject_faults(sandbox, tally, dice, load_until)),
                    asyncio.create_task(kill_workers(processes, dice, load_until)),
                ]
                load = asyncio.create_task(use_the_products(people, args.contacts, args.load_seconds, dice))
                while not load.done() or not all(task.done() for task in chaos):
                    redelivery.collect()
                    await redelivery.send_due(http)
                    await asyncio.sleep(0.2)
                    if time.monotonic() > deadline:
                        raise TimeoutError("the load did not finish in time")
                await load
                calm(sandbox)
                took = time.monotonic() - started
                print(f"load done after {took:.0f} s; {processes.kills} workers killed; draining")
                quiet = 0
                while quiet < 5:
                    redelivery.collect()
                    await redelivery.send_due(http)
                    busy = sandbox.dispatcher.pending() + redelivery.pending + await open_events(engine)
                    quiet = quiet + 1 if busy == 0 else 0
                    if time.monotonic() > deadline:
                        print(f"NOT SETTLED in {args.seconds:.0f} s: {busy} events or deliveries open")
                        break
                    await asyncio.sleep(1)
                settled_after = time.monotonic() - started
        finally:
            processes.stop()
        events = await event_figures(engine)
        await engine.dispose()
        records = compare(sandbox, people.people)
        upstream = requests_figures(sandbox, tally)
        webhooks = Counter(d.state for d in sandbox.dispatcher.deliveries())
    report(args, tally, processes, webhooks, redelivery, events, upstream, records, settled_after)
    ok = (
        records["lost"] == 0
        and records["duplicate"] == 0
        and records["differing"] == 0
        and events["statuses"].get("dead", 0) == 0
        and settled_after < args.seconds
    )
    print("RESULT:", "ok" if ok else "FAILED")
    return 0 if ok else 1


async def wait_ready(http: httpx.AsyncClient, url: str) -> None:
    for _ in range(150):
        try:
            if (await http.get(f"{url}/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the service did not become ready")


def report(
    args: argparse.Namespace,
    tally: Tally,
    processes: Processes,
    webhooks: Counter[str],
    redelivery: Redelivery,
    events: dict[str, Any],
    upstream: dict[str, Any],
    records: dict[str, Any],
    settled_after: float,
) -> None:
    statuses = events["statuses"]
    lines = [
        "",
        f"settled after {settled_after:.0f} s; workers killed with SIGKILL: {processes.kills};"
        f" fault phases: {dict(Counter(phase for _, _, phase in tally.phases))}",
        f"changes made by people: creates {dict(tally.creates)}, edits {dict(tally.updates)},"
        f" deletes {dict(tally.deletes)}",
        f"webhooks sent by the sandboxes: {sum(webhooks.values())} {dict(webhooks)};"
        f" delivered late and shuffled: {tally.late}; sent twice: {tally.duplicates};"
        f" refused by the service: {len(redelivery.refused)}",
        f"events stored: {events['stored']}; applied (done): {statuses.get('done', 0)}"
        f" of which coalesced into another: {events['coalesced']}; skipped: {statuses.get('skipped', 0)};"
        f" dead: {statuses.get('dead', 0)}; still open: "
        f"{sum(statuses.get(s, 0) for s in ('pending', 'processing', 'retrying'))};"
        f" claimed again after a crash or retry: {events['claimed more than once']}",
    ]
    for name, figures in upstream.items():
        lines.append(
            f"{name} API calls by the service: {figures['calls']} {figures['statuses']};"
            f" 429s: {figures['429']} by phase {figures['429 by phase']};"
            f" busiest {'10 s' if name == 'ghl' else 'minute'}: {figures['busiest window']}"
        )
    lines.append(
        f"records: {records['people']} people, {records['alive']} alive; lost {records['lost']},"
        f" duplicate {records['duplicate']}, differing {records['differing']}"
    )
    lines += [f"  {example}" for example in records["examples"]]
    lines += [f"  dead: {count} x {reason}" for reason, count in events["dead reasons"].items()]
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--contacts", type=int, default=200, help="contacts created on each side")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument(
        "--load-seconds", type=float, default=120, help="how long people keep changing things"
    )
    parser.add_argument("--seconds", type=float, default=600, help="the whole run fails past this")
    parser.add_argument("--seed", type=int, default=7)
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
