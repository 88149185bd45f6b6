"""The one authorization function. Every service asks it before touching a project or its data.

Roles follow XNAT: Owners may do everything, including membership and settings; Members read,
create and update but do not delete; Collaborators read. Accessibility: ``private`` hides the
project from everyone else; ``protected`` lists and describes it to every logged-in user but hides
its data; ``public`` lets every logged-in user (and the guest, where the site allows guests) read
its data.

What a caller may not read does not exist for them: they get 404, with the same text as for an
object that really is missing, so names of private projects and subjects never leak. What they may
read but not change answers 403. The guest (no credentials, where the site allows guests) reads and
never writes: any change it asks for answers 401, before anything is looked up, so that answer says
nothing about what exists.

Sharing an object out of its project (``may_share_out``) follows XNAT's rule, where sharing is a
project feature that can be restricted to some of the project's groups: edit rights in the project
that owns the object, or, for its collaborators, the project's explicit leave
(``collaborator_sharing``); read access alone is not enough. Data of a public project is every
user's already, so anyone who reads it may share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xnatd.errors import Forbidden, NotFound, Unauthenticated
from xnatd.services.access.context import Actor

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


def may_share_out(actor: Actor, project: Mapping[Any, Any], role: str | None) -> bool:
    """Whether ``actor`` may share an object owned by ``project`` into another project."""
    if allowed(actor, project, role, EDIT) or project["accessibility"] == "public":
        return True
    return role == "collaborator" and bool(project["collaborator_sharing"])


def require_user(actor: Actor) -> None:
    """Changes are for logged-in users: the guest is asked to log in (401)."""
    if actor.is_guest:
        raise Unauthenticated("Log in to change anything")


def can_see(actor: Actor, project: Mapping[Any, Any], role: str | None) -> bool:
    """Whether the project shows up in listings at all (protected projects do, without their data)."""
    return allowed(actor, project, role, DESCRIBE)


def require(
    actor: Actor,
    project: Mapping[Any, Any],
    role: str | None,
    action: str,
    hidden: str | None = None,
    name: str | None = None,
) -> None:
    """Raise unless ``actor`` may do ``action`` in ``project``.

    ``hidden`` is the not-found message to give when the caller may see the project but not the
    object asked for (a subject of a protected project): it must read exactly like a missing object.
    ``name`` is the project as the caller named it, if they did (an alias stays an alias: a hidden
    project's answer must not tell its real ID).
    """
    if action not in (DESCRIBE, READ):
        require_user(actor)
    if allowed(actor, project, role, action):
        return
    if not can_see(actor, project, role):
        # a project the caller named answers as a project that does not exist; one they did not
        # name (the owner of an object asked for by ID) is not named: the object is not found
        raise NotFound(
            f"Project {name} not found" if name else hidden or f"Project {project['id']} not found"
        )
    if action == READ and hidden is not None:
        raise NotFound(hidden)
    raise Forbidden(
        f"User {actor.username} has insufficient privileges for this action on project {project['id']}"
    )
