"""Who is asking, and the shared parts every service needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xnatd.config import Settings
from xnatd.db.engine import Database


@dataclass(frozen=True)
class Actor:
    """An authenticated user (or the anonymous guest)."""

    username: str
    is_admin: bool = False

    @property
    def is_guest(self) -> bool:
        return self.username == "guest"


GUEST = Actor("guest")


@dataclass
class Context:
    settings: Settings
    db: Database
    # what a service starts on first use and keeps for the process (the zip-import helpers)
    resources: dict[str, Any] = field(default_factory=dict)


# The site operator at the shell (``xnatd user ...``): a site administrator that is not a user.
SYSTEM = Actor("system", is_admin=True)
