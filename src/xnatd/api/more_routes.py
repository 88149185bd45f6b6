"""Routes of XNAT's services beyond the archive tree: the configuration service, workflows, stored
searches, the site configuration, DICOM dumps, catalog refreshes, the user cache.

``app.routes`` places each group where Starlette must see it: the ``/data`` ones before the archive
tree's catch-all, ``xapi_before`` before the routes whose ``{name}`` would swallow their words
(``/xapi/users/profiles``, ``/xapi/schemas/datatypes``), ``xapi_after`` after the fixed ones they
would shadow (``/xapi/siteConfig/{key}`` after ``/xapi/siteConfig/buildInfo``).
"""

from __future__ import annotations

from starlette.routing import Route

from xnatd.api import config, dicomscp, site_config, stored_searches, users, workflows

ALL = ["GET", "HEAD", "PUT", "POST", "DELETE"]


def data_routes(root: str) -> list[Route]:
    """Routes under ``/data`` (or ``/REST``), placed before the archive tree's catch-all."""
    out = [
        Route(f"{root}/config", config.config, methods=ALL),
        Route(f"{root}/config/{{rest:path}}", config.config, methods=ALL),
        Route(f"{root}/workflows", workflows.workflows, methods=ALL),
        Route(f"{root}/workflows/{{id}}", workflows.workflows, methods=ALL),
        Route(f"{root}/services/workflows", workflows.pipeline_status, methods=["GET"]),
        Route(f"{root}/services/workflows/{{rest:path}}", workflows.pipeline_status, methods=["GET"]),
        Route(f"{root}/search/saved", stored_searches.saved_list, methods=["GET"]),
        Route(
            f"{root}/search/saved/{{id}}", stored_searches.saved_one, methods=["GET", "PUT", "POST", "DELETE"]
        ),
        Route(f"{root}/search/saved/{{id}}/results", stored_searches.saved_results, methods=["GET"]),
    ]
    for prefix in ("", "/archive"):
        project = f"{root}{prefix}/projects/{{project}}"
        out += [
            Route(f"{project}/config", config.config, methods=ALL),
            Route(f"{project}/config/{{rest:path}}", config.config, methods=ALL),
            Route(f"{project}/subjects/{{subject}}/experiments/{{experiment}}/workflows",
                  workflows.experiment_workflows, methods=["GET"]),
            Route(f"{project}/experiments/{{experiment}}/workflows", workflows.experiment_workflows,
                  methods=["GET"]),
            Route(f"{root}{prefix}/experiments/{{experiment}}/workflows", workflows.experiment_workflows,
                  methods=["GET"]),
        ]  # fmt: skip
    return out


def xapi_before() -> list[Route]:
    return [
        Route("/xapi/users/profiles", users.user_profiles, methods=["GET"]),
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
        Route("/xapi/plugins", site_config.plugins, methods=["GET"]),
        Route("/xapi/plugins/{plugin}", site_config.plugin, methods=["GET"]),
    ]


def root_routes() -> list[Route]:
    return [Route("/login", site_config.form_login, methods=["POST"])]
