"""OpenAPI details of the routes in ``more_routes``: summaries, query parameters and bodies, by path
(``openapi.py`` merges them into its tables), and the examples of their path parameters."""

from __future__ import annotations

from typing import Any

from xnatd.api import openapi_archive as arc

STRING = {"type": "string"}
BOOL = {"type": "string", "enum": ["true", "false"]}
JSON_OBJECT = {"type": "object"}
XML_BODY = {"required": True, "content": {"text/xml": {"schema": STRING}}}
TEXT_BODY = {"required": False, "content": {"text/plain": {"schema": STRING}}}
FORM_STATUS = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {"status": STRING, "message": STRING}}
        }
    },
}
LOGIN_FORM = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {"type": "object", "properties": {"username": STRING, "password": STRING}}
        }
    },
}


def _q(*names: str) -> list[dict[str, Any]]:
    return [arc.query(n, STRING) for n in names]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": False, "content": {"application/json": {"schema": schema}}}


PATH_PARAMS: dict[str, tuple[str, str]] = {
    "transaction": ("Transaction ID of a status queue.", "T1"),
    "bean": ("DICOM object identifier's bean ID, or default.", "dicomObjectIdentifier"),
    "plugin": ("Plugin ID.", "nosuchplugin"),
    "data_type": ("A data type (any of its spellings), or all.", "xnat:mrSessionData"),
    "namespace": ("Schema folder.", "xnat"),
    "schema": ("Schema name.", "xnat"),
    "tag": ("StudyInstanceUID.", "1.2.3"),
    "path": ("Path of a file in the cache folder.", "notes.txt"),
}
REST_EXAMPLES = {
    "/data/config/{rest}": "tool/path",
    "/data/projects/{project}/config/{rest}": "tool/path",
    "/data/archive/projects/{project}/config/{rest}": "tool/path",
    "/data/services/workflows/{rest}": "Transferred",
}

CONFIG_GET = _q("contents", "meta", "version", "action", "accept-not-found", "format")
CONFIG_PUT = _q("inbody", "status", "unversioned", "reason")
WORKFLOW_PARAMS = [arc.query(f"wrk:workflowData/{a}", STRING) for a in (
    "id", "pipeline_name", "launch_time", "data_type", "status", "ExternalID", "scan_id", "step_description",
    "percentageComplete",
)]  # fmt: skip


def _config_docs() -> dict[str, dict[str, dict[str, Any]]]:
    docs: dict[str, dict[str, dict[str, Any]]] = {}
    for base in ("/data", "/data/projects/{project}", "/data/archive/projects/{project}"):
        scope = "the site's" if base == "/data" else "the project's"
        docs[f"{base}/config"] = {"get": {"summary": f"XNAT's configuration service: {scope} tools."}}
        docs[f"{base}/config/{{rest}}"] = {
            "get": {
                "summary": f"{scope.capitalize()} documents of a tool, or one document (TOOL/PATH).",
                "parameters": CONFIG_GET,
            },
            "put": {
                "summary": "Store a document (a new version) or set its status (owners; site: admins).",
                "parameters": CONFIG_PUT,
                "requestBody": TEXT_BODY,
            },
            "delete": {"summary": "Disable a document (XNAT keeps its history)."},
        }
    return docs


def _workflow_docs() -> dict[str, dict[str, dict[str, Any]]]:
    docs: dict[str, dict[str, dict[str, Any]]] = {
        "/data/workflows": {
            "get": {
                "summary": "Workflows the caller may read; with pipeline_name, id and launch_time: that one.",
                "parameters": [*WORKFLOW_PARAMS, *arc.listing_params()],
            },
            "put": {
                "summary": "Create or update a workflow (wrk:workflowData parameters or <wrk:Workflow>).",
                "parameters": WORKFLOW_PARAMS,
                "requestBody": XML_BODY | {"required": False},
            },
            "post": {"summary": "As PUT.", "parameters": WORKFLOW_PARAMS},
        },
        "/data/workflows/{id}": {
            "get": {"summary": "One workflow (XML, format=json).", "parameters": _q("format")},
            "put": {
                "summary": "Update a workflow (its creator or an administrator).",
                "parameters": WORKFLOW_PARAMS,
            },
            "post": {"summary": "As PUT.", "parameters": WORKFLOW_PARAMS},
        },
        "/data/services/workflows": {
            "get": {
                "summary": "XNAT's pipeline status service.",
                "parameters": _q("project", "experiment", "status", "display", "format"),
            },
        },
        "/data/services/workflows/{rest}": {
            "get": {
                "summary": "Pipeline status by pipeline name(s), or workflowid/{id}.",
                "parameters": _q("project", "experiment", "status", "display", "format"),
            },
        },
    }
    for path in ("/data/projects/{project}/subjects/{subject}/experiments/{experiment}/workflows",
                 "/data/projects/{project}/experiments/{experiment}/workflows",
                 "/data/experiments/{experiment}/workflows"):  # fmt: skip
        summary = {"get": {"summary": "The experiment's workflows.", "parameters": arc.listing_params()}}
        docs[path] = summary
        docs[path.replace("/data/", "/data/archive/", 1)] = summary
    return docs


