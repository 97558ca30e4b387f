"""Outage run: the service's Postgres stopped under a steady stream of signed webhooks, then started again.

    python -m bench.outage.run [--seconds-down 15] [--rate 20] [--seconds-before 10]
                               [--seconds-after 10] [--workers 0] [--seconds 180] [--seed 7]

Loopback only and bounded: past ``--seconds`` the run stops and fails, and whatever happens the
processes it started are stopped and its Postgres removed. That Postgres is its own: ``initdb`` and
``pg_ctl`` from the machine's PostgreSQL (``/usr/lib/postgresql/*/bin``), in a temporary directory, on
a free loopback port, never the shared one. The run migrates it (``rankr-ghl-sync migrate``) and
starts ``serve`` on it as users do, its worker in process (or ``--workers`` ``worker`` processes), at
the default log level, each process's output to a file.

This process serves the GHL and Rankr sandboxes (as ``bench.world`` does) and people change contacts
in their stores at ``--rate`` a second, taking turns between the sides: creates, and edits of the
contacts they made. The sandboxes write the webhook of each change (and of the service's own writes,
as the products do); this process delivers them, signed as the products sign them, so that it sees
every answer: a delivery answered 429 or 503 is sent again after its Retry-After until it is
acknowledged. (GHL and Rankr send a refused webhook again on schedules of their own, minutes apart;
keeping to the service's Retry-After makes the recovery measured the service's.)

After ``--seconds-before`` the run stops Postgres (``pg_ctl stop -m fast``) for ``--seconds-down``
while the changes go on, then starts it again. The changes go on for ``--seconds-after`` more, then
the service drains. Recovery is the time from Postgres accepting connections again to the backlog
settled: every delivery made before then acknowledged, and none of their events still open.

The upstream budgets, of the sandboxes and the service's settings alike, are the products' own times
``BUDGET_FACTOR``: at GHL's 100 requests per 10 s, the writes of 300 refused webhooks would take 30 s
and more whatever the database did, and this run measures the database's part.

The exit status is 0 only when nothing acknowledged is lost, no answer was a 500 (or another answer
than 2xx, 429 and 503), every 429 and 503 carried Retry-After, the service wrote at most
``OUTAGE_LOG_LINES_BAR`` lines while Postgres was down, and the backlog settled within
``RECOVERY_BAR_SECONDS`` of its return (the bars of the issue "Hostile input and bad days", item 7).
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import os
import pwd
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import create_engine, is_unavailable
from app.inbox.models import OPEN_STATUSES
from app.kit.signatures import WebhookSecret, load_private_key, sign_ghl_ed25519, sign_ghl_rsa, sign_standard
from app.sandbox import Sandbox, SandboxConfig, create_standalone_app, keys
from app.sandbox.webhooks import MAX_SENDING, Delivery
from bench.faults.run import service_env
from bench.world import World, wait_ready
from tests.support.server import free_port, serve

RECOVERY_BAR_SECONDS = 10.0
OUTAGE_LOG_LINES_BAR = 60
BUDGET_FACTOR = 20
REFUSALS = frozenset({429, 503})
NO_ANSWER_RETRY_SECONDS = 1.0  # when a delivery got no answer, or one without Retry-After
CREATE_SHARE = 0.3  # of the changes; the rest edit a contact made earlier on the same side
CITIES = ["London", "Paris", "Berlin", "Lisbon", "Oslo", "Rome", "Vienna", "Prague"]
OPEN = tuple(str(status) for status in OPEN_STATUSES)
SERVICE_LOGS = re.compile(r"(serve|worker\d+)\.log")


class SetupError(RuntimeError):
    """This machine cannot run the benchmark as it is; the message says what to do."""


# --- a Postgres of this run's own ----------------------------------------------------------------------


def postgres_binaries() -> Path:
    """The newest PostgreSQL server's bin directory (Debian's layout), else the one ``initdb`` is in."""
    found = [path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "initdb").exists()]
    found.sort(key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb is None:
        raise SetupError(
            "no PostgreSQL server binaries (initdb, pg_ctl); install them: apt-get install postgresql"
        )
    return Path(initdb).parent


class PrivatePostgres:
    """A Postgres cluster in ``directory``, on a free loopback port, trust authentication.

    ``initdb`` refuses to run as root: as root, the cluster belongs to the ``postgres`` user and its
    programs run as that user (``runuser``).
    """

    def __init__(self, directory: Path) -> None:
        self._bin = postgres_binaries()
        self._data = directory / "data"
        self.log = directory / "postgres.log"
        self._as_owner: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError as error:
                raise SetupError(
                    "initdb refuses to run as root and there is no 'postgres' user to run it as; "
                    "run as another user, or install PostgreSQL (it creates that user)"
                ) from error
            os.chown(directory, owner.pw_uid, owner.pw_gid)
            self._as_owner = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        self.url = f"postgresql://bench@127.0.0.1:{self.port}/postgres"
        self.running = False
        self._run("initdb", "-D", str(self._data), "-U", "bench", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        command = [*self._as_owner, str(self._bin / program), *args]
        done = subprocess.run(
            command, cwd=self._data.parent, capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise SetupError(
                f"{program} {args[0]} failed (exit {done.returncode}): {said[-1] if said else 'no output'};"
                f" the server's log is {self.log}"
            )

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self._data.parent}"
        )
        self._run(
            "pg_ctl", "start", "-D", str(self._data), "-l", str(self.log), "-w", "-t", "30", "-o", options
        )
        self.running = True

    def postmaster(self) -> int | None:
        """The server's process id while it runs (its pid file exists), else None."""
        try:
            return int((self._data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError):
            return None

    def stop(self, mode: str = "fast") -> None:
        """Stop and wait until it has: ``fast`` ends the sessions and shuts down cleanly."""
        self._run("pg_ctl", "stop", "-D", str(self._data), "-m", mode, "-w", "-t", "30")
        self.running = False


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started ``PrivatePostgres``, stopped and deleted when the block ends, however it ends."""
    directory = Path(tempfile.mkdtemp(prefix="outage-postgres-"))
    postgres: PrivatePostgres | None = None
    try:
        postgres = PrivatePostgres(directory)
        postgres.start()
        yield postgres
    finally:
        # By its pid file, not ``running``: a start cut short by the deadline may still have started it.
        postmaster = None if postgres is None else postgres.postmaster()
        if postgres is not None and postmaster is not None:
            try:
                postgres.stop("immediate")
            except (SetupError, subprocess.TimeoutExpired):
                os.kill(postmaster, signal.SIGQUIT)  # what pg_ctl's immediate mode sends
        shutil.rmtree(directory, ignore_errors=True)


# --- the service and the sandboxes --------------------------------------------------------------------


@contextmanager
def outage_world(database_url: str, logs: Path, workers: int, seed: int) -> Iterator[World]:
    """Sandboxes in this process that write webhooks but leave their delivery to this run; the
    service migrated, then ``serve`` (and ``workers`` worker processes) on ``database_url``."""
    logs.mkdir(parents=True, exist_ok=True)
    config = SandboxConfig(
        webhook_target=None,
        random_seed=seed,
        webhooks_enabled=False,  # kept in the delivery log, sent by ``Sender``
        delivery_log_size=1_000_000,  # never full: ``Sender`` reads it by position
        ghl_rate_max=SandboxConfig.ghl_rate_max * BUDGET_FACTOR,
        rankr_rate_max=SandboxConfig.rankr_rate_max * BUDGET_FACTOR,
    )
    app = create_standalone_app(config)
    with ExitStack() as stack:
        sandbox_url = stack.enter_context(serve(app))
        # The service's port is picked once the sandbox listens (see ``bench.world``).
        port = free_port()
        service_url = f"http://127.0.0.1:{port}"
        config.webhook_target = service_url
        env = {
            **service_env(database_url, service_url, sandbox_url),
            "LOG_LEVEL": "INFO",  # the default: the lines users get
            "LOG_FORMAT": "console",  # the default: a traceback counts as the lines it takes
            "RUN_WORKER_IN_PROCESS": "false" if workers else "true",
            "GHL_RATE_LIMIT": str(config.ghl_rate_max),
            "RANKR_RATE_LIMIT": str(config.rankr_rate_max),
        }
        loop = stack.enter_context(asyncio.Runner())
        engine = create_engine(database_url)
        stack.callback(lambda: loop.run(engine.dispose()))
        here = World(app.state.sandbox, sandbox_url, service_url, database_url, env, logs, loop, engine)
        try:
            migrate = here.start("migrate", name="migrate")
            if migrate.wait(timeout=120) != 0:
                raise SetupError(f"rankr-ghl-sync migrate failed; see {logs / 'migrate.log'}")
            here.start("serve", "--port", str(port), name="serve")
            here.workers(workers)
            wait_ready(service_url)
            yield here
        finally:
            for process in reversed(here.processes):
                here.stop(process)


def log_lines(logs: Path) -> int:
    """Lines the service's processes have written so far (``migrate`` left out)."""
    return sum(path.read_bytes().count(b"\n") for path in logs.iterdir() if SERVICE_LOGS.fullmatch(path.name))


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """CPU time of a live process (with that of its children it has waited for), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    ticks = sum(int(value) for value in fields[11 : 15 if children else 13])  # utime, stime[, cutime, cstime]
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu(postmaster: int | None) -> float:
    """The server's CPU time: the postmaster's, its ended backends' and its live ones'."""
    if postmaster is None:
        return 0.0
    total = cpu_seconds(postmaster, children=True)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rpartition(")")[2].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        if parent == postmaster:
            total += cpu_seconds(int(stat.parent.name))
    return total


def cpu_used(here: World, postgres: PrivatePostgres) -> dict[str, float]:
    """CPU seconds so far: the service's processes, this one (sandboxes, senders) and Postgres."""
    return {
        "service": sum(cpu_seconds(process.pid) for process in here.processes if process.poll() is None),
        "sandboxes and senders": time.process_time(),
        "postgres": postgres_cpu(postgres.postmaster()),
    }


# --- people, and the products' webhook senders ------------------------------------------------------


class People:
    """Create and edit contacts in the sandboxes' stores, as people do in the products' UIs: each
    change is one webhook (no tags are edited: GHL sends a second one for those)."""

    def __init__(self, sandbox: Sandbox, dice: random.Random) -> None:
        self._sandbox = sandbox
        self._dice = dice
        self.records: dict[str, list[str]] = {"rankr": [], "ghl": []}
        self.changes: Counter[str] = Counter()
        self.until = float("inf")  # monotonic; set once the end of the changes is known

    def change(self, side: str) -> None:
        mine = self.records[side]
        if len(mine) < 5 or self._dice.random() < CREATE_SHARE:
            number = sum(len(records) for records in self.records.values()) + 1
            fields: dict[str, Any] = {
                "email": f"person{number}@outage.example",
                "firstName": f"Person{number}",
                "lastName": self._dice.choice(["Smith", "Jones", "Brown", "Garcia"]),
            }
            city = self._dice.choice(CITIES)
            if side == "rankr":
                mine.append(
                    self._sandbox.rankr.store.create_contact({**fields, "address": {"city": city}}).contact_id
                )
            else:
                mine.append(self._sandbox.ghl.store.create_contact({**fields, "city": city}).id)
            self.changes[f"{side} creates"] += 1
            return
        name = self._dice.choice(["firstName", "lastName", "companyName"])
        changes = {name: f"{name} {self._dice.randrange(100_000)}"}
        if side == "rankr":
            self._sandbox.rankr.store.update_contact(self._dice.choice(mine), changes)
        else:
            self._sandbox.ghl.store.update_contact(self._dice.choice(mine), changes)
        self.changes[f"{side} edits"] += 1

    async def run(self, rate: float) -> None:
        """``rate`` changes a second, sides taking turns, until ``until``."""
        started = time.monotonic()
        made = 0
        while time.monotonic() < self.until:
            self.change("rankr" if made % 2 == 0 else "ghl")
            made += 1
            await asyncio.sleep(max(0.0, started + made / rate - time.monotonic()))


@dataclass
class Outcome:
    """One webhook the sandboxes wrote, and the service's answers to it."""

    delivery: Delivery
    index: int  # in ``Sender.outcomes``
    answers: list[tuple[float, int | None]] = field(default_factory=list)  # (monotonic, status)
    acknowledged: str | None = None  # the service's word for it: accepted, duplicate or ignored
    given_up: bool = False  # answered with a refusal no product sends again (a 4xx but 429)
    signed: dict[str, str] | None = None  # GHL's headers, the same for every attempt


class Sender:
    """Delivers the sandboxes' webhooks to the service, at most ``MAX_SENDING`` at once as the
    sandboxes do, and sends each one answered 429 or 503 again after its Retry-After."""

    def __init__(self, sandbox: Sandbox, http: httpx.AsyncClient) -> None:
        self._sandbox = sandbox
        self._http = http
        ed25519_key = load_private_key(keys.GHL_ED25519_PRIVATE_PEM)
        rsa_key = load_private_key(keys.GHL_RSA_PRIVATE_PEM)
        assert isinstance(ed25519_key, ed25519.Ed25519PrivateKey)
        assert isinstance(rsa_key, rsa.RSAPrivateKey)
        self._ed25519_key, self._rsa_key = ed25519_key, rsa_key
        self._secret = WebhookSecret.parse(keys.RANKR_WEBHOOK_SECRET)
        self._sending = asyncio.Semaphore(MAX_SENDING)
        self._due: list[tuple[float, int]] = []  # (monotonic, index in outcomes), a heap
        self._tasks: set[asyncio.Task[None]] = set()
        self.outcomes: list[Outcome] = []
        self.refusals_without_retry_after = 0

    def collect(self) -> None:
        """Take up the webhooks written since the last call."""
        for delivery in self._sandbox.dispatcher.deliveries()[len(self.outcomes) :]:
            outcome = Outcome(delivery, len(self.outcomes))
            self.outcomes.append(outcome)
            heapq.heappush(self._due, (time.monotonic(), outcome.index))

    def outstanding(self, outcomes: list[Outcome] | None = None) -> int:
        return sum(
            1
            for o in (self.outcomes if outcomes is None else outcomes)
            if o.acknowledged is None and not o.given_up
        )

    async def run(self) -> None:
        """Collect and send what is due, until cancelled."""
        try:
            while True:
                self.collect()
                now = time.monotonic()
                while self._due and self._due[0][0] <= now:
                    _, index = heapq.heappop(self._due)
                    task = asyncio.create_task(self._send(self.outcomes[index]))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                await asyncio.sleep(0.01)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _send(self, outcome: Outcome) -> None:
        delivery = outcome.delivery
        assert delivery.url is not None
        async with self._sending:
            try:
                answer = await self._http.post(
                    delivery.url, content=delivery.body, headers=self._headers(outcome)
                )
            except httpx.TransportError:
                outcome.answers.append((time.monotonic(), None))
                self._again(outcome, NO_ANSWER_RETRY_SECONDS)
                return
        outcome.answers.append((time.monotonic(), answer.status_code))
        if answer.is_success:
            try:
                word = answer.json().get("status")
            except ValueError:
                word = None
            outcome.acknowledged = str(word or answer.status_code)
            return
        if 400 <= answer.status_code < 500 and answer.status_code != 429:
            outcome.given_up = True
            return
        retry_after = answer.headers.get("retry-after", "")
        if answer.status_code in REFUSALS and not retry_after.isdigit():
            self.refusals_without_retry_after += 1
        self._again(outcome, float(retry_after) if retry_after.isdigit() else NO_ANSWER_RETRY_SECONDS)

    def _again(self, outcome: Outcome, seconds: float) -> None:
        heapq.heappush(self._due, (time.monotonic() + seconds, outcome.index))

    def _headers(self, outcome: Outcome) -> dict[str, str]:
        delivery = outcome.delivery
        if delivery.source == "ghl":
            if outcome.signed is None:
                outcome.signed = {
                    "content-type": "application/json",
                    "x-ghl-signature": sign_ghl_ed25519(self._ed25519_key, delivery.body),
                    "x-wh-signature": sign_ghl_rsa(self._rsa_key, delivery.body),
                }
            return outcome.signed
        # Standard Webhooks: every attempt is signed afresh, with its own timestamp.
        stamp = int(time.time())
        return {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign_standard(self._secret, delivery.id, stamp, delivery.body),
        }


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class Timeline:
    """The run's moments (monotonic seconds) and the service's log lines at the outage's two ends."""

    down_at: float = 0.0  # pg_ctl stop issued
    back_at: float = 0.0  # pg_ctl start returned: Postgres accepts connections
    settled_at: float | None = None  # the backlog acknowledged and applied
    drained_at: float | None = None  # nothing open, nothing left to deliver
    backlog: int = 0  # webhooks written before Postgres was back
    stage: str = "before the outage"
    lines_down: int = 0
    lines_back: int = 0
    cpu_back: dict[str, float] = field(default_factory=dict)  # ``cpu_used`` when Postgres was back
    cpu_settled: dict[str, float] = field(default_factory=dict)  # and when the backlog had settled


async def open_keys(engine: AsyncEngine) -> set[tuple[str, str]] | None:
    """(source, event id) of the open events; None while the database does not answer."""
    statuses = ", ".join(f"'{status}'" for status in OPEN)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(f"SELECT source, event_id FROM webhook_events WHERE status IN ({statuses})")  # noqa: S608
            )
    except Exception as error:
        if not is_unavailable(error):
            raise
        return None
    return {(row.source, row.event_id) for row in rows}


