"""The archive tree's paths for the OpenAPI document, generated from the URL grammar and the type registry.

The app serves the whole tree through one catch-all route (``/data/{rest:path}``), which tells a reader
nothing. Here the grammar of ``domain/address.py`` is unrolled into one path per (level, what is asked),
so that every level is documented and a fuzzer can reach real objects; the query parameters of object
``PUT`` come from ``domain/types/``, so a new typed field is documented without writing it here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xnatd.domain import address as A
from xnatd.domain import types as T

Operation = dict[str, Any]
PathItem = dict[str, Operation]

# Fields that name an object rather than describe it: set through the path (and ``label=`` when
# sharing), not as typed query parameters, so they are left out of the registry-derived parameters.
IDENTITY = frozenset({"ID", "project", "label", "subject_ID", "image_session_ID"})
KIND_SCHEMA: dict[str, dict[str, Any]] = {
    T.STRING: {"type": "string"},
    T.INTEGER: {"type": "integer"},
    T.FLOAT: {"type": "number"},
    T.DATE: {"type": "string", "format": "date"},
    T.TIME: {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}(:[0-9]{2})?$"},
    T.BOOLEAN: {"type": "boolean"},
}
LIST_FORMATS = ["json", "xml", "csv", "html"]
FILE_FORMATS = [*LIST_FORMATS, "zip", "tar.gz", "tar"]
ITEM_FORMATS = ["json", "xml"]
# One level of the tree below a project: (collection word, path parameter, base type of its objects).
LEVELS: dict[str, tuple[str, str, str]] = {
    "subject": ("subjects", "subject", "xnat:subjectData"),
    "experiment": ("experiments", "experiment", "xnat:imageSessionData"),
    "scan": ("scans", "scan", "xnat:imageScanData"),
    "assessor": ("assessors", "assessor", "xnat:imageAssessorData"),
    "reconstruction": ("reconstructions", "reconstruction", "xnat:reconstructedImageData"),
}
LABEL_DOC = "Label, or the site-wide accession ID."


def query(name: str, schema: dict[str, Any], doc: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": doc}


def path_param(name: str, doc: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": doc}


def listing_params(formats: list[str] = LIST_FORMATS) -> list[dict[str, Any]]:
    """XNAT's listing parameters (``domain/table.py``); any other key filters on that column."""
    return [
        query("format", {"type": "string", "enum": formats}, "Rendering of the listing."),
        query("columns", {"type": "string"}, "Comma-separated columns, by name or XPath."),
        query("sortBy", {"type": "string"}, "Column to sort on."),
        query("sortOrder", {"type": "string", "enum": ["ASC", "DESC"]}),
        query("offset", {"type": "integer", "minimum": 0}),
        query("limit", {"type": "integer", "minimum": 0}),
    ]


def field_params(xsi_type: str) -> list[dict[str, Any]]:
    """One query parameter per typed field of ``xsi_type`` (with its bases and demographics), by XPath."""
    fields = [fl for fl in T.fields_of(xsi_type) if fl.path not in IDENTITY]
    if T.DEMOGRAPHICS in T.children_of(xsi_type):
        fields += [
            T.Field(f"{T.DEMOGRAPHICS}/{fl.path}", fl.kind, enum=fl.enum, doc=fl.doc)
            for fl in T.fields_of("xnat:demographicData")
        ]
    out = []
    for fl in fields:
        schema = dict(KIND_SCHEMA.get(fl.kind, {"type": "string"}))
        if fl.enum:
            schema = {"type": "string", "enum": list(fl.enum)}
        out.append(query(f"{xsi_type}/{fl.path}", schema, fl.doc or f"Typed field ({fl.kind})."))
    return out


def _op(summary: str, params: list[dict[str, Any]] | None = None, **extra: Any) -> Operation:
    return {"summary": summary, "tags": ["archive"], "parameters": params or [], **extra}


def xml_body(doc: str) -> dict[str, Any]:
    return {
        "required": False,
        "description": doc,
        "content": {"application/xml": {"schema": {"type": "string"}}},
    }


def upload_body() -> dict[str, Any]:
    binary = {"type": "string", "format": "binary"}
    multipart = {"type": "object", "properties": {"file": binary}}
    return {
        "required": True,
        "description": "The file's bytes, or multipart parts (one file each; zips with extract=true).",
        "content": {
            "application/octet-stream": {"schema": binary},
            "multipart/form-data": {"schema": multipart},
        },
    }


def object_item(level: str, xsi_type: str) -> PathItem:
    """An object at any level: its document, create/update (typed fields), delete."""
    concrete = T.subtypes(xsi_type) or [xsi_type]
    put_params = field_params(xsi_type)
    if level != "project":
        put_params.insert(0, query("xsiType", {"type": "string", "enum": concrete}, "Type when creating."))
    put_params.append(query("event_reason", {"type": "string"}))
    if level == "experiment":
        doc = "An image session's scans with no type get one from XNAT's scan type mapping."
        put_params.append(query("fixScanTypes", {"type": "boolean"}, doc))
    return {
        "get": _op(f"The {level}'s document.", [query("format", {"type": "string", "enum": ITEM_FORMATS})]),
        "put": _op(
            f"Create or update the {level}.", put_params, requestBody=xml_body("A document to store.")
        ),
        "delete": _op(f"Delete the {level}.", [query("removeFiles", {"type": "boolean"})]),
    }


