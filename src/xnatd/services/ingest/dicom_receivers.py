"""DICOM receivers: which AE title and port take C-STOREs, where their files go, who may send.

A receiver is XNAT's ``DicomSCPInstance``: an AE title on a port, enabled or not, routing to a fixed
project or by expressions on header values (else XNAT's default header rules), optionally archiving
directly, optionally accepting only calling AE titles on a whitelist. The default receiver comes from
the ``dicom_ae_title``/``dicom_port`` settings, more from the ``dicom_receivers`` setting (a JSON list in
the API's shape); site administrators add, edit and remove others at ``/xapi/dicomscp`` (stored in the
database). A stored receiver with the AE title and port of a settings one replaces it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from xnatd.config import Settings
from xnatd.db import dicom_receivers as rq
from xnatd.errors import Conflict, Forbidden, InvalidInput, NotFound
from xnatd.processes import alive
from xnatd.services import access
from xnatd.services.access.context import Actor, Context

_AE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # 16 characters of the default repertoire, no backslash
_TAG = re.compile(r"^\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?$")
_GROUP = re.compile(r"^(.*):(\d+)$", re.DOTALL)

# API field (XNAT's name) -> attribute; booleans and texts XNAT has that we accept and ignore are below.
FIELDS = {
    "aeTitle": "ae_title",
    "port": "port",
    "enabled": "enabled",
    "project": "project",
    "directArchive": "direct_archive",
    "whitelistEnabled": "whitelist_enabled",
    "whitelist": "whitelist",
    "routingExpressionsEnabled": "routing_enabled",
    "projectRoutingExpression": "project_routing",
    "subjectRoutingExpression": "subject_routing",
    "sessionRoutingExpression": "session_routing",
}
# XNAT's DICOM object identifiers (bean ID -> readable name), the default first: xnatd has one, which
# applies XNAT's classic rules (comment fields, StudyDescription, PatientName...; dicom/identify.py)
IDENTIFIERS = {"dicomObjectIdentifier": "Default DICOM object identifier (ClassicDicomObjectIdentifier)"}
IDENTIFIER_CLASSES = {"dicomObjectIdentifier": "org.nrg.dcm.id.ClassicDicomObjectIdentifier"}
IGNORED = {"id", "identifier", "fileNamer", "customProcessing", "anonymizationEnabled", "source", "readOnly"}


@dataclass(frozen=True)
class Rule:
    """One routing expression line: ``(gggg,eeee):regex[:group][ t:FIND r:REPLACEMENT]``; the first
    matching line wins. With ``t:``/``r:`` every match of FIND in the value found is replaced by
    REPLACEMENT (``$1`` names FIND's groups): ``(0020,000E):(.*):1 t:.+ r:P1`` routes all to P1."""

    tag: int
    pattern: re.Pattern[str]
    group: int
    find: re.Pattern[str] | None = None
    replacement: str = ""

    def value(self, text: str) -> str | None:
        match = self.pattern.search(text)
        if match is None or not match.group(self.group):
            return None
        found = match.group(self.group)
        if self.find is not None:
            found = self.find.sub(self.replacement, found)
        return found.strip() or None


_REPLACE = re.compile(r"^(?P<main>.*?)(?:\s+t:(?P<find>.*?)\s+r:(?P<repl>.*))?$", re.DOTALL)


@dataclass(frozen=True)
class Receiver:
    ae_title: str
    port: int
    id: int | None = None  # None: defined in settings
    enabled: bool = True
    project: str = ""
    direct_archive: bool = False
    whitelist_enabled: bool = False
    whitelist: tuple[str, ...] = ()
    routing_enabled: bool = False
    project_routing: str = ""
    subject_routing: str = ""
    session_routing: str = ""
    rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict, compare=False, repr=False)

    def allows(self, calling_ae: str, peer_host: str) -> bool:
        """The whitelist check (XNAT's): an entry is an AE title, an IP address or network
        (``192.168.1.7``, ``10.0.0.0/8``: the caller's address, whatever its AE title), or
        ``AE@address`` (both); ``*`` matches any AE title."""
        if not self.whitelist_enabled:
            return True
        return any(_matches(entry, calling_ae.strip(), peer_host) for entry in self.whitelist)

    def document(self) -> dict[str, Any]:
        """The receiver as ``/xapi/dicomscp`` shows it (XNAT's field names, plus ``project``)."""
        doc: dict[str, Any] = {"id": self.id}
        for api, attr in FIELDS.items():
            value = getattr(self, attr)
            doc[api] = list(value) if isinstance(value, tuple) else value
        doc.update(identifier="dicomObjectIdentifier", customProcessing=False, anonymizationEnabled=False)
        doc["source"] = "settings" if self.id is None else "api"
        return doc


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None


