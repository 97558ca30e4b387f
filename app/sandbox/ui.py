"""Shared pieces of the sandboxes' HTML pages: the template environment, form fields, page context.

Pages are server-rendered Jinja2 templates (``templates/``) with plain HTML forms and no external
assets. Each side's ``ui.py`` turns its records into ``FormField``s and rows, and turns submitted forms
into calls on its store, the same calls its API makes, so a person's edit causes the same webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.kit.clock import format_instant
from app.sandbox.side import SandboxSide

TEMPLATES_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class FormField:
    """One input of a form: ``kind`` is text, email, textarea, checkbox, datetime or select."""

    name: str
    label: str
    value: str = ""
    kind: str = "text"
    options: tuple[str, ...] = ()
    hint: str = ""
    checked: bool = False
    required: bool = False


@dataclass
class Row:
    """A listed record: its id, the cells shown, and (on detail pages) the forms acting on it."""

    id: str
    cells: list[tuple[str, str]]
    link: str | None = None
    fields: list[FormField] = field(default_factory=list)
    flag: bool = False  # a completed task


def datetime_local(value: datetime | None) -> str:
    """A UTC instant as an ``<input type=datetime-local>`` value."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def parse_datetime_local(text: str) -> datetime | None:
    """A ``datetime-local`` (or ISO) form value, read as UTC; None when empty or unreadable."""
    text = text.strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def split_tags(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def parse_pairs(text: str) -> dict[str, str]:
    """``key=value`` lines (custom fields) as a dict; lines without ``=`` are ignored."""
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            pairs[key.strip()] = value.strip()
    return pairs


def form_text(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


class UiKit:
    """Renders one side's pages; owns its Jinja2 environment (no module-level state)."""

    def __init__(self, side: SandboxSide, title: str) -> None:
        self.side = side
        self.title = title
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES_DIR),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    @staticmethod
    def base(request: Request) -> str:
        """The side's URL root as the browser sees it (e.g. ``/sandbox/ghl``)."""
        root: str = request.scope.get("root_path", "")
        return root.rstrip("/")

    def render(self, request: Request, template: str, **context: Any) -> HTMLResponse:
        base = self.base(request)
        sandbox_root = base[: -len(self.side.name) - 1] if base.endswith("/" + self.side.name) else base
        deliveries = list(reversed(self.side.deliveries()))[:25]
        page = self.env.get_template(template).render(
            title=self.title,
            side=self.side.name,
            base=base,
            sandbox_root=sandbox_root,
            message=request.query_params.get("msg", ""),
            error=request.query_params.get("error", ""),
            settings=self.side.control_settings(),
            webhook_url=self.side.webhook_url,
            pending=self.side.dispatcher.pending(self.side.name),
            deliveries=[
                {
                    "at": format_instant(d.created_at),
                    "type": d.event_type,
                    "record": d.record_id,
                    "state": d.state,
                    "attempts": ", ".join(
                        str(a.status) if a.status is not None else (a.error or "error").split(":")[0]
                        for a in d.attempts
                    ),
                }
                for d in deliveries
            ],
            **context,
        )
        return HTMLResponse(page)

    def redirect(self, request: Request, path: str, *, msg: str = "", error: str = "") -> RedirectResponse:
        """303 to ``path`` under the side's root, carrying a notice for the next page."""
        query = urlencode({k: v for k, v in (("msg", msg), ("error", error)) if v})
        url = f"{self.base(request)}{path}" + (f"?{query}" if query else "")
        return RedirectResponse(url, status_code=303)

    async def apply_control_form(self, request: Request) -> RedirectResponse:
        """The settings form on every page: rate limit, faults and webhook switches."""
        form = await request.form()
        changes: dict[str, Any] = {"webhooks_enabled": form.get("webhooks_enabled") == "on"}
        numbers = {
            "rate_max": int,
            "rate_window_seconds": float,
            "daily_limit": int,
            "error_rate": float,
            "error_status": int,
            "latency_ms": float,
            "webhook_drop_rate": float,
        }
        try:
            for key, cast in numbers.items():
                text = form_text(form, key).strip()
                if text:
                    changes[key] = cast(text)
        except ValueError:
            return self.redirect(request, "/ui", error="Settings must be numbers.")
        for key in ("error_rate", "webhook_drop_rate"):
            if key in changes and not 0 <= changes[key] <= 1:
                return self.redirect(request, "/ui", error=f"{key} must be between 0 and 1.")
        if "error_status" in changes and not 400 <= changes["error_status"] <= 599:
            return self.redirect(request, "/ui", error="error_status must be between 400 and 599.")
        self.side.apply_control(changes)
        return self.redirect(request, "/ui", msg="Settings saved.")
