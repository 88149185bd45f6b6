"""The registry's building blocks: a data type, its fields and its child objects.

A field's ``path`` is its XNAT XPath below the element, without predicates, as XNAT's JSON
``data_fields`` keys spell it (``scanner/manufacturer``, ``parameters/voxelRes/x``). ``attr`` marks
the last segment as an XML attribute of the element named by the rest of the path (or of the root
element when the path has one segment).
"""

from __future__ import annotations

from dataclasses import dataclass, field

STRING, INTEGER, FLOAT, DATE, TIME, BOOLEAN = "string", "integer", "float", "date", "time", "boolean"
DATETIME, DOUBLE, LONG = "dateTime", "double", "long"


@dataclass(frozen=True)
class Field:
    path: str
    kind: str = STRING
    attr: bool = False
    shortcut: str | None = None
    enum: tuple[str, ...] = ()
    doc: str = ""
    # The value is the element's own text rather than a child element or attribute (XSD simple
    # content with attributes): ``<xnat:field name="group">control</xnat:field>``.
    text: bool = False
    # Accepted as a query parameter and stored, but no element of XNAT's schema (``alias=`` on a
    # project, which XNAT keeps in ``aliases/alias``): left out of the XSD.
    schema: bool = True

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Ref:
    """A child element that holds other typed objects rather than a value (XNAT's reference fields).

    XNAT nests objects in their parent's document: one subject ``demographics`` object, a list of
    image-session ``scans/scan``. The XSD (and so xnatpy's sub-objects and listings) and the item
    documents' ``children`` follow these declarations, so they live here once.
    """

    name: str  # element (path) below the parent: ``demographics``, ``scans``, ``parameters/addParam``
    xsi_type: str  # declared type of the objects, often abstract: ``xnat:imageScanData``
    item: str | None = None  # repeated element inside ``name`` for a list (``scan``); None: no wrapper
    doc: str = ""
    # The element ``name`` itself repeats, without a wrapper (``studyProtocol``, ``addParam``).
    repeated: bool = False
    # The object's fields are stored flattened among the owner's values, under ``{name}/{path}``
    # (a project's ``PI``, a subject's ``investigator``): one object, no row of its own.
    inline: bool = False
    # A list of name/value pairs (custom variables, scan parameters): items are told apart by the
    # attribute ``key`` and hold their value as text, addressed in XPaths as ``value``; each is
    # stored among the owner's values as ``{field}[{key}=X]`` (``fields/field[name=X]``).
    key: str | None = None
    value: str | None = None

    @property
    def many(self) -> bool:
        return self.item is not None or self.repeated

    @property
    def field(self) -> str:
        """The ``field`` key of this child in JSON item documents: ``demographics``, ``scans/scan``."""
        return f"{self.name}/{self.item}" if self.item else self.name


@dataclass(frozen=True)
class DataType:
    """One XNAT data type (``xsi:type``) with the fields it adds to its base."""

    xsi_type: str
    base: str | None
    element: str | None  # XML root element name for stand-alone documents, e.g. ``xnat:MRSession``
    own_fields: tuple[Field, ...] = ()
    abstract: bool = False
    modality: str | None = None
    doc: str = ""
    children: tuple[str, ...] = field(default=())  # reference fields, e.g. ``demographics``
    refs: tuple[Ref, ...] = ()  # child objects and listings this type adds (see ``Ref``)
    # Field that names an object within its parent (XNAT's ``displayIdentifiers``); xnatpy builds
    # creation URLs from it (a scan is created at ``scans/{ID}``, a subject at ``subjects/{label}``).
    display_id: str | None = None
    # XNAT's plural name of the type (``ElementSecurity``'s plural description), used where XNAT
    # names a project's protocol for the type: ``Subjects``, ``MR Sessions``.
    plural: str | None = None


def f(path: str, kind: str = STRING, **kw: object) -> Field:
    return Field(path, kind, **kw)  # type: ignore[arg-type]


def a(path: str, kind: str = STRING, **kw: object) -> Field:
    """An attribute field."""
    return Field(path, kind, attr=True, **kw)  # type: ignore[arg-type]


def t(path: str, kind: str = STRING, **kw: object) -> Field:
    """The element's own text (simple content)."""
    return Field(path, kind, text=True, **kw)  # type: ignore[arg-type]
