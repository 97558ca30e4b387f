"""The sandboxes' HTML pages: template environment, form fields, and the routes both sides share.

Pages are server-rendered Jinja2 templates (``templates/``) with plain HTML forms and no external
assets. ``contact_ui_router`` serves the same pages and forms on both sides: the contact list, a
contact's page with its tasks and notes, and the settings. Each side's ``ui.py`` supplies a
``ContactForms``: its records as ``FormField``s and rows, and its submitted forms turned into calls on
its store, the same calls its API makes, so a person's edit causes the same webhooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from app.kit.clock import format_instant
from app.problems import problem_response
from app.sandbox.side import SandboxSide
from app.sandbox.store import ContactStore, RecordNotFound

TEMPLATES_DIR = Path(__file__).parent / "templates"

StoreT = TypeVar("StoreT", bound=ContactStore[Any])


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


@dataclass
class Section:
    """A list on the contacts page beside the contacts (e.g. GHL's custom fields), with its form."""

    title: str
    rows: list[Row]
    action: str  # under the side's root
    fields: list[FormField]
    button: str
    empty: str


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


def tag_and_custom_inputs(
    tags: Sequence[str], custom: Mapping[str, object], key_word: str
) -> list[FormField]:
    """A contact form's tags (comma-separated) and custom fields (one ``{key_word}=value`` a line)."""
    return [
        FormField("tags", "Tags", ", ".join(tags), hint="comma-separated"),
        FormField(
            "customFields",
            "Custom fields",
            "\n".join(f"{k}={v}" for k, v in custom.items()),
            kind="textarea",
            hint=f"one {key_word}=value a line",
        ),
    ]


def custom_field_changes(form: Any, current: Mapping[str, object]) -> dict[str, str | None]:
    """The custom fields of a contact form: each line's value, and None for a key of ``current`` left out."""
    changes: dict[str, str | None] = dict(parse_pairs(form_text(form, "customFields")))
    for key in current:
        if key not in changes:
            changes[key] = None
    return changes


def form_text(form: Any, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def optional_text(form: Any, name: str) -> str | None:
    """The field's text trimmed; None when it is blank."""
    return form_text(form, name).strip() or None


FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class NotAForm(Exception):
    """A POST to a page's form whose body is not a form: read as one, it would be an empty form."""


async def forms_only(request: Request) -> None:
    """Refuse a POST whose body is something other than a form (JSON, say), instead of saving a
    blank record from it. A POST without a body (a delete button) is a form with no fields."""
    if request.method != "POST":
        return
    content_type = request.headers.get("content-type")
    if content_type is None:
        if await request.body():
            raise NotAForm("a form's body needs a Content-Type: application/x-www-form-urlencoded")
        return
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type not in FORM_MEDIA_TYPES:
        raise NotAForm(f"this is an HTML form: send {' or '.join(FORM_MEDIA_TYPES)}, not {media_type}")


def _not_a_form(_request: Request, exc: NotAForm) -> JSONResponse:
    return problem_response(415, "Unsupported Media Type", str(exc))


class FormError(Exception):
    """A submitted form that cannot be saved as it is; the message is shown on the next page."""


def note_text(form: Any) -> str:
    """The text of a note form, which a note cannot be without."""
    body = form_text(form, "body").strip()
    if not body:
        raise FormError("A note needs a text.")
    return body


def contact_path(contact_id: str) -> str:
    """A contact's page, under the side's root."""
    return f"/ui/contacts/{contact_id}"


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

    def no_contact(self, request: Request, contact_id: str) -> RedirectResponse:
        return self.redirect(request, "/ui", error=f"No contact {contact_id}.")

    def after_change(
        self,
        request: Request,
        contact_id: str,
        change: Callable[[], object],
        done: str,
        *,
        of_record: bool = False,
    ) -> RedirectResponse:
        """Make a change asked for on a contact's page: back to the page with ``done``, or with why not.

        A refused form (``FormError``) is told on the contact's page. A missing contact sends to the
        contact list, except for a change of one of its tasks or notes (``of_record``): then the store's
        words for what is missing are told on the contact's page.
        """
        page = contact_path(contact_id)
        try:
            change()
        except FormError as exc:
            return self.redirect(request, page, error=str(exc))
        except RecordNotFound as exc:
            if of_record:
                return self.redirect(request, page, error=str(exc))
            return self.no_contact(request, contact_id)
        return self.redirect(request, page, msg=done)

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


class ContactForms(ABC, Generic[StoreT]):
    """One side's contacts as pages, and its forms as calls on its store (the calls its API makes).

    The methods taking a form raise ``FormError`` for a form they cannot save, and let the store's
    ``RecordNotFound`` through. Deleting goes straight to the store.
    """

    def __init__(self, store: StoreT) -> None:
        self.store = store

    @abstractmethod
    def contact_rows(self) -> list[Row]:
        """Every contact for the list page, newest first (``contact_ui_router`` links them)."""

    def sections(self) -> list[Section]:
        """Lists shown below the contacts, each with a form adding to it (none by default)."""
        return []

    @abstractmethod
    def new_contact_fields(self) -> list[FormField]:
        """The fields of the "New contact" form."""

    @abstractmethod
    def page_context(self, contact_id: str) -> dict[str, Any]:
        """What ``contact.html`` shows of the contact (RecordNotFound when there is none)."""

    @abstractmethod
    def create_contact(self, form: FormData) -> str:
        """Create a contact from the form; its id."""

    @abstractmethod
    def update_contact(self, contact_id: str, form: FormData) -> None:
        """Save the contact form (every field: an emptied one is cleared)."""

    @abstractmethod
    def create_task(self, contact_id: str, form: FormData) -> None: ...

    @abstractmethod
    def update_task(self, contact_id: str, task_id: str, form: FormData) -> None: ...

    @abstractmethod
    def set_task_completed(self, contact_id: str, task_id: str, completed: bool) -> None:
        """Complete the task, or reopen it."""

    @abstractmethod
    def create_note(self, contact_id: str, form: FormData) -> None: ...

    @abstractmethod
    def update_note(self, contact_id: str, note_id: str, form: FormData) -> None: ...


def contact_ui_router(kit: UiKit, forms: ContactForms[Any]) -> APIRouter:
    """The pages under ``/{ghl|rankr}/ui``: contacts, their tasks and notes, settings and reset.

    Every POST under it must carry a form (``forms_only``: 415 otherwise)."""
    router = APIRouter(prefix="/ui", dependencies=[Depends(forms_only)])
    kit.side.on_error(NotAForm, _not_a_form)
    store = forms.store

    @router.get("", response_class=HTMLResponse)
    async def index(request: Request) -> HTMLResponse:
        base = kit.base(request)
        rows = forms.contact_rows()
        for row in rows:
            row.link = f"{base}{contact_path(row.id)}"
        return kit.render(
            request,
            "index.html",
            rows=rows,
            contact_fields=forms.new_contact_fields(),
            sections=forms.sections(),
        )

    @router.post("/contacts")
    async def create_contact(request: Request) -> RedirectResponse:
        try:
            contact_id = forms.create_contact(await request.form())
        except FormError as exc:
            return kit.redirect(request, "/ui", error=str(exc))
        return kit.redirect(request, contact_path(contact_id), msg="Contact created.")

    @router.get("/contacts/{contact_id}", response_class=HTMLResponse, response_model=None)
    async def contact(request: Request, contact_id: str) -> HTMLResponse | RedirectResponse:
        try:
            context = forms.page_context(contact_id)
        except RecordNotFound:
            return kit.no_contact(request, contact_id)
        return kit.render(request, "contact.html", contact_id=contact_id, **context)

    @router.post("/contacts/{contact_id}")
    async def update_contact(request: Request, contact_id: str) -> RedirectResponse:
        form = await request.form()
        return kit.after_change(
            request, contact_id, lambda: forms.update_contact(contact_id, form), "Contact saved."
        )

    @router.post("/contacts/{contact_id}/delete")
    async def delete_contact(request: Request, contact_id: str) -> RedirectResponse:
        try:
            store.delete_contact(contact_id)
        except RecordNotFound:
            return kit.no_contact(request, contact_id)
        return kit.redirect(request, "/ui", msg="Contact deleted.")

    _add_record_forms(router, kit, "task", forms.create_task, forms.update_task, store.delete_task)
    _add_record_forms(router, kit, "note", forms.create_note, forms.update_note, store.delete_note)

    @router.post("/contacts/{contact_id}/tasks/{task_id}/complete")
    async def complete_task(request: Request, contact_id: str, task_id: str) -> RedirectResponse:
        completed = form_text(await request.form(), "completed") != "false"
        return kit.after_change(
            request,
            contact_id,
            lambda: forms.set_task_completed(contact_id, task_id, completed),
            "Task completed." if completed else "Task reopened.",
            of_record=True,
        )

    @router.post("/control")
    async def control(request: Request) -> RedirectResponse:
        return await kit.apply_control_form(request)

    @router.post("/reset")
    async def reset(request: Request) -> RedirectResponse:
        kit.side.reset()
        return kit.redirect(request, "/ui", msg="Sandbox reset.")

    return router


def _add_record_forms(
    router: APIRouter,
    kit: UiKit,
    kind: str,
    create: Callable[[str, FormData], object],
    update: Callable[[str, str, FormData], object],
    delete: Callable[[str, str], object],
) -> None:
    """The add, save and delete forms of one kind of a contact's records ("task", "note")."""
    name = kind.capitalize()
    id_param = f"{kind}_id"
    collection = f"/contacts/{{contact_id}}/{kind}s"
    one = f"{collection}/{{{id_param}}}"

    @router.post(collection)
    async def add(request: Request, contact_id: str) -> RedirectResponse:
        form = await request.form()
        return kit.after_change(request, contact_id, lambda: create(contact_id, form), f"{name} added.")

    @router.post(one)
    async def save(request: Request, contact_id: str) -> RedirectResponse:
        record_id = request.path_params[id_param]
        form = await request.form()
        return kit.after_change(
            request, contact_id, lambda: update(contact_id, record_id, form), f"{name} saved.", of_record=True
        )

    @router.post(f"{one}/delete")
    async def remove(request: Request, contact_id: str) -> RedirectResponse:
        record_id = request.path_params[id_param]
        return kit.after_change(
            request, contact_id, lambda: delete(contact_id, record_id), f"{name} deleted.", of_record=True
        )
