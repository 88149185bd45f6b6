"""XNAT's archive URL grammar, parsed once into an Address.

``[/data|/REST][/archive]/projects/{P}[/subjects/{S}[/experiments/{E}[/scans/{C}|/assessors/{A}|
/reconstructions/{R}]]]``, the shortcuts ``/subjects/{S}`` and ``/experiments/{E}``, then optionally
``/resources/{R}[/files[/{path}]]``, ``/files[/{path}]`` or ``/projects[/{P2}]`` (sharing). Handlers
dispatch on the address kind, so every level of the tree is served by the same few handlers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from xnatd.errors import InvalidInput, NotFound

# Kinds of address (what is asked for).
PROJECTS, PROJECT = "projects", "project"
SUBJECTS, SUBJECT = "subjects", "subject"
EXPERIMENTS, EXPERIMENT = "experiments", "experiment"
CHILDREN, CHILD = "children", "child"  # scans, assessors, reconstructions
RESOURCES, RESOURCE = "resources", "resource"
FILES, FILE = "files", "file"
SHARES, SHARE = "shares", "share"

CHILD_COLLECTIONS = {"scans": "scan", "assessors": "assessor", "reconstructions": "reconstruction"}
# Words that follow an object in XNAT URLs and are not folder names (the short "create folder" form).
RESERVED = frozenset(
    {
        "status",
        "accessibility",
        "users",
        "prearchive_code",
        "quarantine_code",
        "config",
        "pipelines",
        "searches",
        "aliases",
        "DICOM-headers",
        "dicomdump",
        "history",
        "workflows",
        "in",
        "out",
    }
)


@dataclass(frozen=True)
class Address:
    kind: str
    project: str | None = None
    subject: str | None = None
    experiment: str | None = None
    child_kind: str | None = None  # "scan" | "assessor" | "reconstruction"
    child: str | None = None
    resource: str | None = None
    path: str | None = None
    share_project: str | None = None
    extra: tuple[str, ...] = ()

    @property
    def level(self) -> str:
        """The deepest object named: project, subject, experiment, scan, assessor, reconstruction."""
        if self.child_kind and self.child:
            return self.child_kind
        if self.experiment:
            return "experiment"
        if self.subject:
            return "subject"
        if self.project:
            return "project"
        return "site"

    def with_kind(self, kind: str) -> Address:
        return replace(self, kind=kind)


def split_path(path: str) -> list[str]:
    """Split a URL path (already percent-decoded) into segments.

    Leading and trailing slashes are dropped; inner empty segments are kept, so that an absolute
    path smuggled in after ``files/`` (``files//etc/passwd``) is seen and refused, not quietly
    made relative.
    """
    segs = path.split("/")
    while segs and segs[0] == "":
        segs.pop(0)
    while segs and segs[-1] == "":
        segs.pop()
    return segs


def parse(segments: list[str]) -> Address:
    """Parse archive segments (after ``data``/``REST`` and an optional ``archive``)."""
    segs = list(segments)
    if segs and segs[0] == "archive":
        segs = segs[1:]
    if not segs:
        raise NotFound("Unknown address")
    head = segs[0]
    if head == "projects":
        if len(segs) == 1:
            return Address(PROJECTS)
        return _after_object(Address(PROJECT, project=segs[1]), segs[2:])
    if head == "subjects":
        if len(segs) == 1:
            return Address(SUBJECTS)
        return _after_object(Address(SUBJECT, subject=segs[1]), segs[2:])
    if head == "experiments":
        if len(segs) == 1:
            return Address(EXPERIMENTS)
        return _after_object(Address(EXPERIMENT, experiment=segs[1]), segs[2:])
    raise NotFound(f"Unknown address: /{'/'.join(segments)}")


def _after_object(addr: Address, rest: list[str]) -> Address:
    if not rest:
        return addr
    word, tail = rest[0], rest[1:]
    level = addr.level
    if word == "subjects" and level == "project":
        return _collection_or_object(addr, SUBJECTS, SUBJECT, "subject", tail)
    if word == "experiments" and level in ("project", "subject"):
        return _collection_or_object(addr, EXPERIMENTS, EXPERIMENT, "experiment", tail)
    if word in CHILD_COLLECTIONS and level == "experiment":
        ck = CHILD_COLLECTIONS[word]
        base = replace(addr, child_kind=ck)
        if not tail:
            return base.with_kind(CHILDREN)
        obj = replace(base, kind=CHILD, child=tail[0])
        rest2 = tail[1:]
        if ck != "scan" and rest2 and rest2[0] in ("in", "out"):
            rest2 = rest2[1:]  # assessor/reconstruction ``out/resources`` (XNAT's in/out split)
        return _after_object(obj, rest2)
    if word == "resources":
        return _resources(addr, tail)
    if word == "files":
        return _files(addr, None, tail)
    if word == "projects" and level in ("subject", "experiment", "scan"):
        if not tail:
            return addr.with_kind(SHARES)
        if len(tail) > 1:
            raise InvalidInput("Unexpected path after the project to share into")
        return replace(addr, kind=SHARE, share_project=tail[0])
    if word not in RESERVED and level in ("experiment", "scan", "assessor", "reconstruction", "subject"):
        # The seed documents' short forms: ``scans/4/test`` (a folder) and ``scans/4/ABC/files``.
        if not tail:
            return replace(addr, kind=RESOURCE, resource=word)
        if tail[0] == "files":
            return _files(addr, word, tail[1:])
    return replace(addr, extra=tuple(rest))


def _collection_or_object(addr: Address, coll: str, one: str, field: str, tail: list[str]) -> Address:
    if not tail:
        return addr.with_kind(coll)
    obj = (
        replace(addr, kind=one, subject=tail[0])
        if field == "subject"
        else replace(addr, kind=one, experiment=tail[0])
    )
    return _after_object(obj, tail[1:])


def _resources(addr: Address, tail: list[str]) -> Address:
    if not tail:
        return addr.with_kind(RESOURCES)
    res = tail[0]
    rest = tail[1:]
    if not rest:
        return replace(addr, kind=RESOURCE, resource=res)
    if rest[0] == "files":
        return _files(addr, res, rest[1:])
    raise InvalidInput(f"Unexpected path after resource {res}: /{'/'.join(rest)}")


def _files(addr: Address, resource: str | None, tail: list[str]) -> Address:
    if not tail:
        return replace(addr, kind=FILES, resource=resource)
    return replace(addr, kind=FILE, resource=resource, path="/".join(tail))
