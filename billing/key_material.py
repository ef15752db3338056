"""API key material: generation, keyed hashing, the server-side pepper. No database here."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from modelplex.billing.settings import BillingSettings

KEY_PREFIX = "mpx-"
DISPLAY_LENGTH = 12  # "mpx-" and the first 8 characters of the secret
_SECRET_BYTES = 32  # 256 bits of entropy, 43 url-safe characters
_MAX_KEY_LENGTH = 128


def new_key() -> str:
    """A fresh plaintext key: `mpx-` then 256 random bits, url-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def display_prefix(key: str) -> str:
    return key[:DISPLAY_LENGTH]


def looks_like_key(candidate: str) -> bool:
    """Cheap shape check so that garbage never reaches the database."""
    return candidate.startswith(KEY_PREFIX) and DISPLAY_LENGTH < len(candidate) <= _MAX_KEY_LENGTH


def key_hash(pepper: bytes, key: str) -> str:
    """HMAC-SHA256 of the key under the server's pepper: a stolen table alone cannot be checked."""
    return hmac.new(pepper, key.encode(), hashlib.sha256).hexdigest()


def load_pepper(settings: BillingSettings) -> bytes:
    """The configured pepper, or the local stack's: created once in `state_dir/key-pepper` (0600)."""
    if settings.key_pepper is not None:
        return settings.key_pepper.get_secret_value().encode()
    path = settings.state_dir / "key-pepper"
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
