"""Labels and IDs as XNAT allows them.

Subject, experiment and project labels end up as directory names and in URLs, so they are held to
XNAT's own rule (``XftStringUtils.isValidId``): letters, digits, ``_`` and ``-``.
"""

from __future__ import annotations

import re

from xnatd.errors import InvalidInput, InvalidLabel

# XNAT keeps labels in varchar(255) columns, and each becomes one folder name, which the file
# system limits to 255 bytes (ENAMETOOLONG beyond). Sanitised labels are ASCII: characters = bytes.
MAX_LABEL = 255
_VALID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def check_label(value: str, what: str) -> str:
    """Return ``value`` if it is a valid label; raise InvalidLabel with XNAT's wording otherwise."""
    if not _VALID.match(value or ""):
        raise InvalidLabel(f"Invalid character in {what} label/ID: {value!r} (allowed: A-Z a-z 0-9 _ -)")
    return value


def sanitize_label(value: str, default: str = "") -> str:
    """Turn a DICOM-derived name into a label, as XNAT does: every other character becomes ``_``;
    cut to ``MAX_LABEL`` characters so that a long header value still makes a valid folder name."""
    cleaned = _INVALID_CHARS.sub("_", value.strip())[:MAX_LABEL]
    return cleaned or default


def check_length(value: str | None, what: str) -> str | None:
    """A label given as a parameter must fit: too long is refused (400), never cut, because the
    caller named it and a silently different label would be filed somewhere else."""
    if value is not None and len(value.encode("utf-8", "surrogatepass")) > MAX_LABEL:
        raise InvalidInput(
            f"The {what} label is {len(value)} characters long; at most {MAX_LABEL} are allowed"
        )
    return value


def accession_id(site_id: str, kind: str, number: int) -> str:
    """``XNAT_S00001``-style accession IDs: site ID, kind letter, at least five digits."""
    return f"{site_id}_{kind}{number:05d}"


def site_prefix(site_id: str) -> str:
    return site_id.replace(" ", "").replace("'", "").replace('"', "").replace("-", "_")
