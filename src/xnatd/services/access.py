"""The one authorization function. Every service asks it before touching a project or its data.

Roles follow XNAT: Owners may do everything, including membership and settings; Members read,
create and update but do not delete; Collaborators read. Accessibility: ``private`` hides the
project from everyone else; ``protected`` lists and describes it to every logged-in user but hides
its data; ``public`` lets every logged-in user (and the guest, where the site allows guests) read
its data.

What a caller may not read does not exist for them: they get 404, with the same text as for an
object that really is missing, so names of private projects and subjects never leak. What they may
read but not change answers 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xnatd.errors import Forbidden, NotFound
from xnatd.services.context import Actor

DESCRIBE, READ, EDIT, DELETE, OWN = "describe", "read", "edit", "delete", "own"
ROLES = ("owner", "member", "collaborator")
_ALLOWED = {
    "owner": {DESCRIBE, READ, EDIT, DELETE, OWN},
    "member": {DESCRIBE, READ, EDIT},
    "collaborator": {DESCRIBE, READ},
}


def allowed(actor: Actor, project: Mapping[Any, Any], role: str | None, action: str) -> bool:
    if actor.is_admin:
        return True
    if role is not None and action in _ALLOWED.get(role, set()):
        return True
    level = project["accessibility"]
    if action in (DESCRIBE, READ) and level == "public":
        return True
    return action == DESCRIBE and level == "protected" and not actor.is_guest


def can_see(actor: Actor, project: Mapping[Any, Any], role: str | None) -> bool:
    """Whether the project shows up in listings at all (protected projects do, without their data)."""
    return allowed(actor, project, role, DESCRIBE)


def require(
    actor: Actor, project: Mapping[Any, Any], role: str | None, action: str, hidden: str | None = None
) -> None:
    """Raise unless ``actor`` may do ``action`` in ``project``.

    ``hidden`` is the not-found message to give when the caller may see the project but not the
    object asked for (a subject of a protected project): it must read exactly like a missing object.
    """
    if allowed(actor, project, role, action):
        return
    if not can_see(actor, project, role):
        raise NotFound(hidden or f"Project {project['id']} not found")
    if action == READ and hidden is not None:
        raise NotFound(hidden)
    raise Forbidden(
        f"User {actor.username} has insufficient privileges for this action on project {project['id']}"
    )
