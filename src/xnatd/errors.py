"""Domain errors.

They carry no HTTP status or DICOM status: the HTTP edge (``xnatd.api.errors``) and the DICOM
edge translate them in one place each, so services never think about transport.
"""

from __future__ import annotations


class XnatdError(Exception):
    """Base of every error a caller is meant to see; ``str(err)`` is the plain-text reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(XnatdError):
    """The addressed object does not exist (or the caller may not know it exists)."""


class Conflict(XnatdError):
    """The request collides with existing state (a label in use, a resource that exists)."""


class InvalidInput(XnatdError):
    """The request itself is malformed: bad query parameter, bad body, bad path."""


class InvalidLabel(XnatdError):
    """A label or ID with characters XNAT does not allow (XNAT answers 417)."""


class MissingContent(XnatdError):
    """A create request that carries nothing to create from (XNAT's 417 "Need PUT Contents")."""


class Unauthenticated(XnatdError):
    """No valid credentials were given."""


class Forbidden(XnatdError):
    """The caller is known but may not do this."""


class NotAcceptable(XnatdError):
    """The combination of body and parameters cannot be served (XNAT's 406)."""


class TooLarge(XnatdError):
    """A body, archive or archive member exceeds a configured limit."""


class StorageFull(XnatdError):
    """The archive filesystem has no room left for this write."""


class MethodNotAllowed(XnatdError):
    """The address exists but does not take this method."""


class ScriptError(InvalidInput):
    """An anonymization script (DicomEdit 6) that does not parse, names what does not exist, or fails
    on a dataset; ``line`` and ``column`` (1-based) point at the statement so an editor can mark it."""

    def __init__(self, reason: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {reason}")
        self.reason = reason
        self.line = line
        self.column = column
