"""Enrichment: fill a contact's empty fields from what can be derived, never overwrite what is there.

A provider proposes values for a contact (``propose``); the ``Enricher`` keeps only those for fields
that are empty, in provider order (the first to propose a field wins), caches each provider's
answers for ``cache_hours``, and turns a provider's failure into a note: enrichment never blocks the
sync. Providers:

- ``LocalProvider`` derives locally: the company website from a business email's domain, the country
  from the phone's calling code, and first and last name (title-cased) from an email such as
  ``ada.lovelace@...`` when the contact has no name at all.
- ``HttpProvider`` asks an HTTP service (``enrichment.http.url``): POST of the contact's known
  fields as JSON, answered by a JSON object of field -> value; only the configured ``fields`` are
  taken. It keeps to its own budget (``requestsPerMinute``) and timeout.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from app.automation.config import Enrichment, HttpEnrichment
from app.kit.clock import Clock
from app.sync import mapping
from app.sync.mapping import Canonical

log = logging.getLogger(__name__)

FREE_MAIL = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com", "msn.com",
        "icloud.com", "me.com", "aol.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "mail.com",
        "yandex.com", "zoho.com",
    }
)  # fmt: skip
# E.164 calling codes -> ISO country (the most common country where a code is shared, e.g. +1 -> US).
CALLING_CODES = {
    "1": "US", "7": "RU", "20": "EG", "27": "ZA", "30": "GR", "31": "NL", "32": "BE", "33": "FR",
    "34": "ES", "36": "HU", "39": "IT", "40": "RO", "41": "CH", "43": "AT", "44": "GB", "45": "DK",
    "46": "SE", "47": "NO", "48": "PL", "49": "DE", "51": "PE", "52": "MX", "54": "AR", "55": "BR",
    "56": "CL", "57": "CO", "60": "MY", "61": "AU", "62": "ID", "63": "PH", "64": "NZ", "65": "SG",
    "66": "TH", "81": "JP", "82": "KR", "84": "VN", "86": "CN", "90": "TR", "91": "IN", "92": "PK",
    "234": "NG", "254": "KE", "351": "PT", "353": "IE", "358": "FI", "420": "CZ", "971": "AE",
    "972": "IL", "966": "SA",
}  # fmt: skip
# The contact fields a provider is shown.
INPUTS = ("email", "phone", "firstName", "lastName", "companyName", "website", "address.country")


class EnrichmentError(Exception):
    """A provider could not answer (its message says why)."""


class Provider(Protocol):
    name: str

    async def propose(self, contact: Mapping[str, Any]) -> Canonical:
        """Values for the contact's fields (canonical names); may include fields that are not empty."""
        ...


class LocalProvider:
    name = "local"

    async def propose(self, contact: Mapping[str, Any]) -> Canonical:
        found: Canonical = {}
        email = mapping.text(contact.get("email"))
        if email and "@" in email:
            local, domain = email.rsplit("@", 1)
            domain = domain.lower()
            if domain not in FREE_MAIL and "." in domain:
                found["website"] = f"https://{domain}"
            parts = [part for part in re.split(r"[._\-+]+", local) if part.isalpha()]
            if len(parts) >= 2 and not contact.get("firstName") and not contact.get("lastName"):
                found["firstName"], found["lastName"] = parts[0].title(), parts[-1].title()
        phone = mapping.text(contact.get("phone"))
        if phone and phone.startswith("+"):
            digits = "".join(ch for ch in phone if ch.isdigit())
            for size in (3, 2, 1):
                country = CALLING_CODES.get(digits[:size])
                if country:
                    found["address.country"] = country
                    break
        return found


class HttpProvider:
    name = "http"

    def __init__(self, config: HttpEnrichment) -> None:
        self._config = config
        self._spent: list[float] = []  # monotonic times of the requests of the last minute

    def _within_budget(self) -> bool:
        now = time.monotonic()
        self._spent = [at for at in self._spent if now - at < 60]
        if len(self._spent) >= self._config.requests_per_minute:
            return False
        self._spent.append(now)
        return True

    async def propose(self, contact: Mapping[str, Any]) -> Canonical:
        if not self._within_budget():
            raise EnrichmentError(f"over its budget of {self._config.requests_per_minute} requests a minute")
        known = {name: contact[name] for name in INPUTS if contact.get(name) not in (None, "")}
        try:
            # A client per request: enrichment is rare (a budget of requests a minute), and nothing
            # stays open between them.
            async with httpx.AsyncClient(timeout=self._config.timeout_seconds) as http:
                answer = await http.post(str(self._config.url), json=known)
        except httpx.HTTPError as exc:
            raise EnrichmentError(f"{type(exc).__name__}: {exc}") from exc
        if answer.status_code != 200:
            raise EnrichmentError(f"answered {answer.status_code}")
        try:
            body = answer.json()
        except ValueError as exc:
            raise EnrichmentError("answered something that is not JSON") from exc
        if not isinstance(body, dict):
            raise EnrichmentError("answered JSON that is not an object")
        return {name: mapping.text(body[name]) for name in self._config.fields if name in body}


class Enricher:
    def __init__(self, providers: list[Provider], *, cache_for: timedelta, clock: Clock) -> None:
        self.providers = providers
        self._cache_for = cache_for
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[datetime, Canonical]] = {}

    @classmethod
    def from_config(cls, config: Enrichment, clock: Clock) -> Enricher | None:
        providers: list[Provider] = []
        if config.local:
            providers.append(LocalProvider())
        if config.http is not None:
            providers.append(HttpProvider(config.http))
        if not providers:
            return None
        return cls(providers, cache_for=timedelta(hours=config.cache_hours), clock=clock)

    async def fills(self, contact: Mapping[str, Any]) -> tuple[Canonical, list[str]]:
        """Values for the contact's empty fields, and the failures of providers that could not answer."""
        key = hashlib.sha256(json.dumps([contact.get(name) for name in INPUTS]).encode()).hexdigest()
        now = self._clock()
        result: Canonical = {}
        failures: list[str] = []
        for provider in self.providers:
            cached = self._cache.get((provider.name, key))
            if cached is not None and cached[0] > now:
                proposals = cached[1]
            else:
                try:
                    proposals = await provider.propose(contact)
                except EnrichmentError as exc:
                    log.warning("enrichment.failed", extra={"provider": provider.name, "error": str(exc)})
                    failures.append(f"{provider.name}: {exc}")
                    continue
                self._cache[(provider.name, key)] = (now + self._cache_for, proposals)
            for name, value in proposals.items():
                if value not in (None, "") and name not in result and contact.get(name) in (None, "", []):
                    result[name] = value
        return result, failures
