"""The OpenAPI 3 document of xnatd's HTTP API, generated from the app's own route table.

Every route of the running app becomes a path of the document (so a new route is documented, however
thinly, the day it is added; ``tests/unit/api/test_openapi.py`` fails otherwise); the archive tree's
catch-all route is unrolled from the URL grammar and the type registry (``openapi_archive.py``). What a
route table cannot say (summaries, query parameters, bodies) is in the tables below, keyed by path.
Served at ``/xapi/openapi.json`` and at ``/xapi/v2/api-docs``, where XNAT (springfox) serves its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from xnatd import __version__
from xnatd.api import openapi_archive as arc
from xnatd.api import openapi_more
from xnatd.domain import address as A
from xnatd.services.archive import projects as project_settings

Document = dict[str, Any]
_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?}")
JSON_OBJECT = {"type": "object"}
STRING = {"type": "string"}

# Path parameters: (description, example). The examples name the objects of a small demonstration
# project; the schemathesis test creates exactly these, so generated requests reach real objects.
PATH_PARAMS: dict[str, tuple[str, str]] = {
    "project": ("Project ID or alias.", "OAPI"),
    "subject": (arc.LABEL_DOC, "OAPI_S1"),
    "experiment": (arc.LABEL_DOC, "OAPI_E1"),
    "subject_id": ("Subject accession ID.", "XNAT_S00001"),
    "experiment_id": ("Experiment accession ID.", "XNAT_E00001"),
    "scan": ("Scan ID.", "1"),
    "assessor": (arc.LABEL_DOC, "OAPI_QC1"),
    "reconstruction": ("Reconstruction ID.", "OAPI_R1"),
    "resource": ("Resource label or numeric ID.", "NOTES"),
    "file": ("Path of a file inside the resource.", "notes.txt"),
    "share_project": ("Project to share into.", "OAPI2"),
    "setting": (
        "accessibility, prearchive_code, quarantine_code, current_arc, collaborator_sharing or "
        "scan_type_mapping.",
        "accessibility",
    ),
    "value": ("The setting's new value.", "private"),
    "group": ("Owners, Members or Collaborators.", "Members"),
    "user": ("User name.", "oapi_user"),
    "name": ("User or command name.", "oapi_user"),
    "element": ("Search element (a data type).", "xnat:subjectData"),
    "key": ("Build property.", "version"),
    "id": ("Receiver ID.", "1"),
    "flag": ("true or false.", "true"),
    "job_id": ("Job ID.", "1"),
    "op": ("move, rebuild or delete.", "rebuild"),
    "rest": ("The rest of the path (may contain '/').", "projects/OAPI"),
}
REST_EXAMPLES = {
    "/data/services/tokens/{rest}": "show",
    "/data/prearchive/{rest}": "projects",
    "/app/files/{rest}": "projects/OAPI",
    "/app/upload/{rest}": "projects/OAPI/resources/NOTES/files",
}
USER = {
    "type": "object",
    "properties": {
        "username": STRING,
        "password": STRING,
        "currentPassword": STRING,
        "email": STRING,
        "firstName": STRING,
        "lastName": STRING,
        "enabled": {"type": "boolean"},
        "verified": {"type": "boolean"},
        "admin": {"type": "boolean"},
    },
}
RECEIVER = {
    "type": "object",
    "properties": {
        "aeTitle": STRING,
        "port": {"type": "integer"},
        "enabled": {"type": "boolean"},
        "project": STRING,
        "directArchive": {"type": "boolean"},
        "whitelistEnabled": {"type": "boolean"},
        "whitelist": {"type": "array", "items": STRING},
        "routingExpressionsEnabled": {"type": "boolean"},
        "projectRoutingExpression": STRING,
        "subjectRoutingExpression": STRING,
        "sessionRoutingExpression": STRING,
    },
}
COMMAND = {
    "type": "object",
    "properties": {
        "name": STRING,
        "description": STRING,
        "command": {"type": "array", "items": STRING},
        "input": {"type": "object", "properties": {"resource": STRING}},
        "output": {"type": "object", "properties": {"resource": STRING, "format": STRING, "content": STRING}},
        "timeout": {"type": "integer"},
    },
}
LAUNCH = {
    "type": "object",
    "properties": {"command": STRING, "target": STRING, "overwrite": {"type": "boolean"}},
}
AUTOMATION = {"type": "object", "properties": {"commands": {"type": "array", "items": STRING}}}
FORM = {"type": "object", "properties": {"username": STRING, "password": STRING}}
IMPORT_PARAMS = [
    "project", "subject", "session", "dest", "import-handler", "overwrite", "overwrite_files",
    "rename", "AA", "auto-archive", "Direct-Archive", "Ignore-Unparsable", "action", "filename", "format",
    "inbody",
]  # fmt: skip
SOURCE_PARAMS = [
    "src", "newProject", "overwrite", "overwrite_files", "format", "redirect", "project", "subject",
    "subject_ID", "label",
]  # fmt: skip


def _body(media: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": {media: {"schema": schema}}}


def _strings(names: Iterable[str]) -> list[dict[str, Any]]:
    return [arc.query(n, STRING) for n in names]


# Per route (``/REST`` spelled ``/data``) and method: summary, parameters, request body.
ROUTE_DOCS: dict[str, dict[str, dict[str, Any]]] = {
    "/": {"get": {"summary": "Home; with Basic credentials it also opens a session (xnatpy's token login)."}},
    "/data/JSESSION": {
        "get": {"summary": "Open (or show) a session: its ID as text and a JSESSIONID cookie."},
        "post": {"summary": "Open a session."},
        "delete": {"summary": "Close the cookie's session."},
    },
    "/data/services/auth": {
        m: {
            "summary": "Log in with a form; answers a session ID.",
            "security": [],
            "requestBody": _body("application/x-www-form-urlencoded", FORM),
        }
        for m in ("put", "post")
    },
    "/data/auth": {"get": {"summary": "Who is logged in."}},
    "/data/users": {"get": {"summary": "Users of the site.", "parameters": arc.listing_params()}},
    "/data/services/tokens/{rest}": {
        m: {"summary": "Alias tokens: issue, issue/user/U, validate/A/S, invalidate/A/S, show."}
        for m in ("get", "post", "put")
    },
    "/data/version": {"get": {"summary": "Gone since XNAT 1.7 (404): use /xapi/siteConfig/buildInfo."}},
    "/data/search/elements": {"get": {"summary": "Search elements.", "parameters": arc.listing_params()}},
    "/data/search/elements/{element}": {"get": {"summary": "Fields of a search element."}},
    "/data/search": {
        m: {
            "summary": "Run a search bundle (xdat:bundle XML).",
            "parameters": _strings(["format", "sortBy", "sortOrder"]),
            "requestBody": _body("application/xml", STRING),
        }
        for m in ("get", "put", "post", "delete")
    },
    "/data/services/import": {
        "post": {
            "summary": "Import DICOM (a file, zip or tar) into the prearchive or archive.",
            "parameters": _strings(IMPORT_PARAMS),
            "requestBody": arc.upload_body(),
        }
    },
    "/data/services/archive": {
        "post": {"summary": "Archive prearchive sessions (src=...).", "parameters": _strings(SOURCE_PARAMS)}
    },
    "/data/services/prearchive/{op}": {
        "post": {
            "summary": "Move, rebuild or delete prearchive sessions.",
            "parameters": _strings(SOURCE_PARAMS),
        }
    },
    "/data/prearchive/{rest}": {
        m: {
            "summary": "The prearchive: projects, P, P/TS/FOLDER[/scans...] (action=build, commit).",
            "parameters": _strings(["format", "action"]),
        }
        for m in ("get", "put", "post", "delete")
    },
    "/data/{rest}": {
        m: {"summary": "Any archive path of XNAT's URL grammar: see the paths below /data/projects."}
        for m in ("get", "put", "post", "delete")
    },
    "/xapi/siteConfig/buildInfo": {
        "get": {"summary": "Build properties; the readiness check.", "security": []}
    },
    "/xapi/siteConfig/buildInfo/{key}": {"get": {"summary": "One build property.", "security": []}},
    "/xapi/users": {
        "get": {"summary": "User names."},
        "post": {
            "summary": "Create a user (administrators).",
            "requestBody": _body("application/json", USER),
        },
    },
    "/xapi/users/profile": {
        "get": {"summary": "The caller's user object."},
        "put": {
            "summary": "Update the caller (a new password needs currentPassword; not with an alias token).",
            "requestBody": _body("application/json", USER),
        },
    },
    "/xapi/users/{name}": {
        "get": {"summary": "A user object."},
        "put": {"summary": "Update a user.", "requestBody": _body("application/json", USER)},
    },
    "/xapi/access/projects": {"get": {"summary": "Projects the caller may read, with the role."}},
    "/xapi/schemas": {"get": {"summary": "Names of the XSD schemas."}},
    "/xapi/schemas/{name}": {"get": {"summary": "One XSD, generated from the type registry."}},
    "/xapi/dicomscp": {
        "get": {"summary": "DICOM receivers."},
        "post": {"summary": "Add a receiver.", "requestBody": _body("application/json", RECEIVER)},
    },
    "/xapi/dicomscp/{id}": {
        "get": {"summary": "One receiver."},
        "put": {"summary": "Change a receiver.", "requestBody": _body("application/json", RECEIVER)},
        "delete": {"summary": "Remove a receiver."},
    },
    "/xapi/dicomscp/{id}/enabled": {"get": {"summary": "Whether the receiver is enabled."}},
    "/xapi/dicomscp/{id}/enabled/{flag}": {"put": {"summary": "Enable or disable the receiver."}},
    "/xapi/jobs": {
        "get": {
            "summary": "Jobs.",
            "parameters": [*_strings(["project", "status"]), arc.query("limit", {"type": "integer"})],
        },
        "post": {
            "summary": "Queue a command on a target's scans.",
            "requestBody": _body("application/json", LAUNCH),
        },
    },
    "/xapi/jobs/commands": {
        "get": {"summary": "Command definitions."},
        "post": {"summary": "Define a command.", "requestBody": _body("application/json", COMMAND)},
    },
    "/xapi/jobs/commands/{name}": {
        "get": {"summary": "One command."},
        "put": {"summary": "Define or change a command.", "requestBody": _body("application/json", COMMAND)},
        "delete": {"summary": "Remove a command."},
    },
    "/xapi/jobs/auto/{project}": {
        "get": {"summary": "Commands run on the project's new sessions."},
        "put": {"summary": "Set them.", "requestBody": _body("application/json", AUTOMATION)},
    },
    "/xapi/jobs/{job_id}": {"get": {"summary": "One job."}},
    "/xapi/jobs/{job_id}/log": {"get": {"summary": "The job's log."}},
    "/xapi/jobs/{job_id}/cancel": {"post": {"summary": "Cancel the job."}},
    "/xapi/openapi.json": {"get": {"summary": "This document.", "security": []}},
    "/xapi/v2/api-docs": {
        "get": {"summary": "This document, where XNAT serves its Swagger document.", "security": []}
    },
}
PAGES = {  # the web pages (``ui/``): GET shows, POST submits the page's form (CSRF token needed)
    "/app": "Home page.",
    "/app/files/{rest}": "Manage Files of an object (folders, uploads, deletes).",
    "/app/jobs/{job_id}": "One job: state, log, cancel.",
    "/app/logout": "Log out.",
    "/app/prearchive": "The prearchive: sessions, archive, move, delete.",
    "/app/projects/{project}": "A project: subjects, sessions, settings.",
    "/app/projects/{project}/subjects/{subject}": "A subject and its sessions.",
    "/app/projects/{project}/subjects/{subject}/experiments/{experiment}": "A session: scans, snapshots.",
    "/app/search": "Label search.",
    "/app/static/{name}": "The style sheet and the script.",
    "/app/{rest}": "Any other page: 404.",
}
for _path, _summary_text in PAGES.items():
    ROUTE_DOCS[_path] = {m: {"summary": _summary_text} for m in ("get", "post")}
ROUTE_DOCS.update(openapi_more.ROUTE_DOCS)
PATH_PARAMS.update(openapi_more.PATH_PARAMS)
REST_EXAMPLES.update(openapi_more.REST_EXAMPLES)
PUBLIC_PAGES = ("/app/login", "/app/static/{name}")
POST_ONLY = "Answers 405: this service takes POST only."


def openapi_path(route_path: str) -> str:
    """Starlette's ``{rest:path}`` is OpenAPI's ``{rest}`` (its value may hold ``/``)."""
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", route_path)


def route_operations(routes: Iterable[BaseRoute]) -> dict[str, dict[str, Any]]:
    """The app's own routes as OpenAPI path items (HEAD is implied by GET and not listed)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or route.methods is None:
            continue
        path = openapi_path(route.path)
        docs = ROUTE_DOCS.get(path.replace("/REST", "/data", 1) if path.startswith("/REST") else path, {})
        item = paths.setdefault(path, {})
        for method in sorted(route.methods - {"HEAD"}):
            op = dict(docs.get(method.lower(), {}))
            op.setdefault("summary", POST_ONLY if docs.keys() == {"post"} else _summary(route))
            op.setdefault("tags", [_tag(path)])
            if path.startswith("/app") and path not in PUBLIC_PAGES:
                op.setdefault("description", "A web page (HTML); forms need the page's CSRF token.")
            item[method.lower()] = op
    return paths


