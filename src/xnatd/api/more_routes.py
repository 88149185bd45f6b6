"""Routes of XNAT's services beyond the archive tree: the configuration service, the anonymization
API, workflows, stored searches, the site configuration, DICOM dumps, catalog refreshes, the user cache.

``app.routes`` places each group where Starlette must see it: the ``/data`` ones before the archive
tree's catch-all, ``xapi_before`` before the routes whose ``{name}`` would swallow their words
(``/xapi/users/profiles``, ``/xapi/schemas/datatypes``), ``xapi_after`` after the fixed ones they
would shadow (``/xapi/siteConfig/{key}`` after ``/xapi/siteConfig/buildInfo``).
"""

from __future__ import annotations

from starlette.routing import Match, Route
from starlette.types import Scope

from xnatd.api import (
    anonymize,
    config,
    data_services,
    datatypes,
    dicomscp,
    direct_archive,
    prearchive,
    site_config,
    stored_searches,
    user_cache,
    users,
    workflows,
)  # fmt: skip

CONFIG = ["GET", "PUT", "DELETE"]
WORKFLOWS = ["GET", "PUT", "POST"]
CACHE = ["GET", "PUT", "POST", "DELETE"]


class Exact(Route):
    """A route that is the last word on its path: a method it does not take answers 405 here,
    instead of falling through to the archive tree's catch-all behind it (which takes every
    method and would answer 404 for a path it does not know)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        return (Match.FULL, child) if match is Match.PARTIAL else (match, child)


def data_routes(root: str) -> list[Route]:
    """Routes under ``/data`` (or ``/REST``), placed before the archive tree's catch-all."""
    out: list[Route] = [
        Exact(f"{root}/prearchive", prearchive.prearchive_endpoint, methods=["GET"]),
        Exact(f"{root}/config", config.config, methods=["GET"]),
        Exact(f"{root}/config/{{rest:path}}", config.config, methods=CONFIG),
        Exact(f"{root}/workflows", workflows.workflows, methods=WORKFLOWS),
        Exact(f"{root}/workflows/{{id}}", workflows.workflows, methods=WORKFLOWS),
        Exact(f"{root}/services/workflows", workflows.pipeline_status, methods=["GET"]),
        Exact(f"{root}/services/workflows/{{rest:path}}", workflows.pipeline_status, methods=["GET"]),
        Exact(f"{root}/services/dicomdump", data_services.dicomdump, methods=["GET"]),
        Exact(f"{root}/services/refresh/catalog", data_services.refresh_catalog, methods=["POST"]),
        Exact(f"{root}/status/{{transaction}}", data_services.status, methods=["GET", "POST", "DELETE"]),
        Exact(f"{root}/user/cache/resources", user_cache.resources, methods=["GET"]),
        Exact(f"{root}/user/cache/resources/{{name}}", user_cache.resource, methods=CACHE),
        Exact(f"{root}/user/cache/resources/{{name}}/files", user_cache.resource, methods=CACHE),
        Exact(
            f"{root}/user/cache/resources/{{name}}/files/{{path:path}}", user_cache.cached_file, methods=CACHE
        ),
        Exact(f"{root}/search/saved", stored_searches.saved_list, methods=["GET"]),
        Exact(
            f"{root}/search/saved/{{id}}", stored_searches.saved_one, methods=["GET", "PUT", "POST", "DELETE"]
        ),
        Exact(f"{root}/search/saved/{{id}}/results", stored_searches.saved_results, methods=["GET"]),
    ]
    for prefix in ("", "/archive"):
        project = f"{root}{prefix}/projects/{{project}}"
        out += [
            Exact(f"{root}{prefix}/scanners", data_services.scanners, methods=["GET"]),
            Exact(f"{root}{prefix}/scan_types", data_services.scan_types, methods=["GET"]),
            Exact(f"{project}/scanners", data_services.scanners, methods=["GET"]),
            Exact(f"{project}/scan_types", data_services.scan_types, methods=["GET"]),
            Exact(f"{project}/config", config.config, methods=["GET"]),
            Exact(f"{project}/config/{{rest:path}}", config.config, methods=CONFIG),
            Exact(f"{project}/subjects/{{subject}}/experiments/{{experiment}}/workflows",
                  workflows.experiment_workflows, methods=["GET"]),
            Exact(f"{project}/experiments/{{experiment}}/workflows", workflows.experiment_workflows,
                  methods=["GET"]),
            Exact(f"{root}{prefix}/experiments/{{experiment}}/workflows", workflows.experiment_workflows,
                  methods=["GET"]),
        ]  # fmt: skip
    return out


def xapi_before() -> list[Route]:
    return [
        Route("/xapi/users/profiles", users.user_profiles, methods=["GET"]),
        Route("/xapi/schemas/datatypes", datatypes.data_types, methods=["GET"]),
        Route("/xapi/schemas/datatypes/searchable", datatypes.searchable, methods=["GET"]),
        Route("/xapi/schemas/datatypes/names/{data_type}", datatypes.names, methods=["GET"]),
        Route("/xapi/schemas/{namespace}/{schema}", datatypes.schema_in_folder, methods=["GET"]),
        Route("/xapi/users/profile/{name}", users.user_profile, methods=["GET"]),
        Route("/xapi/dicomscp/identifiers", dicomscp.identifiers, methods=["GET", "PUT"]),
        Route("/xapi/dicomscp/identifiers/{bean}", dicomscp.identifier, methods=["GET", "PUT"]),
    ]


def xapi_after() -> list[Route]:
    return [
        Route("/xapi/siteConfig", site_config.site_config, methods=["GET", "POST"]),
        Route("/xapi/siteConfig/uptime", site_config.uptime, methods=["GET"]),
        Route("/xapi/siteConfig/uptime/display", site_config.uptime_display, methods=["GET"]),
        Route("/xapi/siteConfig/{key}", site_config.site_config_key, methods=["GET", "POST"]),
        Route("/xapi/direct-archive", direct_archive.sessions, methods=["GET", "POST"]),
        Route("/xapi/direct-archive/{id}", direct_archive.delete, methods=["DELETE"]),
        Route("/xapi/direct-archive/{project}/{tag}/{name}", direct_archive.session, methods=["GET", "POST"]),
        Route("/xapi/archive/upload/xml", data_services.upload_xml, methods=["POST"]),
        Route("/xapi/plugins", site_config.plugins, methods=["GET"]),
        Route("/xapi/plugins/{plugin}", site_config.plugin, methods=["GET"]),
        Route("/xapi/anonymize/default", anonymize.default_script, methods=["GET"]),
        Route("/xapi/anonymize/site", anonymize.script, methods=["GET", "PUT"]),
        Route("/xapi/anonymize/site/enabled", anonymize.enabled, methods=["GET", "PUT"]),
        Route("/xapi/anonymize/projects/{project}", anonymize.script, methods=["GET", "PUT"]),
        Route("/xapi/anonymize/projects/{project}/enabled", anonymize.enabled, methods=["GET", "PUT"]),
        Route("/xapi/anonymize/dryrun", anonymize.dry_run, methods=["POST"]),
    ]


def root_routes() -> list[Route]:
    return [Route("/login", site_config.form_login, methods=["POST"])]
