"""The one authorization function. Every service asks it before touching a project's data.

Roles follow XNAT: Owners may do everything, Members read/create/update, Collaborators read.
Accessibility: ``private`` hides the project from non-members; ``protected`` lists it but hides its
data; ``public`` gives everyone read access. A caller who may not read is told "not found", so
listings and errors leak nothing about what exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xnatd.errors import Forbidden, NotFound
from xnatd.services.context import Actor

READ, EDIT, DELETE, OWN = "read", "edit", "delete", "own"
_ALLOWED = {
    "owner": {READ, EDIT, DELETE, OWN},
    "member": {READ, EDIT},
    "collaborator": {READ},
}


def allowed(actor: Actor, project: Mapping[Any, Any], role: str | None, action: str) -> bool:
    if actor.is_admin:
        return True
    if role is not None and action in _ALLOWED.get(role, set()):
        return True
    return action == READ and project["accessibility"] == "public"


def can_see(actor: Actor, project: Mapping[Any, Any], role: str | None) -> bool:
    """Whether the project shows up in listings (protected projects do, without their data)."""
    return allowed(actor, project, role, READ) or project["accessibility"] == "protected"


def require(actor: Actor, project: Mapping[Any, Any], role: str | None, action: str) -> None:
    if allowed(actor, project, role, action):
        return
    if not allowed(actor, project, role, READ) and project["accessibility"] == "private":
        raise NotFound(f"Project {project['id']} not found")
    raise Forbidden(
        f"User {actor.username} has insufficient privileges for this action on project {project['id']}"
    )
