"""Contact search for the GHL sandbox: POST /contacts/search and the deprecated GET /contacts/.

Pure functions over a list of contacts. POST /contacts/search (the "advanced" search) takes
``filters`` of ``{field, operator, value}`` or ``{group: AND|OR, filters}``, ``sort`` of
``{field, direction}``, and pages by ``page``/``pageLimit`` or by ``searchAfter`` (the
``searchAfter`` value each hit carries). Supported here: fields ``id``, ``email``, ``phone``,
``firstName``, ``lastName``, ``companyName``, ``tags``, ``dateAdded``, ``dateUpdated``; operators
``eq``, ``not_eq``, ``contains``, ``not_contains``, ``exists``, ``not_exists``, ``range`` (value
``{gt, gte, lt, lte}`` as ISO instants or epoch milliseconds). Anything else is refused with 422 so
a client never silently gets an unfiltered answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from app.sandbox.ghl.records import GhlContact
from app.sandbox.ghl.schemas import SearchFilter, SearchSort, parse_iso_instant

SORT_FIELDS = ("dateAdded", "dateUpdated", "firstName", "lastName", "email")
TEXT_FIELDS = ("id", "email", "phone", "firstName", "lastName", "companyName")
DATE_FIELDS = ("dateAdded", "dateUpdated")


class SearchError(ValueError):
    """A filter or sort the sandbox does not understand (answered with 422)."""


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _text(contact: GhlContact, field: str) -> str | None:
    if field == "id":
        return contact.id
    if field == "email":
        return contact.email_lower
    return contact.text.get(field)


def _date(contact: GhlContact, field: str) -> datetime:
    return contact.date_added if field == "dateAdded" else contact.date_updated


def _instant(value: Any, field: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str) and (parsed := parse_iso_instant(value)) is not None:
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise SearchError(f"filters: {field} range bounds must be ISO 8601 instants or epoch milliseconds")


def _compile_leaf(item: SearchFilter) -> Callable[[GhlContact], bool]:
    field, operator, value = item.field, item.operator, item.value
    if not field or not operator:
        raise SearchError("filters: each filter needs a field and an operator (or a group)")
    if field in DATE_FIELDS:
        if operator != "range" or not isinstance(value, dict):
            raise SearchError(f"filters: {field} supports the range operator with {{gt, gte, lt, lte}}")
        bounds = {key: _instant(bound, field) for key, bound in value.items()}
        unknown = set(bounds) - {"gt", "gte", "lt", "lte"}
        if unknown:
            raise SearchError(f"filters: unknown range bound(s) {sorted(unknown)}")

        def in_range(contact: GhlContact) -> bool:
            at = _date(contact, field)
            return (
                ("gt" not in bounds or at > bounds["gt"])
                and ("gte" not in bounds or at >= bounds["gte"])
                and ("lt" not in bounds or at < bounds["lt"])
                and ("lte" not in bounds or at <= bounds["lte"])
            )

        return in_range
    if field == "tags":
        wanted = [str(v).lower() for v in (value if isinstance(value, list) else [value])]
        if operator in {"eq", "contains"}:
            return lambda c: any(tag in c.tags for tag in wanted)
        if operator in {"not_eq", "not_contains"}:
            return lambda c: not any(tag in c.tags for tag in wanted)
        if operator in {"exists", "not_exists"}:
            return lambda c: bool(c.tags) == (operator == "exists")
        raise SearchError(f"filters: operator {operator} is not supported for tags")
    if field not in TEXT_FIELDS:
        raise SearchError(f"filters: field {field} is not supported by the sandbox")
    if operator in {"exists", "not_exists"}:
        return lambda c: (_text(c, field) is not None) == (operator == "exists")
    needle = str(value).lower() if value is not None else ""
    if operator == "eq":
        return lambda c: (_text(c, field) or "").lower() == needle
    if operator == "not_eq":
        return lambda c: (_text(c, field) or "").lower() != needle
    if operator == "contains":
        return lambda c: needle in (_text(c, field) or "").lower()
    if operator == "not_contains":
        return lambda c: needle not in (_text(c, field) or "").lower()
    raise SearchError(f"filters: operator {operator} is not supported")


def compile_filters(
    filters: Sequence[SearchFilter] | None, group: str = "AND"
) -> Callable[[GhlContact], bool]:
    parts: list[Callable[[GhlContact], bool]] = []
    for item in filters or []:
        if item.group is not None:
            parts.append(compile_filters(item.filters, item.group))
        else:
            parts.append(_compile_leaf(item))
    if not parts:
        return lambda c: True
    if group == "OR":
        return lambda c: any(part(c) for part in parts)
    return lambda c: all(part(c) for part in parts)


def matches_query(contact: GhlContact, query: str | None) -> bool:
    """GHL's free-text ``query``: a case-insensitive substring of name, email, phone or company."""
    if not query:
        return True
    needle = query.strip().lower()
    haystack = [
        contact.name or "",
        contact.email_lower or "",
        contact.text.get("phone", ""),
        contact.text.get("companyName", ""),
    ]
    return any(needle in part.lower() for part in haystack)


def sort_key(sort: SearchSort) -> Callable[[GhlContact], tuple[Any, str]]:
    if sort.field not in SORT_FIELDS:
        raise SearchError(f"sort: field {sort.field} is not supported (use one of {', '.join(SORT_FIELDS)})")
    if sort.field in DATE_FIELDS:
        return lambda c: (epoch_ms(_date(c, sort.field)), c.id)
    return lambda c: ((_text(c, sort.field) or "").lower(), c.id)


def search(
    contacts: Sequence[GhlContact],
    *,
    query: str | None,
    filters: Sequence[SearchFilter] | None,
    sort: Sequence[SearchSort] | None,
    page: int | None,
    page_limit: int | None,
    search_after: list[Any] | None,
) -> tuple[list[tuple[GhlContact, list[Any]]], int]:
    """The page of hits (each with its ``searchAfter`` value) and the total number of matches."""
    predicate = compile_filters(filters)
    order = (sort or [SearchSort(field="dateAdded", direction="desc")])[0]
    key = sort_key(order)
    hits = [c for c in contacts if matches_query(c, query) and predicate(c)]
    hits.sort(key=key, reverse=order.direction == "desc")
    total = len(hits)
    limit = page_limit or 20
    if search_after:
        if len(search_after) != 2:
            raise SearchError("searchAfter must be the [sortValue, id] pair of the last hit")
        anchor = (search_after[0], str(search_after[1]))
        try:
            if order.direction == "desc":
                hits = [c for c in hits if key(c) < anchor]
            else:
                hits = [c for c in hits if key(c) > anchor]
        except TypeError as exc:
            raise SearchError("searchAfter does not match the sort field's type") from exc
        window = hits[:limit]
    else:
        start = ((page or 1) - 1) * limit
        window = hits[start : start + limit]
    return [(c, list(key(c))) for c in window], total
