"""Files on disk: validated names, atomic streamed writes, archive extraction and download bundles.

Only the standard library, ``xnatd.errors`` and zipstream-ng are used here, so the services can
rely on these rules without any database or HTTP concern leaking in.
"""

from xnatd.storage.archives import ExtractLimits, Member, archive_kind, iter_members
from xnatd.storage.bundles import tar_stream, zip_stream
from xnatd.storage.files import (
    Staged,
    discard,
    md5_of,
    place,
    remove_file,
    remove_tree,
    stage_fileobj,
    stage_stream,
)
from xnatd.storage.paths import contained, safe_label, safe_relpath

__all__ = [
    "ExtractLimits",
    "Member",
    "Staged",
    "archive_kind",
    "contained",
    "discard",
    "iter_members",
    "md5_of",
    "place",
    "remove_file",
    "remove_tree",
    "safe_label",
    "safe_relpath",
    "stage_fileobj",
    "stage_stream",
    "tar_stream",
    "zip_stream",
]