def _data_docs() -> dict[str, dict[str, dict[str, Any]]]:
    summaries: dict[str, dict[str, dict[str, Any]]] = {
        "/data/prearchive": {"get": {"summary": "The prearchive (as /data/prearchive/projects)."}},
        "/data/services/dicomdump": {
            "get": {
                "summary": "XNAT's DICOM dump of a session, scan or file (src=).",
                "parameters": _q("src", "field", "format"),
            }
        },
        "/data/services/refresh/catalog": {
            "post": {
                "summary": "Refresh resources' file rows from their folders.",
                "parameters": _q("resource", "options"),
            }
        },
        "/data/status/{transaction}": {
            "get": {"summary": "A status queue's messages.", "parameters": _q("format")},
            "post": {"summary": "Add a message (status, message).", "requestBody": FORM_STATUS},
            "delete": {"summary": "Empty the queue."},
        },
        "/data/search/saved": {
            "get": {"summary": "Stored searches.", "parameters": _q("includeTag", "all", "format")}
        },
        "/data/search/saved/{id}": {
            "get": {"summary": "A stored search (xdat:stored_search XML)."},
            "put": {
                "summary": "Save a search bundle under this ID.",
                "parameters": _q("inbody", "saveAs"),
                "requestBody": XML_BODY,
            },
            "post": {"summary": "As PUT.", "requestBody": XML_BODY},
            "delete": {"summary": "Leave (or, for its last user, delete) a stored search."},
        },
        "/data/search/saved/{id}/results": {
            "get": {"summary": "Run a stored search.", "parameters": _q("format", "sortBy", "sortOrder")}
        },
        "/data/user/cache/resources": {"get": {"summary": "The caller's cache folders."}},
        "/data/user/cache/resources/{name}/files/{path}": {
            "get": {"summary": "A cached file."},
            "put": {
                "summary": "Store a file (raw body or one multipart file).",
                "parameters": _q("inbody", "extract"),
                "requestBody": arc.upload_body(),
            },
            "post": {"summary": "As PUT.", "requestBody": arc.upload_body()},
            "delete": {"summary": "Delete files (comma-separated paths)."},
        },
    }
    folder: dict[str, dict[str, Any]] = {
        "get": {"summary": "Files of a cache folder (format=zip: all of them).", "parameters": _q("format")},
        "put": {"summary": "Create the folder (or upload into it)."},
        "post": {
            "summary": "Upload multipart files into it.",
            "parameters": _q("extract"),
            "requestBody": arc.upload_body(),
        },
        "delete": {"summary": "Delete the folder."},
    }
    summaries["/data/user/cache/resources/{name}"] = folder
    summaries["/data/user/cache/resources/{name}/files"] = folder
    for prefix in ("/data", "/data/archive"):
        listing = _q("table", "format")
        summaries[f"{prefix}/scanners"] = {
            "get": {"summary": "Scanners of a session type.", "parameters": listing}
        }
        summaries[f"{prefix}/scan_types"] = {
            "get": {"summary": "Scan types of a scan type.", "parameters": listing}
        }
        project = f"{prefix}/projects/{{project}}"
        summaries[f"{project}/scanners"] = {
            "get": {"summary": "The project's scanners.", "parameters": listing}
        }
        summaries[f"{project}/scan_types"] = {
            "get": {"summary": "The project's scan types.", "parameters": listing}
        }
    return summaries


