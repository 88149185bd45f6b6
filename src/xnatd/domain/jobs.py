"""Processing jobs: the state machine, command definitions and command-line templates (pure rules).

A job is a row that moves through a few states; every move is checked against ``TRANSITIONS`` so no
code path can, say, complete a cancelled job. Commands are definitions (a name, an argument-list
template, an input resource and an output resource); the template is filled into an argument list
that is executed without a shell, so a label can never become a second command or option.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xnatd.errors import Conflict, InvalidInput

QUEUED, RUNNING, COMPLETE, FAILED, CANCELLED = "queued", "running", "complete", "failed", "cancelled"
STATES = (QUEUED, RUNNING, COMPLETE, FAILED, CANCELLED)
ACTIVE = (QUEUED, RUNNING)
FINAL = (COMPLETE, FAILED, CANCELLED)

# (from, to): why the move exists. Anything not listed is refused.
TRANSITIONS: dict[tuple[str, str], str] = {
    (QUEUED, RUNNING): "a dispatcher claimed the job and handed it to an executor",
    (QUEUED, CANCELLED): "cancelled before it started",
    (QUEUED, FAILED): "it cannot start (its scan or input resource is gone)",
    (RUNNING, COMPLETE): "the command exited 0 and its outputs were moved into the archive",
    (RUNNING, FAILED): "the command failed, timed out, or its run was lost too often",
    (RUNNING, CANCELLED): "cancelled while running: the process is stopped, its outputs dropped",
    (RUNNING, QUEUED): "its run was lost (server stopped or killed) and attempts remain",
}


def can_move(old: str, new: str) -> bool:
    return (old, new) in TRANSITIONS


def check_move(old: str, new: str) -> None:
    """Raise Conflict for a move the state machine does not allow (e.g. cancelling a finished job)."""
    if old not in STATES or new not in STATES:
        raise InvalidInput(f"Unknown job status {old if old not in STATES else new!r}")
    if not can_move(old, new):
        raise Conflict(f"A {old} job cannot become {new}")


def sources_of(new: str) -> tuple[str, ...]:
    """The states a job may be in to move to ``new`` (for conditional updates in the database)."""
    return tuple(old for old, to in TRANSITIONS if to == new)


# --- command definitions --------------------------------------------------------------------------

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
# What a template may ask for; values are filled in per scan when a job starts.
VARIABLES = {
    "input": "absolute path of the scan's input resource folder (read in place)",
    "output": "absolute path of the empty folder whose files become the output resource",
    "project": "project ID",
    "subject": "subject label",
    "session": "session (experiment) label",
    "session_id": "session accession ID",
    "scan": "scan ID",
    "scan_type": "scan type (may be empty)",
    "job": "job ID",
}
MAX_TIMEOUT = 7 * 24 * 3600
BUILTIN = "dcm2niix"


@dataclass(frozen=True)
class Command:
    """A command definition, in the spirit of XNAT container-service commands (without containers)."""

    name: str
    command: tuple[str, ...]
    description: str = ""
    input_resource: str = "DICOM"
    output_resource: str = "NIFTI"
    output_format: str = ""
    output_content: str = ""
    timeout: int = 3600
    builtin: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "command": list(self.command),
            "input": {"resource": self.input_resource},
            "output": {
                "resource": self.output_resource,
                "format": self.output_format,
                "content": self.output_content,
            },
            "timeout": self.timeout,
            "builtin": self.builtin,
        }


DCM2NIIX = Command(
    name=BUILTIN,
    description="DICOM to NIfTI (gzipped) with BIDS JSON sidecars, by dcm2niix",
    command=("dcm2niix", "-b", "y", "-z", "y", "-f", "%s_%d", "-o", "{output}", "{input}"),
    input_resource="DICOM",
    output_resource="NIFTI",
    output_format="NIFTI",
    output_content="NIFTI_RAW",
    timeout=3600,
    builtin=True,
)


def parse_command(doc: Mapping[str, Any]) -> Command:
    """Validate an administrator's JSON definition; every problem is a clear InvalidInput."""
    if not isinstance(doc, Mapping):
        raise InvalidInput("A command definition is a JSON object")
    name = doc.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidInput("The command needs a name of letters, digits, '_', '.', '-' (at most 64)")
    if name == BUILTIN:
        raise Conflict(f"'{BUILTIN}' is built in and cannot be redefined")
    argv = doc.get("command")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise InvalidInput("'command' must be a non-empty list of strings (one per argument)")
    if PLACEHOLDER.search(argv[0]) or not argv[0].strip():
        raise InvalidInput("The program (the first element of 'command') must be a fixed name or path")
    for arg in argv:
        placeholders(arg)
    inp, out = _section(doc, "input"), _section(doc, "output")
    timeout = doc.get("timeout", 3600)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 1 <= timeout <= MAX_TIMEOUT:
        raise InvalidInput(f"'timeout' must be a whole number of seconds from 1 to {MAX_TIMEOUT}")
    return Command(
        name=name,
        command=tuple(argv),
        description=_text(doc, "description"),
        input_resource=_label(inp.get("resource", "DICOM"), "input resource"),
        output_resource=_label(out.get("resource"), "output resource"),
        output_format=_text(out, "format"),
        output_content=_text(out, "content"),
        timeout=timeout,
    )


def _section(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping):
        raise InvalidInput(f'\'{key}\' must be an object such as {{"resource": "NAME"}}')
    return value


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key, "")
    if not isinstance(value, str) or len(value) > 1000:
        raise InvalidInput(f"'{key}' must be a string")
    return value


LABEL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def _label(value: Any, what: str) -> str:
    if not isinstance(value, str) or not LABEL.match(value):
        raise InvalidInput(f"The {what} label must be letters, digits, '_', '.', '-' (got {value!r})")
    return value


def placeholders(arg: str) -> list[str]:
    """The variable names in one template argument; ``{{`` and ``}}`` are literal braces."""
    names = [m.group(1) for m in TOKEN.finditer(arg) if m.group(1) is not None]
    for name in names:
        if name not in VARIABLES:
            raise InvalidInput(f"Unknown template variable {{{name}}}: one of {', '.join(VARIABLES)}")
    rest = TOKEN.sub("", arg)
    if "{" in rest or "}" in rest:
        raise InvalidInput(f"Unbalanced brace in argument {arg!r} (write {{{{ or }}}} for a literal one)")
    return names


def fill(template: tuple[str, ...] | list[str], values: Mapping[str, str]) -> list[str]:
    """The argument list for one run: each template argument stays exactly one argument.

    A value is never split, re-scanned or interpreted (there is no shell). A value that would make an
    argument start with ``-`` where the template's did not is refused: the program could take it
    for an option.
    """
    out = []
    for arg in template:
        placeholders(arg)
        filled = TOKEN.sub(lambda m, a=arg: _token(values, m, a), arg)  # type: ignore[misc]
        if filled.startswith("-") and not arg.startswith("-"):
            raise InvalidInput(f"The value for {arg!r} starts with '-' and could be read as an option")
        out.append(filled)
    return out


def _token(values: Mapping[str, str], m: re.Match[str], arg: str) -> str:
    if m.group(1) is None:
        return m.group(0)[0]  # "{{" -> "{", "}}" -> "}"
    return _value(values, m.group(1), arg)


def _value(values: Mapping[str, str], name: str, arg: str) -> str:
    value = values.get(name)
    if value is None:
        raise InvalidInput(f"No value for {{{name}}} in {arg!r}")
    if "\x00" in value:
        raise InvalidInput(f"The value for {{{name}}} contains a NUL character")
    return value
