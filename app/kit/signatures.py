"""Webhook signatures: Standard Webhooks (Rankr) and GHL's Ed25519 / RSA-SHA256 signatures.

Both sides are here: ``verify_*`` for the service's intake and ``sign_*`` for the sandboxes and the
tests, so one piece of code defines each scheme. Verification always works on the raw body bytes and
compares in constant time; a verifier with no key or secret configured refuses every request rather
than "verifying" against an empty key.

Standard Webhooks: https://www.standardwebhooks.com/ - the signed content is
``{webhook-id}.{webhook-timestamp}.{body}``, HMAC-SHA256 keyed with the base64 part of ``whsec_...``,
sent as space-separated ``v1,<base64>`` entries. This is small enough to own: it lets one verifier
try several secrets (rotation) without parsing the JSON body, which the intake parses once itself.

GHL: ``x-ghl-signature`` is a base64 Ed25519 signature of the raw body; the legacy ``x-wh-signature``
is a base64 RSA PKCS#1 v1.5 SHA-256 signature of the raw body (docs/oauth/WebhookAuthentication.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

TOLERANCE = timedelta(minutes=5)


class SignatureError(Exception):
    """The request is not signed by a configured key or secret, or is outside the time window."""


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    """One Standard Webhooks secret, decoded from its ``whsec_`` form."""

    key: bytes

    @classmethod
    def parse(cls, text: str) -> WebhookSecret:
        raw = text.strip()
        if raw.startswith("whsec_"):
            raw = raw[len("whsec_") :]
        try:
            key = base64.b64decode(raw, validate=True)
        except binascii.Error as exc:
            raise ValueError("a webhook secret must be 'whsec_' followed by base64") from exc
        if len(key) < 16:
            raise ValueError("a webhook secret must hold at least 16 bytes")
        return cls(key)


def _standard_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = b"%s.%s.%s" % (msg_id.encode(), timestamp.encode(), body)
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign_standard(secret: WebhookSecret, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one secret."""
    digest = _standard_signature(secret.key, msg_id, str(timestamp), body)
    return "v1," + base64.b64encode(digest).decode()


def check_timestamp(sent_at: datetime, now: datetime) -> None:
    """Refuse a delivery older or newer than the tolerance (replay protection)."""
    if abs(now - sent_at) > TOLERANCE:
        raise SignatureError("timestamp outside the 5-minute window")


def verify_standard(
    secrets: Sequence[WebhookSecret],
    msg_id: str | None,
    timestamp: str | None,
    signature_header: str | None,
    body: bytes,
    now: datetime,
) -> None:
    """Check a Standard Webhooks delivery against any of ``secrets``; raise SignatureError if none match."""
    if not secrets:
        raise SignatureError("no webhook secret is configured for this source")
    if not msg_id or not timestamp or not signature_header:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        sent_at = datetime.fromtimestamp(int(timestamp), tz=now.tzinfo)
    except (ValueError, OverflowError, OSError) as exc:
        raise SignatureError("webhook-timestamp is not a Unix time") from exc
    check_timestamp(sent_at, now)
    offered = []
    for entry in signature_header.split():
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            offered.append(base64.b64decode(value, validate=True))
        except binascii.Error:
            continue
    for secret in secrets:
        expected = _standard_signature(secret.key, msg_id, timestamp, body)
        # Every comparison runs in constant time; the loop leaks only how many entries were sent.
        if any(hmac.compare_digest(expected, candidate) for candidate in offered):
            return
    raise SignatureError("no signature matches a configured secret")


PublicKey = ed25519.Ed25519PublicKey | rsa.RSAPublicKey


def load_public_key(pem_or_path: str) -> PublicKey:
    """A PEM public key given as text or as the path of a file holding it."""
    text = pem_or_path.strip()
    if "-----BEGIN" not in text:
        text = Path(text).read_text(encoding="ascii")
    key = serialization.load_pem_public_key(text.encode("ascii"))
    if not isinstance(key, ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        raise ValueError("expected an Ed25519 or RSA public key")
    return key


def _decode_b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise SignatureError("signature is not base64") from exc


@dataclass(frozen=True, slots=True)
class GhlVerifier:
    """Verifies GHL webhook bodies by ``x-ghl-signature`` (Ed25519) or ``x-wh-signature`` (RSA)."""

    ed25519_key: ed25519.Ed25519PublicKey | None
    rsa_key: rsa.RSAPublicKey | None

    def verify(self, body: bytes, ghl_signature: str | None, wh_signature: str | None) -> None:
        # The newer Ed25519 header wins when both are present, as GHL recommends.
        if ghl_signature:
            if self.ed25519_key is None:
                raise SignatureError("no Ed25519 public key is configured for x-ghl-signature")
            try:
                self.ed25519_key.verify(_decode_b64(ghl_signature), body)
            except InvalidSignature as exc:
                raise SignatureError("x-ghl-signature does not match") from exc
            return
        if wh_signature:
            if self.rsa_key is None:
                raise SignatureError("no RSA public key is configured for x-wh-signature")
            try:
                self.rsa_key.verify(_decode_b64(wh_signature), body, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature as exc:
                raise SignatureError("x-wh-signature does not match") from exc
            return
        raise SignatureError("missing x-ghl-signature or x-wh-signature header")


def load_private_key(pem: str) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    if not isinstance(key, ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise ValueError("expected an Ed25519 or RSA private key")
    return key


def sign_ghl_ed25519(key: ed25519.Ed25519PrivateKey, body: bytes) -> str:
    """The ``x-ghl-signature`` header value."""
    return base64.b64encode(key.sign(body)).decode()


def sign_ghl_rsa(key: rsa.RSAPrivateKey, body: bytes) -> str:
    """The ``x-wh-signature`` header value."""
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