def _matches(entry: str, calling_ae: str, peer_host: str) -> bool:
    ae, at, host = entry.strip().partition("@")
    if not at:
        network = _network(ae)
        if network is not None:
            return _in(peer_host, network)
        return ae.strip() in ("*", calling_ae)
    network = _network(host)
    return ae.strip() in ("*", calling_ae) and network is not None and _in(peer_host, network)


def _in(peer_host: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        address = ipaddress.ip_address(peer_host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in network


def _check_whitelist(entries: Sequence[str]) -> None:
    """XNAT's checks (``DicomSCPManager``): ``AE@address`` needs an IP address or network; a single
    entry is an address or network, or else an AE title."""
    for entry in entries:
        ae, at, host = entry.partition("@")
        if at and _network(host) is None:
            raise InvalidInput(f"Invalid Ip Address in whitelist: {host}")
        if (at or _network(ae) is None) and ae != "*" and not _AE.match(ae):
            raise InvalidInput(f"Invalid item in whitelist: {entry}")


def parse_rules(text: str, what: str) -> tuple[Rule, ...]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        parts = _REPLACE.match(line)
        assert parts is not None  # the pattern matches any text
        find = None
        if parts.group("find") is not None:
            try:
                find = re.compile(parts.group("find"))
            except re.error as exc:
                raise InvalidInput(f"{what} routing expression {line!r}: t: {exc}") from None
        replacement = re.sub(r"\$(\d+)", r"\\g<\1>", parts.group("repl") or "")
        line = parts.group("main").strip()
        tag_text, sep, rest = line.partition(":")
        tag = _TAG.match(tag_text.strip())
        if not sep or tag is None:
            raise InvalidInput(f"{what} routing expression {line!r}: expected (gggg,eeee):regex[:group]")
        group = _GROUP.match(rest)
        pattern_text, number = (group.group(1), int(group.group(2))) if group else (rest, -1)
        try:
            pattern = re.compile(pattern_text)
        except re.error as exc:
            raise InvalidInput(f"{what} routing expression {line!r}: {exc}") from None
        if number < 0:
            number = 1 if pattern.groups else 0
        if number > pattern.groups:
            raise InvalidInput(f"{what} routing expression {line!r}: no group {number}")
        rules.append(Rule(int(tag.group(1) + tag.group(2), 16), pattern, number, find, replacement))
    return tuple(rules)


def _compiled(r: Receiver) -> Receiver:
    rules = {
        kind: parse_rules(getattr(r, f"{kind}_routing"), kind)
        for kind in ("project", "subject", "session")
        if r.routing_enabled
    }
    return replace(r, rules=rules)


def from_values(values: Mapping[str, Any], rid: int | None = None) -> Receiver:
    """A checked receiver from attribute values (a row, or parsed API fields)."""
    ae = str(values.get("ae_title", "")).strip()
    if not _AE.match(ae):
        raise InvalidInput(f"Invalid AE title {ae!r}: 1 to 16 printable characters, no backslash")
    try:
        port = int(values.get("port", 0))
    except (TypeError, ValueError):
        raise InvalidInput(f"Invalid port {values.get('port')!r}") from None
    if not 1 <= port <= 65535:
        raise InvalidInput(f"Invalid port {port}: 1 to 65535")
    whitelist = values.get("whitelist") or ()
    if isinstance(whitelist, str):
        whitelist = [w for w in re.split(r"[\s,]+", whitelist) if w]
    whitelist = [str(w).strip() for w in whitelist if str(w).strip()]
    _check_whitelist(whitelist)
    receiver = Receiver(
        ae_title=ae,
        port=port,
        id=rid,
        enabled=bool(values.get("enabled", True)),
        direct_archive=bool(values.get("direct_archive", False)),
        whitelist_enabled=bool(values.get("whitelist_enabled", False)),
        whitelist=tuple(whitelist),
        routing_enabled=bool(values.get("routing_enabled", False)),
        project=str(values.get("project") or ""),
        project_routing=str(values.get("project_routing") or ""),
        subject_routing=str(values.get("subject_routing") or ""),
        session_routing=str(values.get("session_routing") or ""),
    )
    return _compiled(receiver)


def from_settings(settings: Settings) -> list[Receiver]:
    """The default receiver and those of the ``dicom_receivers`` setting."""
    found = [from_values({"ae_title": settings.dicom_ae_title, "port": settings.dicom_port})]
    if settings.dicom_receivers.strip():
        try:
            docs = json.loads(settings.dicom_receivers)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"dicom_receivers setting: not JSON ({exc.msg})") from None
        if not isinstance(docs, list):
            raise InvalidInput("dicom_receivers setting: expected a JSON list of receivers")
        found += [from_values(_api_values(doc)) for doc in docs]
    return found


def _api_values(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InvalidInput("A receiver is a JSON object")
    unknown = set(doc) - set(FIELDS) - IGNORED
    if unknown:
        raise InvalidInput(f"Unknown receiver field(s): {', '.join(sorted(unknown))}")
    identifier = doc.get("identifier")
    if identifier not in (None, "", *IDENTIFIERS):
        # XNAT's DicomScpUnknownDOIException: only its DicomObjectIdentifier beans may be named
        raise InvalidInput(
            f"Unknown DICOM object identifier {identifier!r}: this site has {', '.join(IDENTIFIERS)}"
        )
    return {FIELDS[k]: v for k, v in doc.items() if k in FIELDS}


def _row_values(r: Receiver) -> dict[str, Any]:
    values = {k: v for k, v in asdict(r).items() if k not in ("id", "rules")}
    values["whitelist"] = list(r.whitelist)
    return values


# --- the effective list ------------------------------------------------------------------------------


def effective(ctx: Context) -> list[Receiver]:
    """Every receiver, stored ones replacing settings ones with the same AE title and port."""
    with ctx.db.read() as conn:
        stored = [from_values(dict(row), int(row["id"])) for row in rq.all_rows(conn)]
    keys = {(r.ae_title, r.port) for r in stored}
    return [r for r in from_settings(ctx.settings) if (r.ae_title, r.port) not in keys] + stored


def listening(ctx: Context) -> set[int]:
    """The ports the receiver processes must listen on."""
    return {r.port for r in effective(ctx) if r.enabled}


def version(ctx: Context) -> tuple[int, str]:
    with ctx.db.read() as conn:
        return rq.version(conn)


# --- a change applies before its answer ---------------------------------------------------------------

APPLY_WAIT = 10.0  # seconds a change waits at most for the receiver processes to apply it


def applied_path(settings: Settings) -> Path:
    """Where the receivers' supervisor on this host notes the version of the list it serves."""
    return settings.data / "spool" / "receivers-applied.json"


def mark_applied(ctx: Context, served: tuple[int, str] | None) -> None:
    """The supervisor: the listeners of ``served`` are open (None: it stops, nothing is served)."""
    path = applied_path(ctx.settings)
    if served is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(f".{path.name}.{os.getpid()}")
    part.write_text(json.dumps({"pid": os.getpid(), "version": list(served)}))
    os.replace(part, path)


def wait_applied(ctx: Context) -> None:
    """After a change: wait until the supervisor on this host serves the current list (XNAT cycles
    the receivers' ports before it answers), so a sender may associate as soon as the answer
    comes. No supervisor here (``--no-dicom``, another host), or one that died: no wait."""
    deadline = time.monotonic() + APPLY_WAIT
    while time.monotonic() < deadline:
        try:
            noted = json.loads(applied_path(ctx.settings).read_text())
            pid, served = int(noted["pid"]), tuple(noted["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if served == version(ctx) or not alive(pid):
            return
        time.sleep(0.05)


def find(receivers: Sequence[Receiver], port: int, called_ae: str) -> Receiver | None:
    """The enabled receiver an association asks for (its port and called AE title)."""
    for r in receivers:
        if r.enabled and r.port == port and r.ae_title == called_ae.strip():
            return r
    return None


# --- /xapi/dicomscp ----------------------------------------------------------------------------------


def _admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("Only site administrators may see or change DICOM receivers.")


def documents(ctx: Context, actor: Actor) -> list[dict[str, Any]]:
    _admin(actor)
    return [r.document() for r in effective(ctx)]


def document(ctx: Context, actor: Actor, rid: int) -> dict[str, Any]:
    _admin(actor)
    with ctx.db.read() as conn:
        row = rq.row(conn, rid)
    if row is None:
        raise NotFound(f"No DICOM receiver with ID {rid}")
    return from_values(dict(row), rid).document()


def create(ctx: Context, actor: Actor, doc: Any) -> dict[str, Any]:
    _admin(actor)
    receiver = from_values(_api_values(doc))
    with ctx.db.write() as conn:
        if any(r["ae_title"] == receiver.ae_title and r["port"] == receiver.port for r in rq.all_rows(conn)):
            raise Conflict(f"A receiver {receiver.ae_title}:{receiver.port} exists already")
        rid = rq.insert_row(conn, _row_values(receiver))
    wait_applied(ctx)
    return replace(receiver, id=rid).document()


def update(ctx: Context, actor: Actor, rid: int, doc: Any) -> dict[str, Any]:
    """Change the fields given; the others keep their values."""
    _admin(actor)
    with ctx.db.write() as conn:
        row = rq.row(conn, rid)
        if row is None:
            raise NotFound(f"No DICOM receiver with ID {rid}")
        receiver = from_values({**dict(row), **_api_values(doc)}, rid)
        clash = [
            r for r in rq.all_rows(conn) if (r["ae_title"], r["port"]) == (receiver.ae_title, receiver.port)
        ]
        if any(r["id"] != rid for r in clash):
            raise Conflict(f"A receiver {receiver.ae_title}:{receiver.port} exists already")
        rq.update_row(conn, rid, _row_values(receiver))
    wait_applied(ctx)
    return receiver.document()


def set_enabled(ctx: Context, actor: Actor, rid: int, enabled: bool) -> dict[str, Any]:
    return update(ctx, actor, rid, {"enabled": enabled})


def delete(ctx: Context, actor: Actor, rid: int) -> None:
    _admin(actor)
    with ctx.db.write() as conn:
        if not rq.delete_row(conn, rid):
            raise NotFound(f"No DICOM receiver with ID {rid}")
    wait_applied(ctx)


def identifiers(actor: Actor) -> dict[str, str]:
    """``/xapi/dicomscp/identifiers``: every identifier's readable name, by bean ID, the default first."""
    access.require_user(actor)
    return dict(IDENTIFIERS)


def identifier_class(actor: Actor, bean_id: str) -> str:
    """``/xapi/dicomscp/identifiers/{id}``: the identifier's implementation (``default``: the default's)."""
    access.require_user(actor)
    key = next(iter(IDENTIFIERS)) if bean_id == "default" else bean_id
    if key not in IDENTIFIER_CLASSES:
        raise NotFound(f"Couldn't find DICOM object identifier with ID {bean_id}")
    return IDENTIFIER_CLASSES[key]


def reset_identifiers(actor: Actor, bean_id: str | None = None) -> None:
    """``PUT /xapi/dicomscp/identifiers[/{id}]``: XNAT reloads the identifiers' configuration; xnatd's
    identifier has none, so this only checks the caller and the ID."""
    access.require_user(actor)
    if not actor.is_admin:
        raise Forbidden("Only site administrators may reset DICOM object identifiers")
    if bean_id is not None:
        identifier_class(actor, bean_id)
