"""Peak resident memory of a worker draining a backlog, by backlog size (Postgres).

    python -m bench.memory [--events 10000 30000]

One real Rankr ``contact.created`` webhook is stored by ``serve`` and applied; it is the template.
A ``worker`` process then idles on the database: its resident memory is the baseline. The backlog
goes straight into the inbox table in one statement (copies of the template, each a new contact
with its own id and email), and the worker drains it (GHL writes unlimited in the sandbox, its
webhooks off so no echoes join the backlog). Peak: the worker's VmHWM when the backlog is drained.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.world import world
from tests.support.service import execute, query


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


BACKLOG = """
INSERT INTO webhook_events (source, event_id, type, account_key, ordering_key, payload, received_at,
                            status, attempts, next_attempt_at)
SELECT source, event_id || '-' || g, type, account_key, ordering_key || '-' || g,
       jsonb_set(jsonb_set(payload::jsonb, '{{data,contactId}}', to_jsonb((payload::jsonb #>> '{{data,contactId}}') || '-' || g)),
                 '{{data,email}}', to_jsonb('mem' || g || '.{run}@bench.example')),
       now(), 'pending', 0, now()
FROM webhook_events, generate_series(1, {count}) AS g WHERE id = {template}
"""  # noqa: E501


def measure(count: int, logs: Path) -> dict[str, Any]:
    # No periodic reconciliation: the backlog's contacts exist only in the events (not in Rankr's
    # sandbox), so one starting during a long drain would find them gone and queue their repair.
    settings = {
        "ghl_rate_limit": 10**6,
        "rankr_rate_limit": 10**6,
        "worker_poll_seconds": 0.5,
        "reconcile_interval_seconds": 0,
    }
    sandbox = {"ghl_rate_max": 10**9, "rankr_rate_max": 10**9}
    with world("postgres", logs / str(count), settings=settings, sandbox=sandbox) as here:
        here.sandbox.rankr.store.create_contact(
            {"email": f"template.{uuid.uuid4().hex[:6]}@bench.example", "firstName": "Memory",
             "lastName": "Template", "tags": ["bench"], "address": {"city": "Paris"}}
        )  # fmt: skip
        here.wait_delivered()
        [template] = query(here.database_url, "SELECT max(id) AS id FROM webhook_events")
        here.sandbox.ghl.apply_control({"webhooks_enabled": False})
        worker = here.workers(1)[0]
        here.settle(poll=0.2)
        time.sleep(2)
        idle = status_kib(worker.pid, "VmRSS")
        sql = BACKLOG.format(count=count, template=template["id"], run=uuid.uuid4().hex[:6])
        execute(here.database_url, " ".join(sql.split()))
        mark = here.sandbox.ghl.mark()
        began = time.monotonic()
        samples: list[int] = []
        while here.open_events() > 0:
            samples.append(status_kib(worker.pid, "VmRSS"))
            time.sleep(1)
        took = time.monotonic() - began
        peak = status_kib(worker.pid, "VmHWM")
        writes = sum(1 for r in here.calls("ghl", mark) if r.is_write)
        rankr_calls = len(here.calls("rankr", mark))
    return {
        "events": count,
        "idle RSS MiB": round(idle / 1024, 1),
        "peak RSS MiB": round(peak / 1024, 1),
        "peak / idle": round(peak / idle, 3),
        "RSS at half-time MiB": round(samples[len(samples) // 2] / 1024, 1) if samples else None,
        "drain s": round(took, 1),
        "events per s": round(count / took, 1),
        "ghl writes": writes,
        "rankr calls": rankr_calls,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[10_000, 30_000])
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    print(json.dumps([measure(count, logs) for count in args.events], indent=2))


if __name__ == "__main__":
    main()
