"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256) with key rotation, and signed expiring blobs.

``TokenCipher(keys)``: the first key encrypts, every key decrypts (``MultiFernet``), so a new key is
put first and the old ones stay listed until every stored value was re-encrypted (``rotate``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class UnreadableSecret(ValueError):
    """A stored value none of the configured keys can decrypt (wrong key, tampered, or expired)."""


def new_key() -> str:
    return Fernet.generate_key().decode()


def parse_keys(text: str) -> list[str]:
    """Comma-separated Fernet keys (32 url-safe base64 bytes each); a malformed one raises ValueError."""
    keys = [part.strip() for part in text.split(",") if part.strip()]
    if not keys:
        raise ValueError("no key given")
    for number, key in enumerate(keys, start=1):
        try:
            if len(base64.urlsafe_b64decode(key.encode())) != 32:
                raise ValueError
        except (ValueError, binascii.Error) as exc:
            raise ValueError(
                f"key {number} is not a Fernet key (32 url-safe base64-encoded bytes); "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'"
            ) from exc
    return keys


class TokenCipher:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._newest = Fernet(keys[0].encode())
        self._all = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, plain: str) -> str:
        return self._all.encrypt(plain.encode()).decode()

    def decrypt(self, stored: str, *, ttl: int | None = None) -> str:
        try:
            if ttl is None:
                return self._all.decrypt(stored.encode()).decode()
            return self._all.decrypt(stored.encode(), ttl=ttl).decode()
        except (InvalidToken, ValueError) as exc:
            raise UnreadableSecret("the stored value cannot be decrypted with the configured keys") from exc

    def is_current(self, stored: str) -> bool:
        """True when ``stored`` is encrypted with the newest key."""
        try:
            self._newest.decrypt(stored.encode())
        except (InvalidToken, ValueError):
            return False
        return True

    def rotate(self, stored: str) -> str:
        """``stored`` re-encrypted with the newest key."""
        try:
            return self._all.rotate(stored.encode()).decode()
        except (InvalidToken, ValueError) as exc:
            raise UnreadableSecret("the stored value cannot be decrypted with the configured keys") from exc
