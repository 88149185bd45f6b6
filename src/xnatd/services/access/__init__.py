"""Who is asking and what they may do: logins and sessions, users, alias tokens, who sees which
projects, and the one authorization function every other service package asks before it touches a
project (its names are re-exported here: ``access.require(...)``)."""

from xnatd.services.access.authorization import (
    DELETE,
    DESCRIBE,
    EDIT,
    OWN,
    READ,
    ROLES,
    allowed,
    can_see,
    may_share_out,
    require,
    require_user,
)

__all__ = [
    "DELETE",
    "DESCRIBE",
    "EDIT",
    "OWN",
    "READ",
    "ROLES",
    "allowed",
    "auth",
    "can_see",
    "context",
    "may_share_out",
    "require",
    "require_user",
    "token_admin",
    "tokens",
    "users",
    "visibility",
]