def keys_of(outcomes: list[Outcome]) -> set[tuple[str, str]]:
    return {(outcome.delivery.source, outcome.delivery.id) for outcome in outcomes}


async def wait_settled(sender: Sender, engine: AsyncEngine, backlog: list[Outcome]) -> float:
    """When every webhook of ``backlog`` was acknowledged and none of their events is open."""
    backlog_keys = keys_of(backlog)
    while True:
        if sender.outstanding(backlog) == 0:
            still_open = await open_keys(engine)
            if still_open is not None and not still_open & backlog_keys:
                return time.monotonic()
        await asyncio.sleep(0.1)


async def wait_drained(sender: Sender, engine: AsyncEngine) -> float:
    """When nothing was open, outstanding or newly written for three polls in a row (the service's
    last writes bring their products' webhooks after their events are done)."""
    quiet, known = 0, -1
    while quiet < 3:
        still_open = await open_keys(engine)
        written = len(sender.outcomes)
        idle = still_open == set() and sender.outstanding() == 0 and written == known
        quiet, known = (quiet + 1 if idle else 0), written
        await asyncio.sleep(0.2)
    return time.monotonic()


async def outage(
    here: World,
    postgres: PrivatePostgres,
    args: argparse.Namespace,
    people: People,
    sender: Sender,
    timeline: Timeline,
) -> None:
    changes = asyncio.create_task(people.run(args.rate))
    try:
        await asyncio.sleep(args.seconds_before)
        timeline.lines_down = log_lines(here.logs)
        timeline.down_at = time.monotonic()
        timeline.stage = "stopping Postgres, or waiting for it to start"
        await asyncio.to_thread(postgres.stop)
        await asyncio.sleep(max(0.0, timeline.down_at + args.seconds_down - time.monotonic()))
        await asyncio.to_thread(postgres.start)
        timeline.back_at = time.monotonic()
        timeline.lines_back = log_lines(here.logs)
        timeline.cpu_back = cpu_used(here, postgres)
        people.until = timeline.back_at + args.seconds_after
        sender.collect()
        backlog = list(sender.outcomes)
        timeline.backlog = len(backlog)
        timeline.stage = "waiting for the backlog to settle"
        timeline.settled_at = await wait_settled(sender, here.engine, backlog)
        timeline.cpu_settled = cpu_used(here, postgres)
        timeline.stage = "draining"
        await changes
        timeline.drained_at = await wait_drained(sender, here.engine)
    finally:
        changes.cancel()
        await asyncio.gather(changes, return_exceptions=True)


