"""The objects a search looks at, loaded once with their access check and linked to each other.

Every record is an object the caller may read: a project they may read, a subject or experiment
owned by or shared into such a project, a scan of such an experiment. A record shows the project
and label it has in its owning project when that project is readable, else in the first readable
project it is shared into, so a private project's name never appears in an answer.

Records are linked up (a scan to its session, subject and project) and down (a subject to its
experiments), so that a search of sessions can show subject fields and a search of subjects can
test session fields. Computed values (XNAT's display fields such as ``PROJECT_OWNERS`` or
``MR_COUNT``) are worked out on demand by ``Loader.fact``.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from xnatd.db import search as q
from xnatd.domain import types
from xnatd.domain.search_fields import EXPERIMENT, PROJECT, SCAN, SUBJECT
from xnatd.services.archive.listings import readable_project_ids, stamp
from xnatd.services.archive.records import field_values

_MANY = 500  # above this many IDs, load everything and drop the rest here (SQL parameter limits)


@dataclass
class Rec:
    kind: str
    xsi_type: str
    key: str
    row: Mapping[Any, Any]
    fields: dict[str, Any]
    places: list[tuple[str, str]]  # (project, label) where the caller sees it, shown one first
    up: dict[str, Rec] = field(default_factory=dict)
    down: dict[str, list[Rec]] = field(default_factory=dict)

    @property
    def project(self) -> str:
        return self.places[0][0] if self.places else ""

    @property
    def label(self) -> str:
        return self.places[0][1] if self.places else ""


class Loader:
    """Loads records of each kind for one search, in one read transaction."""

    def __init__(self, conn: Connection, readable: set[str] | None) -> None:
        self.conn = conn
        self.readable = readable
        self.by_kind: dict[str, dict[str, Rec]] = {}
        self._cache: dict[str, Any] = {}

    @classmethod
    def for_actor(cls, conn: Connection, actor: Any) -> Loader:
        return cls(conn, None if actor.is_admin else readable_project_ids(conn, actor))

    def records(self, kind: str) -> list[Rec]:
        return list(self.by_kind.get(kind, {}).values())

    # --- loading ---------------------------------------------------------------------------

    def projects(self, ids: Collection[str] | None = None) -> None:
        wanted = set(ids) if ids is not None else None
        if self.readable is not None:
            wanted = self.readable if wanted is None else wanted & self.readable
        out = self.by_kind.setdefault(PROJECT, {})
        for row in q.all_projects(self.conn, _few(wanted)):
            if wanted is None or row["id"] in wanted:
                places = [(row["id"], row["id"])]
                out[row["id"]] = Rec(
                    PROJECT, "xnat:projectData", row["id"], row, field_values(PROJECT, row), places
                )

    def subjects(self, id_filter: q.IdFilter | None = None, ids: Collection[str] | None = None) -> None:
        shared = q.share_rows(self.conn, SUBJECT)
        out = self.by_kind.setdefault(SUBJECT, {})
        for row in q.subject_rows(self.conn, id_filter, _few(ids)):
            if ids is not None and row["id"] not in ids:
                continue
            rec = self._placed(SUBJECT, "xnat:subjectData", row, shared.get(row["id"], []))
            if rec is not None:
                out[rec.key] = rec

    def experiments(
        self,
        xsi_types: Collection[str] | None = None,
        id_filter: q.IdFilter | None = None,
        ids: Collection[str] | None = None,
    ) -> None:
        shared = q.share_rows(self.conn, EXPERIMENT)
        out = self.by_kind.setdefault(EXPERIMENT, {})
        for row in q.experiment_rows(self.conn, xsi_types, id_filter, _few(ids)):
            if ids is not None and row["id"] not in ids:
                continue
            rec = self._placed(EXPERIMENT, row["xsi_type"], row, shared.get(row["id"], []))
            if rec is not None:
                out[rec.key] = rec

    def children(self, kind: str, xsi_types: Collection[str] | None = None) -> list[Mapping[Any, Any]]:
        """Scan (or reconstruction) rows; ``link_children`` turns them into records once their
        sessions are loaded, since a scan is readable exactly when its session is."""
        return list(q.child_rows(self.conn, "scan" if kind == SCAN else "reconstruction", xsi_types))

    def link_children(self, kind: str, rows: Sequence[Mapping[Any, Any]]) -> None:
        sessions = self.by_kind.get(EXPERIMENT, {})
        out = self.by_kind.setdefault(kind, {})
        for row in rows:
            session = sessions.get(row["experiment_id"])
            if session is None:
                continue
            values = field_values("scan", row)
            values["project"] = session.project
            values.setdefault("image_session_ID", session.key)
            rec = Rec(kind, row["xsi_type"], str(row["pk"]), row, values, [(session.project, row["scan_id"])])
            _link(rec, session, EXPERIMENT)
            for above in (SUBJECT, PROJECT):
                if above in session.up:
                    _link(rec, session.up[above], above)
            out[rec.key] = rec

    def link(self) -> None:
        """Tie subjects and experiments to their projects, and experiments to their subjects."""
        projects = self.by_kind.get(PROJECT, {})
        subjects = self.by_kind.get(SUBJECT, {})
        for kind in (SUBJECT, EXPERIMENT):
            for rec in self.records(kind):
                subject = subjects.get(rec.row.get("subject_id") or "") if kind == EXPERIMENT else None
                if subject is not None:
                    _link(rec, subject, SUBJECT)
                for i, (project, _) in enumerate(rec.places):
                    if project in projects:
                        _link(rec, projects[project], PROJECT, up=i == 0)

    def _placed(
        self, kind: str, xsi_type: str, row: Mapping[Any, Any], shared: list[tuple[str, str]]
    ) -> Rec | None:
        places = [(row["project_id"], row["label"]), *shared]
        if self.readable is not None:
            places = [p for p in places if p[0] in self.readable]
        if not places:
            return None
        values = field_values(kind, row)
        values["project"], values["label"] = places[0]
        return Rec(kind, xsi_type, row["id"], row, values, places)

    # --- computed values --------------------------------------------------------------------

    def fact(self, rec: Rec, name: str) -> Any:
        """A computed display value of a record (see ``search_fields.Display.fact``)."""
        if name.startswith("count:"):
            return self._count(rec, name.split(":", 1)[1])
        row = rec.row
        if name == "insert_date":
            return stamp(row.get("insert_date"))
        if name == "last_modified":
            return stamp(row.get("last_modified") or row.get("insert_date"))
        if name == "insert_user":
            return row.get("insert_user")
        if name == "uri":
            return _uri(rec)
        if name == "projects":
            return "".join(f",<{p}>" for p, _ in rec.places)
        if name == "add_ids":
            return ", ".join(label for _, label in rec.places)
        return self._other_fact(rec, name)

    def _other_fact(self, rec: Rec, name: str) -> Any:
        if name in ("access", "prearchive_code"):
            return rec.row.get("accessibility" if name == "access" else "prearchive_code")
        if name == "pi":
            names = [types.text(rec.fields.get(f"pi/{p}")) for p in ("firstname", "lastname")]
            return " ".join(n for n in names if n) or None
        if name in ("users", "owners", "members", "collaborators"):
            return self._members(rec.key, name)
        if name == "subject_label":
            subject = rec.up.get(SUBJECT)
            return subject.label if subject is not None else None
        if name == "age":
            return _age(rec)
        session = rec.up.get(EXPERIMENT)
        if name == "scan_pk":
            return rec.row.get("pk")
        if name == "session_id":
            return rec.row.get("experiment_id")
        if name == "session_label":
            return session.label if session is not None else None
        if name == "subject_id":
            return session.row.get("subject_id") if session is not None else None
        return None

    def _count(self, rec: Rec, xsi_type: str) -> int | None:
        if rec.kind == PROJECT:
            counts = self._cached("by_project", lambda: q.counts_by_project(self.conn))
        else:
            counts = self._cached("by_subject", self._subject_counts)
        return counts.get((rec.key, xsi_type)) or None  # XNAT's count views leave no row for zero

    def _subject_counts(self) -> dict[tuple[str, str], int]:
        """A subject's experiments by type, counting only those the caller may read (a subject
        shared into a readable project may have experiments in projects the caller cannot read)."""
        shared = q.share_rows(self.conn, EXPERIMENT)
        out: dict[tuple[str, str], int] = {}
        for row in q.subject_experiments(self.conn):
            projects = [row["project_id"], *(p for p, _ in shared.get(row["id"], []))]
            if self.readable is None or any(p in self.readable for p in projects):
                key = (row["subject_id"], row["xsi_type"])
                out[key] = out.get(key, 0) + 1
        return out

    def _members(self, project_id: str, which: str) -> str | None:
        roles = {"owners": "owner", "members": "member", "collaborators": "collaborator"}
        members = self._cached("members", lambda: q.members(self.conn)).get(project_id, [])
        names = [user for role, user in members if which == "users" or role == roles[which]]
        return " <br/> ".join(sorted(set(names))) or None

    def _cached(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


def _few(ids: Collection[str] | None) -> Collection[str] | None:
    return ids if ids is not None and len(ids) <= _MANY else None


def _link(child: Rec, parent: Rec, kind: str, up: bool = True) -> None:
    if up:
        child.up[kind] = parent
    parent.down.setdefault(child.kind, []).append(child)


def _uri(rec: Rec) -> str:
    if rec.kind == PROJECT:
        return f"/archive/projects/{rec.key}"
    if rec.kind == SUBJECT:
        return f"/archive/subjects/{rec.key}"
    if rec.kind == EXPERIMENT:
        return f"/archive/experiments/{rec.key}"
    folder = "scans" if rec.kind == SCAN else "reconstructions"
    return f"/archive/experiments/{rec.row['experiment_id']}/{folder}/{rec.row['scan_id']}"


def _age(rec: Rec) -> int | None:
    """XNAT's session AGE: the session's own age, else the subject's, else whole years from the birth
    date to the session date; rounded down, as XNAT's ``FLOOR``."""
    subject = rec.up.get(SUBJECT)
    for value in (rec.fields.get("age"), subject.fields.get("demographics/age") if subject else None):
        try:
            return math.floor(float(str(value)))
        except ValueError:
            continue
    try:
        born = _dt.date.fromisoformat(str(subject.fields.get("demographics/dob") if subject else ""))
        seen = _dt.date.fromisoformat(str(rec.fields.get("date")))
    except ValueError:
        return None
    return seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