def resource_items(prefix: str, owner: str) -> Iterator[tuple[str, PathItem]]:
    """``resources``, a resource, its files and one file, below any object (``owner`` names it)."""
    files_get = [
        *listing_params(FILE_FORMATS),
        query("all", {"type": "boolean"}),
        query("recursive", {"type": "boolean"}, "false: a folder's own files, not its sub-folders'."),
    ]
    upload = [
        query(name, schema)
        for name, schema in (
            ("overwrite", {"type": "boolean"}),
            ("extract", {"type": "boolean"}),
            ("inbody", {"type": "boolean"}),
            ("content", {"type": "string"}),
            ("format", {"type": "string"}),
            ("tags", {"type": "string"}),
        )
    ]
    res = f"{prefix}/resources/{{resource}}"
    stats = query("file_stats", {"type": "boolean"}, "Accepted; every row has file_count and file_size.")
    yield f"{prefix}/resources", {"get": _op(f"Resources of the {owner}.", [*listing_params(), stats])}
    yield (
        res,
        {
            "get": _op(
                "The resource's document.", [query("format", {"type": "string", "enum": ITEM_FORMATS})]
            ),
            "put": _op("Create the resource (409 if it exists).", [query("format", {"type": "string"})]),
            "delete": _op("Delete the resource.", [query("removeFiles", {"type": "boolean"})]),
        },
    )
    for base in (res, prefix):  # a resource's files, and all files of the object
        yield (
            f"{base}/files",
            {
                "get": _op("List (or zip) the files.", files_get),
                "put": _op("Upload files.", upload, requestBody=upload_body()),
                "delete": _op("Delete the files."),
            },
        )
        yield (
            f"{base}/files/{{file}}",
            {
                "get": _op(
                    "Download one file (a folder is listed).",
                    [query("accept-not-found", {"type": "boolean"})],
                ),
                "put": _op("Upload one file.", upload, requestBody=upload_body()),
                "delete": _op("Delete the file."),
            },
        )


def share_items(prefix: str, owner: str) -> Iterator[tuple[str, PathItem]]:
    yield f"{prefix}/projects", {"get": _op(f"Projects the {owner} is shared into.", listing_params())}
    yield (
        f"{prefix}/projects/{{share_project}}",
        {
            "put": _op(f"Share the {owner} into a project.", [query("label", {"type": "string"})]),
            "delete": _op("Stop sharing."),
        },
    )


def project_extras(prefix: str) -> Iterator[tuple[str, PathItem]]:
    yield f"{prefix}/{{setting}}", {"get": _op("A project setting.")}
    yield f"{prefix}/{{setting}}/{{value}}", {"put": _op("Set a project setting.")}
    yield f"{prefix}/users", {"get": _op("The project's users and roles.", listing_params())}
    yield (
        f"{prefix}/users/{{group}}/{{user}}",
        {
            "put": _op("Give a user a role (Owners, Members, Collaborators)."),
            "delete": _op("Take the role away."),
        },
    )


def tree(root: str = "/data") -> Iterator[tuple[str, PathItem]]:
    """Every archive path the grammar accepts, one level at a time (``/REST`` and ``/data/archive`` too)."""
    yield (
        f"{root}/projects",
        {
            "get": _op("Projects the caller may list.", listing_params()),
            "post": _op("Create a project from an XML document.", requestBody=xml_body("xnat:projectData")),
        },
    )
    yield from _below(f"{root}/projects/{{project}}", "project", "xnat:projectData")
    yield f"{root}/subjects", {"get": _op("Every readable subject.", listing_params())}
    yield f"{root}/experiments", {"get": _op("Every readable experiment.", listing_params())}
    yield from _below(f"{root}/subjects/{{subject_id}}", "subject", "xnat:subjectData", shortcut=True)
    yield from _below(
        f"{root}/experiments/{{experiment_id}}", "experiment", "xnat:imageSessionData", shortcut=True
    )


def _below(prefix: str, level: str, xsi_type: str, shortcut: bool = False) -> Iterator[tuple[str, PathItem]]:
    yield prefix, object_item(level, xsi_type)
    yield from resource_items(prefix, level)
    if level == "project":
        yield from project_extras(prefix)
    elif level in ("subject", "experiment"):
        yield from share_items(prefix, level)
    for child in _children(level):
        word, param, child_type = LEVELS[child]
        yield f"{prefix}/{word}", {"get": _op(f"{word.capitalize()} of the {level}.", listing_params())}
        if shortcut and child in ("subject", "experiment"):
            continue  # below the shortcuts, only what is directly theirs: the full tree is under projects
        yield from _below(f"{prefix}/{word}/{{{param}}}", child, child_type)


def _children(level: str) -> list[str]:
    """Which levels the grammar (``address._after_object``) allows below ``level``."""
    if level == "project":
        return ["subject", "experiment"]
    if level == "subject":
        return ["experiment"]
    if level == "experiment":
        return [A.CHILD_COLLECTIONS[w] for w in A.CHILD_COLLECTIONS]
    return []