@dataclass
class Figures:
    finished: bool  # within --seconds
    timeline: Timeline
    people: People
    sender: Sender
    stored: set[tuple[str, str]] | None = None  # (source, event id) of every event in the database
    statuses: Counter[str] = field(default_factory=Counter)
    log_lines: int = 0


async def exercise(
    here: World, postgres: PrivatePostgres, args: argparse.Namespace, deadline: float
) -> Figures:
    timeline = Timeline()
    people = People(here.sandbox, random.Random(args.seed))
    async with httpx.AsyncClient(timeout=10) as http:
        sender = Sender(here.sandbox, http)
        sending = asyncio.create_task(sender.run())
        finished = False
        try:
            async with asyncio.timeout(deadline - time.monotonic()):
                await outage(here, postgres, args, people, sender, timeline)
            finished = True
        except TimeoutError:
            pass
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
    figures = Figures(finished, timeline, people, sender)
    if postgres.running:
        async with here.engine.connect() as connection:
            rows = (
                await connection.execute(text("SELECT source, event_id, status FROM webhook_events"))
            ).all()
        figures.stored = {(row.source, row.event_id) for row in rows}
        figures.statuses = Counter(row.status for row in rows)
    return figures


def report(args: argparse.Namespace, figures: Figures) -> bool:
    """Print the figures as a short table; True when they meet every bar."""
    sender, timeline = figures.sender, figures.timeline
    answers = Counter(status for outcome in sender.outcomes for _, status in outcome.answers)
    acknowledged = sum(
        count for status, count in answers.items() if status is not None and 200 <= status < 300
    )
    other = {
        status: count
        for status, count in answers.items()
        if status not in {*REFUSALS, 500} and (status is None or not 200 <= status < 300)
    }
    refused_after = sum(
        1
        for o in sender.outcomes
        for at, status in o.answers
        if status in REFUSALS and at > timeline.back_at > 0
    )
    stored_keys = keys_of([o for o in sender.outcomes if o.acknowledged in {"accepted", "duplicate"}])
    lost = None if figures.stored is None else len(stored_keys - figures.stored)
    recovery = None if timeline.settled_at is None else timeline.settled_at - timeline.back_at
    outage_lines = timeline.lines_back - timeline.lines_down if timeline.back_at else None
    open_events = sum(figures.statuses.get(status, 0) for status in OPEN)
    checks = {
        "finished in time": figures.finished,
        "lost": lost == 0,
        "500s": answers[500] == 0,
        "other answers": not other,
        "refusals without Retry-After": sender.refusals_without_retry_after == 0,
        "log lines during the outage": outage_lines is not None and outage_lines <= OUTAGE_LOG_LINES_BAR,
        "recovery": recovery is not None and recovery <= RECOVERY_BAR_SECONDS,
        "all acknowledged": sender.outstanding() == 0,
    }

    def shown(value: float | None, unit: str = "") -> str:
        return (
            "n/a"
            if value is None
            else f"{value:.1f}{unit}"
            if isinstance(value, float)
            else f"{value:,}{unit}"
        )

    rows = [
        (
            "webhooks sent",
            f"{len(sender.outcomes):,}",
            f"{sum(figures.people.changes.values()):,} people's changes "
            f"{dict(figures.people.changes)}, the rest the products' webhooks of the service's writes",
        ),
        ("answers", f"{sum(answers.values()):,}", "first deliveries and deliveries again"),
        ("acknowledged (2xx)", f"{acknowledged:,}", ""),
        (
            "refused 503 / 429",
            f"{answers[503]:,} / {answers[429]:,}",
            f"{refused_after} of them after Postgres was back",
        ),
        ("refused without Retry-After", f"{sender.refusals_without_retry_after}", "must be 0"),
        ("500s", f"{answers[500]}", "must be 0"),
        ("other answers", f"{other or 0}", "must be none (None: no answer)"),
        (
            "stored (events in the database)",
            shown(None if figures.stored is None else len(figures.stored)),
            f"{dict(figures.statuses)}; open {open_events}",
        ),
        ("lost (acknowledged, not stored)", shown(lost), "must be 0"),
        ("log lines while Postgres was down", shown(outage_lines), f"at most {OUTAGE_LOG_LINES_BAR}"),
        ("log lines in all", shown(figures.log_lines), "serve and workers, start to stop"),
        (
            "recovery",
            shown(recovery, " s"),
            f"at most {RECOVERY_BAR_SECONDS:.0f} s: Postgres back to the "
            f"{timeline.backlog:,} webhooks written before acknowledged and applied",
        ),
    ]
    backlog = sender.outcomes[: timeline.backlog]
    if backlog and sender.outstanding(backlog) == 0:
        acknowledged_at = max(
            at for outcome in backlog for at, status in outcome.answers if status is not None
        )
        rows.append(
            (
                "backlog acknowledged",
                shown(acknowledged_at - timeline.back_at, " s"),
                "after Postgres was back (deliveries again wait for their Retry-After)",
            )
        )
    if recovery is not None:
        used = {name: timeline.cpu_settled[name] - timeline.cpu_back[name] for name in timeline.cpu_back}
        rows.append(
            (
                "CPU used in the recovery",
                shown(sum(used.values()), " s"),
                ", ".join(f"{name} {seconds:.1f} s" for name, seconds in used.items())
                + f"; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
            )
        )
    if timeline.drained_at is not None:
        rows.append(
            ("drained", shown(timeline.drained_at - timeline.back_at, " s"), "after Postgres was back")
        )
    width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    print()
    if not figures.finished:
        print(f"  NOT FINISHED in {args.seconds:g} s: it was {timeline.stage}")
    for measure, value, note in rows:
        print(f"  {measure:<{width}}  {value:>{value_width}}  {note}".rstrip())
    failed = [name for name, ok in checks.items() if not ok]
    print("RESULT:", "ok" if not failed else f"FAILED ({', '.join(failed)})")
    return not failed


