"""TokenCipher: the first key encrypts, every key decrypts, rotation re-encrypts; bad keys are named."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from app.kit.crypto import TokenCipher, UnreadableSecret, parse_keys


def key() -> str:
    return Fernet.generate_key().decode()


def test_old_keys_decrypt_and_rotation_moves_values_to_the_newest_key() -> None:
    old, new = key(), key()
    stored = TokenCipher([old]).encrypt("secret-value")
    both = TokenCipher([new, old])
    assert both.decrypt(stored) == "secret-value"
    assert not both.is_current(stored)
    rotated = both.rotate(stored)
    assert both.is_current(rotated)
    assert TokenCipher([new]).decrypt(rotated) == "secret-value"
    with pytest.raises(UnreadableSecret):
        TokenCipher([new]).decrypt(stored)


def test_tampered_or_expired_values_are_unreadable() -> None:
    cipher = TokenCipher([key()])
    stored = cipher.encrypt("x")
    with pytest.raises(UnreadableSecret):
        cipher.decrypt(stored[:-4] + "AAAA")
    with pytest.raises(UnreadableSecret):
        cipher.decrypt(stored, ttl=-1)


@pytest.mark.parametrize("text", ["", "short", "a,b", f"{Fernet.generate_key().decode()},nope"])
def test_malformed_keys_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"key"):
        parse_keys(text)