def _xapi_docs() -> dict[str, dict[str, dict[str, Any]]]:
    return {
        "/login": {
            "post": {
                "summary": "XNAT's form login: a session cookie and a redirect home.",
                "security": [],
                "requestBody": LOGIN_FORM,
            }
        },
        "/xapi/siteConfig": {
            "get": {"summary": "Site configuration values the caller may read."},
            "post": {"summary": "Set values (administrators).", "requestBody": _json(JSON_OBJECT)},
        },
        "/xapi/siteConfig/{key}": {
            "get": {"summary": "One site configuration value."},
            "post": {"summary": "Set one value (administrators).", "requestBody": TEXT_BODY},
        },
        "/xapi/siteConfig/uptime": {"get": {"summary": "Uptime: days, hours, minutes, seconds."}},
        "/xapi/siteConfig/uptime/display": {"get": {"summary": "Uptime as text."}},
        "/xapi/plugins": {"get": {"summary": "Installed XNAT plugins (none)."}},
        "/xapi/plugins/{plugin}": {"get": {"summary": "One plugin (404: none installed)."}},
        "/xapi/users/profiles": {"get": {"summary": "Every user's JSON object (administrators)."}},
        "/xapi/users/profile/{name}": {"get": {"summary": "One user's JSON object."}},
        "/xapi/dicomscp/identifiers": {
            "get": {"summary": "DICOM object identifiers."},
            "put": {"summary": "Reload them (administrators)."},
        },
        "/xapi/dicomscp/identifiers/{bean}": {
            "get": {"summary": "An identifier's implementation."},
            "put": {"summary": "Reload it (administrators)."},
        },
        "/xapi/schemas/datatypes": {"get": {"summary": "Every data type."}},
        "/xapi/schemas/datatypes/searchable": {"get": {"summary": "The image session types."}},
        "/xapi/schemas/datatypes/names/{data_type}": {
            "get": {"summary": "A data type's spellings (or all)."}
        },
        "/xapi/schemas/{namespace}/{schema}": {"get": {"summary": "An XSD by folder and name."}},
        "/xapi/direct-archive": {
            "get": {"summary": "Direct-Archive sessions (default page)."},
            "post": {"summary": "A page of Direct-Archive sessions.", "requestBody": _json(JSON_OBJECT)},
        },
        "/xapi/direct-archive/{id}": {"delete": {"summary": "Drop a Direct-Archive session."}},
        "/xapi/direct-archive/{project}/{tag}/{name}": {
            "get": {"summary": "One Direct-Archive session."},
            "post": {"summary": "Archive it now."},
        },
        "/xapi/archive/upload/xml": {
            "post": {
                "summary": "Store a subject or experiment XML document where it says.",
                "parameters": _q("project"),
                "requestBody": XML_BODY,
            }
        },
    }


def _anonymize_docs() -> dict[str, dict[str, dict[str, Any]]]:
    script_body = {"required": True, "content": {"text/plain": {"schema": STRING}}}
    enable = [arc.query("enable", BOOL)]
    refused = "A script that does not parse is refused (400, its line and column)."
    dry_run_form = {
        "type": "object",
        "properties": {"script": STRING, "file": {"type": "string", "format": "binary"}, "uri": STRING},
    }
    return {
        "/xapi/anonymize/default": {"get": {"summary": "XNAT's default anonymization script."}},
        "/xapi/anonymize/site": {
            "get": {"summary": "The site's anonymization script (XNAT's default until one is stored)."},
            "put": {"summary": f"Store it (administrators). {refused}", "requestBody": script_body},
        },
        "/xapi/anonymize/site/enabled": {
            "get": {"summary": "Whether the site's script is applied (true/false)."},
            "put": {"summary": "Enable or disable it (administrators).", "parameters": enable},
        },
        "/xapi/anonymize/projects/{project}": {
            "get": {"summary": "The project's anonymization script (204: it has none)."},
            "put": {"summary": f"Store it (project owners). {refused}", "requestBody": script_body},
        },
        "/xapi/anonymize/projects/{project}/enabled": {
            "get": {"summary": "Whether the project's script is applied (true/false)."},
            "put": {"summary": "Enable or disable it (project owners).", "parameters": enable},
        },
        "/xapi/anonymize/dryrun": {
            "post": {
                "summary": "Apply a script to a DICOM object sent (file) or stored (uri); nothing is "
                "stored. JSON: rejected, changes (tag, keyword, path, before, after), echo.",
                "parameters": _q("project", "subject", "session", "uri"),
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {"schema": dry_run_form},
                        "application/json": {"schema": JSON_OBJECT},
                    },
                },
            }
        },
    }


ROUTE_DOCS: dict[str, dict[str, dict[str, Any]]] = {
    **_config_docs(), **_workflow_docs(), **_data_docs(), **_xapi_docs(), **_anonymize_docs(),
}  # fmt: skip
