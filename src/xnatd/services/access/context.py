"""Who is asking, and the shared parts every service needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xnatd.config import Settings
from xnatd.db.engine import Database


@dataclass(frozen=True)
class Actor:
    """An authenticated user (or the anonymous guest), and how the request proved it.

    ``token`` is the alias of the alias token the caller logged in with (as Basic credentials, or
    through a login session opened with them): such a caller may use the data but not change the
    account (password, e-mail, roles) nor issue more tokens. ``session_id`` is the login session the
    request came with, so a password change can end the user's other sessions but not this one.
    """

    username: str
    is_admin: bool = False
    token: str | None = None
    session_id: str | None = None

    @property
    def is_guest(self) -> bool:
        return self.username == "guest"

    @property
    def by_token(self) -> bool:
        return self.token is not None


GUEST = Actor("guest")


@dataclass
class Context:
    settings: Settings
    db: Database
    # what a service starts on first use and keeps for the process (the zip-import helpers)
    resources: dict[str, Any] = field(default_factory=dict)


# The site operator at the shell (``xnatd user ...``): a site administrator that is not a user.
SYSTEM = Actor("system", is_admin=True)