def run(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.seconds
    logs = Path(tempfile.mkdtemp(prefix="outage-logs-"))
    with private_postgres() as postgres, outage_world(postgres.url, logs, args.workers, args.seed) as here:
        where = f"{args.workers} worker processes" if args.workers else "its worker in process"
        print(
            f"outage run: Postgres stopped for {args.seconds_down:g} s under {args.rate:g} webhooks/s after"
            f" {args.seconds_before:g} s, changes for {args.seconds_after:g} s more; serve with {where};"
            f" at most {args.seconds:g} s in all (logs: {logs})"
        )
        figures = here.loop.run(exercise(here, postgres, args, deadline))
    figures.log_lines = log_lines(logs)
    return 0 if report(args, figures) else 1


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds-down", type=positive, default=15, help="how long Postgres is stopped")
    parser.add_argument("--rate", type=positive, default=20, help="people's changes (webhooks) per second")
    parser.add_argument("--seconds-before", type=positive, default=10, help="changes before the outage")
    parser.add_argument("--seconds-after", type=float, default=10, help="changes after Postgres is back")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: serve's own worker)")
    parser.add_argument("--seconds", type=positive, default=180, help="the whole run fails past this")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    # SIGTERM (a CI job cancelled) ends the run as Ctrl-C does: the processes stopped, Postgres removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        sys.exit(run(args))
    except SetupError as error:
        print(f"outage run: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
