"""Password and secret hashing.

Passwords use argon2id (slow on purpose). Because pyxnat and curl scripts send Basic credentials
on every request, a successful verification is remembered for a short while, keyed by a fast
salted digest of the credentials, so a million ``curl -u`` calls do not each pay for argon2.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2id with OWASP's smaller recommended profile (19 MiB, 2 passes): the library's default of
# 64 MiB per check doubled the server's memory during a login, with large downloads running beside it.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Checked against when a user name is unknown, so that answer takes as long as a wrong password.
DUMMY_HASH = _hasher.hash("not a password of anyone")
_CACHE_SECONDS = 300.0
_cache: dict[str, float] = {}
_lock = threading.Lock()
_salt = os.urandom(16)


def weakness(password: str, username: str, min_length: int) -> str | None:
    """Why ``password`` may not be a user's new password, or None. The one rule for every way a
    password is set: creating a user and changing a password, over REST, on the web pages and with
    ``xnatd user`` (the first ``admin``'s, from the settings, is the operator's own choice)."""
    if not password:
        return "The password is empty"
    if not password.strip():
        return "The password is only spaces"
    if len(password) < min_length:
        return f"The password is too short: at least {min_length} characters"
    if password.casefold() == username.casefold():
        return "The password may not be the user name"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    key = hashlib.blake2b(stored_hash.encode() + b"\0" + password.encode(), key=_salt).hexdigest()
    now = time.monotonic()
    with _lock:
        expiry = _cache.get(key)
        if expiry is not None and expiry > now:
            return True
    try:
        ok = _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if ok:
        with _lock:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[key] = now + _CACHE_SECONDS
    return bool(ok)


def new_token(nbytes: int = 24) -> str:
    return secrets.token_hex(nbytes).upper()


def secret_digest(secret: str) -> str:
    """Alias-token secrets are long random strings: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
