"""Backfill (the first sync of records that exist on both sides) and reconciliation (repair of drift).

Both list contacts page by page into a staging table (so memory stays flat), decide per record what
to do, and hand every write to the worker as a synthetic inbox event, so backfill, reconciliation
and webhooks share one write path with the same guarantees (leases, audit, retries). Tasks and
notes follow their contacts: one survey event per linked contact (``app.sync.repair.ChildRepair``).
"""
