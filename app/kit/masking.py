"""Masking of personal data and secrets, for log lines and the audit trail shown to operators.

Two tools: ``mask_field(name, value)`` masks a value by what its field holds (an email keeps its first
letter and its top-level domain, a phone its last two digits, other personal text its first letter),
and ``scrub(text)`` masks what looks like an email, a phone number, a bearer token or a signing
secret anywhere in free text (error messages, URLs). Neither is reversible.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# Fields whose values identify a person or grant access: masked wherever they appear by name.
SECRET_KEYS = frozenset(
    {
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "secret",
        "client_secret",
        "password",
        "api_key",
        "signature",
    }
)
PERSONAL_KEYS = frozenset(
    {
        "email",
        "phone",
        "name",
        "firstname",
        "lastname",
        "fullname",
        "contactname",
        "companyname",
        "website",
        "address",
        "address1",
        "line1",
        "city",
        "postalcode",
    }
)
# Mapped fields shown as they are in the audit trail: labels and internal user ids, not personal data.
PLAIN_FIELDS = frozenset({"tags", "ownerId", "state", "country"})

_EMAIL = re.compile(r"[\w.+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)
# Seven or more digits, possibly separated by spaces, dots, dashes or brackets, optionally with +.
_PHONE = re.compile(r"(?<![\w-])(?:\+|%2B)?\(?\d(?:[\s().-]{0,2}\d){6,14}(?![\w-])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[\w.~+/=-]+", re.IGNORECASE)
_SECRET = re.compile(r"\b(whsec_|pit-|sk_|rk_)[\w+/=-]+")
_QUERY_SECRET = re.compile(
    r"((?:access_token|refresh_token|client_secret|token|code|password)=)[^&\s]+", re.IGNORECASE
)


def _canonical_key(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


_SECRETS = frozenset(_canonical_key(key) for key in SECRET_KEYS)
_SENSITIVE = _SECRETS | frozenset(_canonical_key(key) for key in PERSONAL_KEYS)


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
    return f"{local[:1]}{MASK}@{MASK}.{tld}" if tld else f"{local[:1]}{MASK}"


def mask_phone(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    return f"{MASK}{digits[-2:]}" if len(digits) > 4 else MASK


def mask_text(value: str) -> str:
    text = value.strip()
    return f"{text[:1]}{MASK}" if text else ""


def mask_field(name: str, value: Any) -> Any:
    """``value`` masked by what the field ``name`` holds (``None`` and empty stay as they are)."""
    if value is None or value == "" or name in PLAIN_FIELDS:
        return value
    if isinstance(value, dict):
        return {key: mask_field(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [mask_field(name, item) for item in value]
    text = str(value)
    key = _canonical_key(name)
    if key in _SECRETS:
        return MASK
    if "email" in key:
        return mask_email(text)
    if "phone" in key:
        return mask_phone(text)
    return mask_text(text)


def scrub(text: str) -> str:
    """Mask emails, phone numbers, bearer tokens and secrets found anywhere in ``text``."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _SECRET.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _EMAIL.sub(lambda m: mask_email(m.group(0).replace("%40", "@")), text)
    return _PHONE.sub(lambda m: m.group(0) if _DATE.match(m.group(0)) else mask_phone(m.group(0)), text)


def is_sensitive_key(name: str) -> bool:
    key = _canonical_key(name)
    return key in _SENSITIVE


def scrub_value(name: str, value: Any) -> Any:
    """A log field's value: masked whole when its name says it is sensitive, else scrubbed as text."""
    if is_sensitive_key(name):
        return MASK if _canonical_key(name) in _SECRETS else mask_field(name, value)
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: scrub_value(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(name, item) for item in value]
    return value
