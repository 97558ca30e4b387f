"""Webhook signatures: Standard Webhooks (Rankr) and GHL's Ed25519 / RSA schemes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from app.integrations.ghl import keys as ghl_keys
from app.kit.signatures import (
    GhlVerifier,
    SignatureError,
    WebhookSecret,
    load_private_key,
    load_public_key,
    sign_ghl_ed25519,
    sign_ghl_rsa,
    sign_standard,
    verify_standard,
)
from app.sandbox import keys

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
BODY = b'{"type":"contact.created"}'
SECRET = WebhookSecret.parse(keys.RANKR_WEBHOOK_SECRET)
OTHER = WebhookSecret.parse("whsec_" + base64.b64encode(b"another-secret-of-16+bytes").decode())


def headers(secret: WebhookSecret = SECRET, at: datetime = NOW, msg_id: str = "msg_1", body: bytes = BODY):
    stamp = int(at.timestamp())
    return msg_id, str(stamp), sign_standard(secret, msg_id, stamp, body)


def test_standard_signature_verifies_with_any_configured_secret() -> None:
    msg_id, stamp, signature = headers()
    verify_standard([OTHER, SECRET], msg_id, stamp, signature, BODY, NOW)


def test_standard_signature_accepts_one_match_among_several_sent() -> None:
    msg_id, stamp, signature = headers()
    _, _, other = headers(OTHER)
    verify_standard([SECRET], msg_id, stamp, f"{other} v1,garbage== {signature}", BODY, NOW)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong secret", "no signature matches"),
        ("tampered body", "no signature matches"),
        ("other message id", "no signature matches"),
        ("six minutes old", "outside the 5-minute window"),
        ("six minutes ahead", "outside the 5-minute window"),
        ("no secret configured", "no webhook secret is configured"),
        ("missing headers", "missing webhook-id"),
        ("not a unix time", "not a Unix time"),
        ("unknown version only", "no signature matches"),
    ],
)
def test_standard_signature_refusals(case: str, expected: str) -> None:
    msg_id, stamp, signature = headers()
    secrets = [SECRET]
    body = BODY
    if case == "wrong secret":
        secrets = [OTHER]
    elif case == "tampered body":
        body = BODY + b" "
    elif case == "other message id":
        msg_id = "msg_2"
    elif case == "six minutes old":
        msg_id, stamp, signature = headers(at=NOW - timedelta(minutes=6))
    elif case == "six minutes ahead":
        msg_id, stamp, signature = headers(at=NOW + timedelta(minutes=6))
    elif case == "no secret configured":
        secrets = []
    elif case == "missing headers":
        signature = ""
    elif case == "not a unix time":
        stamp = "yesterday"
    elif case == "unknown version only":
        signature = signature.replace("v1,", "v2,")
    with pytest.raises(SignatureError, match=expected):
        verify_standard(secrets, msg_id, stamp, signature, body, NOW)


def test_webhook_secret_parsing_rejects_junk() -> None:
    with pytest.raises(ValueError, match="base64"):
        WebhookSecret.parse("whsec_not base64!")
    with pytest.raises(ValueError, match="16 bytes"):
        WebhookSecret.parse("whsec_" + base64.b64encode(b"short").decode())


def sandbox_verifier() -> GhlVerifier:
    ed, rsa = load_public_key(keys.GHL_ED25519_PUBLIC_PEM), load_public_key(keys.GHL_RSA_PUBLIC_PEM)
    return GhlVerifier(ed25519_key=ed, rsa_key=rsa)  # type: ignore[arg-type]


def test_ghl_ed25519_and_rsa_signatures_verify() -> None:
    ed = load_private_key(keys.GHL_ED25519_PRIVATE_PEM)
    rsa = load_private_key(keys.GHL_RSA_PRIVATE_PEM)
    verifier = sandbox_verifier()
    verifier.verify(BODY, sign_ghl_ed25519(ed, BODY), None)  # type: ignore[arg-type]
    verifier.verify(BODY, None, sign_ghl_rsa(rsa, BODY))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ghl", "wh", "expected"),
    [
        ("tampered", None, "x-ghl-signature does not match"),
        (None, "tampered", "x-wh-signature does not match"),
        (None, None, "missing x-ghl-signature"),
        ("%%%", None, "not base64"),
    ],
)
def test_ghl_signature_refusals(ghl: str | None, wh: str | None, expected: str) -> None:
    ed = load_private_key(keys.GHL_ED25519_PRIVATE_PEM)
    rsa = load_private_key(keys.GHL_RSA_PRIVATE_PEM)
    if ghl == "tampered":
        ghl = sign_ghl_ed25519(ed, BODY + b"x")  # type: ignore[arg-type]
    if wh == "tampered":
        wh = sign_ghl_rsa(rsa, BODY + b"x")  # type: ignore[arg-type]
    with pytest.raises(SignatureError, match=expected):
        sandbox_verifier().verify(BODY, ghl, wh)


def test_ghl_verifier_without_keys_refuses() -> None:
    ed = load_private_key(keys.GHL_ED25519_PRIVATE_PEM)
    with pytest.raises(SignatureError, match="no Ed25519 public key"):
        GhlVerifier(ed25519_key=None, rsa_key=None).verify(BODY, sign_ghl_ed25519(ed, BODY), None)  # type: ignore[arg-type]


def test_ghl_published_keys_load() -> None:
    assert load_public_key(ghl_keys.RSA_PUBLIC_KEY_PEM).key_size == 4096  # type: ignore[union-attr]
    load_public_key(ghl_keys.ED25519_PUBLIC_KEY_PEM)


def test_ghl_published_rsa_key_matches_the_official_docs(shared_dir) -> None:
    published = (shared_dir / "ghl/keys/x-wh-signature-rsa-public.pem").read_text().strip()
    assert ghl_keys.RSA_PUBLIC_KEY_PEM.strip() == published
    ed = (shared_dir / "ghl/keys/x-ghl-signature-ed25519-public.UNVERIFIED.pem").read_text().strip()
    assert ghl_keys.ED25519_PUBLIC_KEY_PEM.strip() == ed
