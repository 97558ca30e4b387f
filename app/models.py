"""Every feature's ORM models, imported so that Alembic and ``alembic check`` see the whole schema."""

from app.automation.models import RuleRun
from app.backfill.models import StagedContact, SyncJob
from app.connections.models import Connection, ConnectionVerification, InstallState, RateBudget
from app.console.models import Reveal
from app.db import Base
from app.inbox.models import WebhookEvent
from app.settings_store.models import SettingsVersion
from app.sync.models import AuditEntry, Link

__all__ = [
    "AuditEntry",
    "Base",
    "Connection",
    "ConnectionVerification",
    "InstallState",
    "Link",
    "RateBudget",
    "Reveal",
    "RuleRun",
    "SettingsVersion",
    "StagedContact",
    "SyncJob",
    "WebhookEvent",
]
