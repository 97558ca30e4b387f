"""Whether a Rankr custom field can be mapped onto a GHL custom field, judged from their types.

Rankr declares no types: a key's kind is read from the values its contacts carry (JSON numbers,
booleans, text; text that is all ISO dates counts as a date). GHL declares a ``dataType`` per field.
Values are written to GHL as text (docs/mapping.md), so GHL's free-text fields take anything; the
others take only what they can hold, and a mapping that cannot hold is refused with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

Value = str | float | bool

TEXT_TYPES = frozenset({"TEXT", "LARGE_TEXT"})
NUMBER_TYPES = frozenset({"NUMERICAL", "MONETORY"})
OPTION_TYPES = frozenset({"SINGLE_OPTIONS", "MULTIPLE_OPTIONS", "RADIO", "CHECKBOX"})
# Fields whose values are files or lists of labelled boxes: no single text value fills them.
UNWRITABLE_TYPES = frozenset({"FILE_UPLOAD", "TEXTBOX_LIST", "SIGNATURE"})
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,}$")


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str = ""


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text[:10])
    except ValueError:
        return False
    return True


def kind_of(samples: Sequence[Value]) -> str:
    """The kind a Rankr key's sample values show: number, yes/no, date, text, or unknown (no value)."""
    if not samples:
        return "unknown"
    if all(isinstance(v, bool) for v in samples):
        return "yes/no"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in samples):
        return "number"
    if all(isinstance(v, str) and _is_date(v) for v in samples):
        return "date"
    return "text"


def _shown(value: Value) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value).lower()


def check(
    rankr_key: str, samples: Sequence[Value], ghl_name: str, data_type: str, options: Sequence[str] = ()
) -> Verdict:
    """Can the values of Rankr's ``rankr_key`` be written to GHL's field ``ghl_name``?"""
    if data_type in TEXT_TYPES:
        return Verdict(True)
    target = f"GHL '{ghl_name}' is a {data_type} field"
    if data_type in UNWRITABLE_TYPES:
        return Verdict(False, f"{target}: it holds files or labelled lists, not a value from Rankr")
    if not samples:
        return Verdict(
            False,
            f"no Rankr contact carries a value for '{rankr_key}' yet, so it cannot be shown to fit {target}; "
            "map it onto a text field, or map it once contacts carry it",
        )
    for value in samples:
        text = str(value).lower() if isinstance(value, bool) else str(value)
        problem = None
        if data_type in NUMBER_TYPES and (isinstance(value, bool) or not _NUMBER.match(text)):
            problem = "not a number"
        elif data_type == "DATE" and (not isinstance(value, str) or not _is_date(value)):
            problem = "not a date (YYYY-MM-DD)"
        elif data_type == "EMAIL" and not _EMAIL.match(text):
            problem = "not an email address"
        elif data_type == "PHONE" and not _PHONE.match(text):
            problem = "not a phone number"
        elif data_type in OPTION_TYPES and text not in options:
            problem = f"not one of its options ({', '.join(options) or 'none'})"
        if problem is not None:
            return Verdict(False, f"Rankr '{rankr_key}' holds {_shown(value)}, {problem}: {target}")
    return Verdict(True)
