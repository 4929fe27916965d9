"""Encryption of secrets at rest (team provider API keys): Fernet, with MultiFernet so keys
can be rotated — new values use the first key in FIELD_ENCRYPTION_KEYS, old ones still decrypt.

Outside production, with no keys configured, one key is derived from SECRET_KEY so `make run`
needs no setup; production settings require FIELD_ENCRYPTION_KEYS.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(Exception):
    """A stored secret could not be decrypted with any configured key."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if not keys:
        derived = base64.urlsafe_b64encode(hashlib.sha256(f"fields:{secret_key}".encode()).digest())
        keys = (derived.decode(),)
    return MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS), settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with the current keys."
        ) from exc


def rotate(token: str) -> str:
    """Return the token re-encrypted with the first (newest) key."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            "A stored secret cannot be decrypted with the current keys."
        ) from exc


def mask(value: str) -> str:
    """Return a secret as users may see it: only its last four characters."""
    return f"••••{value[-4:]}" if len(value) > 8 else "••••"
