"""XNAT's anonymization API (``/xapi/anonymize/...``, xnat-web's ``AnonymizeApi``) over the same
documents as the configuration service: tool ``anon``, path ``script`` for the site's script and
``projects/{id}`` (at the project's scope) for a project's, so ``/data/config/anon/script`` and
``/xapi/anonymize/site`` read each other's writes, and "enabled" is the document's status.

Who may do what is the configuration service's (XNAT's ``restrictTo``): the site's script is read by
every logged-in user and changed by administrators; a project's is read by whoever reads the project
and changed by its owners. A script that does not parse is refused before anything is stored.

The dry run (beyond XNAT) applies a script to one DICOM object, sent or stored, and answers what it
would change; nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xnatd.dicom import dicomedit, header
from xnatd.domain import address as A
from xnatd.errors import InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context
from xnatd.services.archive import config_service as config
from xnatd.services.archive import files
from xnatd.services.archive.resolve import resolve

TOOL = config.ANON_TOOL
SITE_PATH = "script"
DEFAULT_SCRIPT = dicomedit.XNAT_DEFAULT_SCRIPT
MAX_DICOM = 512 * 1024 * 1024  # one object; a dry run holds it in memory


def _where(project: str | None) -> config.Where:
    return config.Where(project, TOOL, SITE_PATH if project is None else f"projects/{project}")


def default_script(actor: Actor) -> str:
    """XNAT's default script, for logged-in users (``restrictTo = Authenticated``)."""
    access.require_user(actor)
    return DEFAULT_SCRIPT


def script(ctx: Context, actor: Actor, project: str | None) -> str | None:
    """The stored script, enabled or not. The site's is XNAT's default until one is stored (XNAT
    writes its default there at first start); a project without one has none (XNAT: 204)."""
    found = config.latest(ctx, actor, _where(project))
    if found is not None:
        return found[0]
    return DEFAULT_SCRIPT if project is None else None


def enabled(ctx: Context, actor: Actor, project: str | None) -> bool:
    """Whether the script is applied: its document's status. Nothing stored is not enabled: xnatd
    does not anonymize until an administrator (or a project owner) turns a script on."""
    found = config.latest(ctx, actor, _where(project))
    return found is not None and found[1] == config.ENABLED


def save(ctx: Context, actor: Actor, project: str | None, text: str) -> None:
    """Store a new version of the script (the configuration service refuses one that does not
    parse), keeping its enabled status; a new one is enabled, as ``PUT /data/config/anon/...``
    makes it."""
    where = _where(project)
    found = _latest_or_none(ctx, actor, where)
    status = found[1] if found is not None else config.ENABLED
    config.put(ctx, actor, where, config.Change(text, status, None, "Saved through /xapi/anonymize"))


def set_enabled(ctx: Context, actor: Actor, project: str | None, enable: bool) -> None:
    """Turn the script on or off. The site's default is stored when nothing was, as XNAT's site
    script always exists; a project without a script has nothing to turn on (404)."""
    where = _where(project)
    status = config.ENABLED if enable else config.DISABLED
    if project is None and _latest_or_none(ctx, actor, where) is None:
        config.put(ctx, actor, where, config.Change(DEFAULT_SCRIPT, status, None, "Site script status"))
        return
    config.put(ctx, actor, where, config.Change(None, status, None, "Script status"))


def _latest_or_none(ctx: Context, actor: Actor, where: config.Where) -> tuple[str, str] | None:
    try:
        return config.latest(ctx, actor, where)
    except NotFound:
        return None


# --- the dry run ---------------------------------------------------------------------------------


@dataclass
class DryRun:
    rejected: str | None
    changes: list[dict[str, str | None]] = field(default_factory=list)
    echo: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"rejected": self.rejected, "changes": self.changes, "echo": self.echo}


def dry_run(
    ctx: Context, actor: Actor, text: str, data: bytes | None, uri: str | None, variables: dict[str, str]
) -> DryRun:
    """Apply ``text`` to the object sent (``data``) or stored at ``uri`` (which the caller must be
    allowed to read; its session supplies ``project``, ``subject``, ``session`` unless given)."""
    access.require_user(actor)
    compiled = dicomedit.parse(text)
    if data is None:
        if not uri:
            raise InvalidInput("A dry run needs a DICOM file (the file part) or a stored file's uri")
        data, found = _stored(ctx, actor, uri)
        variables = {**found, **variables}
    header.keys_of(data, "the DICOM object")  # NotDicom (400) for what is no usable DICOM object
    dataset = header.dataset_of(data, "the DICOM object", stop_before_pixels=False)
    if "modality" not in variables and "Modality" in dataset:
        variables = {**variables, "modality": str(dataset.Modality)}
    outcome = dicomedit.apply(compiled, dataset, variables)
    changes = [
        {"tag": c.tag, "keyword": c.keyword, "path": c.path, "before": c.before, "after": c.after}
        for c in outcome.changes
    ]
    rejected = None
    if isinstance(outcome, dicomedit.Rejected):
        rejected = outcome.reason or "rejected"
    return DryRun(rejected, changes, list(outcome.echoes))


def _stored(ctx: Context, actor: Actor, uri: str) -> tuple[bytes, dict[str, str]]:
    """A stored file's bytes and its session's names, after the read check."""
    segments = [s for s in uri.split("?")[0].strip().split("/") if s]
    if segments[:1] in (["data"], ["REST"]):
        segments = segments[1:]
    addr = A.parse(segments)
    if addr.kind != A.FILE:
        raise InvalidInput(f"uri must name a stored file (.../resources/R/files/NAME), not {uri!r}")
    info = files.open_file(ctx, actor, addr)
    if info is None:
        raise NotFound(f"Unable to find file {uri}")
    if info.size is not None and int(info.size) > MAX_DICOM:
        raise InvalidInput(f"{info.name} is larger than a dry run reads ({MAX_DICOM} bytes)")
    with ctx.db.read() as conn:
        target = resolve(conn, actor, addr, access.READ, upto="experiment")
    names = {"project": target.project_id} if target.project is not None else {}
    if target.subject_label:
        names["subject"] = target.subject_label
    if target.experiment_label:
        names["session"] = target.experiment_label
    return info.path.read_bytes(), names