def _summary(route: Route) -> str:
    doc = (getattr(route.endpoint, "__doc__", None) or "").strip()
    return " ".join(doc.split("\n\n")[0].split())  # empty: the unit test asks for a summary


def _tag(path: str) -> str:
    for prefix, tag in (("/app", "web pages"), ("/xapi/jobs", "jobs"), ("/xapi/dicomscp", "dicomscp"),
                        ("/xapi", "xapi"), ("/data/prearchive", "prearchive"),
                        ("/data/services/prearchive", "prearchive"), ("/data/search", "search")):  # fmt: skip
        if path.startswith(prefix) or path.startswith(prefix.replace("/data", "/REST")):
            return tag
    return "site"


def _with_path_params(path: str, item: dict[str, Any]) -> None:
    """Declare every ``{name}`` of the path once, at the path level, with its description and example."""
    names = _PARAM.findall(path)
    params = []
    for name in names:
        doc, example = PATH_PARAMS.get(name, ("", "x"))
        if name == "rest":
            example = REST_EXAMPLES.get(path, example)
        param = arc.path_param(name, doc)
        param["example"] = example
        if name == "setting":
            param["schema"] = {"type": "string", "enum": list(project_settings.SETTINGS)}
        params.append(param)
    if params:
        item["parameters"] = params
    for method, op in item.items():
        if method != "parameters":
            op.setdefault("parameters", [])
            op.setdefault(
                "responses", {"default": {"description": "See the summary; errors are text/plain."}}
            )


def build(routes: Iterable[BaseRoute]) -> Document:
    paths = route_operations(routes)
    for path, item in arc.tree("/data"):
        paths.setdefault(path, {}).update(item)
    for path, item in paths.items():
        _with_path_params(path, item)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "xnatd",
            "version": __version__,
            "description": (
                "The XNAT-compatible REST API of xnatd (/data, /REST, /xapi) and its web pages (/app). "
                f"Archive paths also answer under /REST and /data/archive; archive kinds: "
                f"{', '.join(sorted({A.PROJECT, A.SUBJECT, A.EXPERIMENT, *A.CHILD_COLLECTIONS}))}."
            ),
        },
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic", "description": "Password or alias token."},
                "session": {"type": "apiKey", "in": "cookie", "name": "JSESSIONID"},
            }
        },
        "security": [{"basic": []}, {"session": []}],
        "paths": dict(sorted(paths.items())),
    }


async def document(request: Request) -> Response:
    """``GET /xapi/openapi.json`` (and ``/xapi/v2/api-docs``): built once per app from its routes."""
    state = request.app.state
    if getattr(state, "openapi", None) is None:
        state.openapi = build(request.app.routes)
    return JSONResponse(state.openapi)
