"""XNAT's site configuration (``/xapi/siteConfig``): its preference names, with xnatd's values.

The keys that describe something xnatd takes from its own settings (site ID, URL, login rules, the
data folders...) show those settings and cannot be changed here: a value posted for one of them is
accepted only when it is the value in force (scripts that initialise a site post the full map back),
else refused with the setting to change instead. Every other key is XNAT's preference store: a site
administrator sets it, everyone reads it back (tools keep their own settings there), and its
default is XNAT's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from xnatd.config import Settings, env_name
from xnatd.db import site_config as q
from xnatd.errors import Forbidden, InvalidInput, NotFound
from xnatd.services import access
from xnatd.services.access.context import Actor, Context

STARTED = time.time()

# key -> (setting it comes from, how the setting becomes XNAT's value)
FROM_SETTINGS: dict[str, tuple[str, Callable[[Settings], Any]]] = {
    "siteId": ("site_id", lambda s: s.site_id),
    "siteUrl": ("site_url", lambda s: s.site_url),
    "requireLogin": ("guest_access", lambda s: not s.guest_access),
    "uiAllowNonAdminProjectCreation": ("allow_project_creation", lambda s: s.allow_project_creation),
    "sessionTimeout": ("session_timeout", lambda s: f"{s.session_timeout // 60} minutes"),
    "aliasTokenTimeout": ("token_timeout", lambda s: f"{s.token_timeout // 3600} hours"),
    "maxFailedLogins": ("login_max_failures", lambda s: s.login_max_failures),
    "maxFailedLoginsLockoutDuration": ("login_lockout", lambda s: f"{s.login_lockout} seconds"),
    "enableDicomReceiver": ("no_dicom", lambda s: not s.no_dicom),
    "archivePath": ("data", lambda s: str(s.archive_dir.resolve())),
    "prearchivePath": ("data", lambda s: str(s.prearchive_dir.resolve())),
    "cachePath": ("data", lambda s: str((s.data / "cache").resolve())),
    "buildPath": ("data", lambda s: str(s.tmp_dir.resolve())),
    "pipelinePath": ("data", lambda s: str(s.jobs_dir.resolve())),
}
# XNAT's defaults for the preferences xnatd keeps without acting on them
DEFAULTS: dict[str, Any] = {
    "initialized": True,
    "siteDescriptionType": "Text",
    "siteDescriptionText": "",
    "siteLoginLanding": "/screens/QuickSearch.vm",
    "siteHome": "/screens/QuickSearch.vm",
    "adminEmail": "",
    "userRegistration": False,
    "enableCsrfToken": True,
    "checksums": True,
    "dumpImageTypes": "DICOM, secondary",
    "zipExtensions": "zip,jar,rar,ear,gar,mrb",
    "enableProjectAppletScript": False,
    "enableSitewideAnonymizationScript": False,
    "sitewideAnonymizationScript": "",
    "enableSitewideSeriesImportFilter": False,
    "sitewideSeriesImportFilterMode": "blacklist",
    "sitewideSeriesImportFilter": "",
    "reloadPrearcDatabaseOnStartup": False,
    "emailVerification": False,
    "passwordComplexity": "^.*$",
    "passwordComplexityMessage": "Password is not sufficiently complex.",
    "restrictUserListAccessToAdmins": True,
    "uiDebugExtensionPoints": False,
    "securityChannel": "any",
}
# what a user who is not a site administrator may read (XNAT's open preferences)
PUBLIC = frozenset(
    {
        "siteId", "siteUrl", "siteDescriptionType", "siteDescriptionText", "siteLoginLanding",
        "siteHome", "requireLogin", "userRegistration", "enableCsrfToken", "initialized",
        "uiAllowNonAdminProjectCreation", "sessionTimeout", "passwordComplexityMessage", "checksums",
    }
)  # fmt: skip
MAX_VALUE = 1 << 20


def _current(ctx: Context, stored: Mapping[str, Any]) -> dict[str, Any]:
    values = {**DEFAULTS, **stored}
    values.update({key: value(ctx.settings) for key, (_, value) in FROM_SETTINGS.items()})
    return values


def _readable(actor: Actor, key: str) -> bool:
    return actor.is_admin or key in PUBLIC


def all_values(ctx: Context, actor: Actor) -> dict[str, Any]:
    """``GET /xapi/siteConfig``: every preference the caller may read."""
    access.require_user(actor)
    with ctx.db.read() as conn:
        values = _current(ctx, q.values(conn))
    return {k: v for k, v in sorted(values.items()) if _readable(actor, k)}


def value(ctx: Context, actor: Actor, key: str) -> Any:
    """``GET /xapi/siteConfig/{key}``."""
    access.require_user(actor)
    with ctx.db.read() as conn:
        values = _current(ctx, q.values(conn))
    if key not in values:
        raise NotFound(f"No site configuration property named {key}")
    if not _readable(actor, key):
        raise Forbidden(f"User {actor.username} may not read the site configuration property {key}")
    return values[key]


def set_values(ctx: Context, actor: Actor, values: Mapping[str, Any]) -> None:
    """``POST /xapi/siteConfig`` (a map) and ``POST /xapi/siteConfig/{key}`` (one value), for site
    administrators; all or nothing."""
    access.require_user(actor)
    if not actor.is_admin:
        raise Forbidden("Only site administrators may change the site configuration")
    for key, new in values.items():
        _check(ctx, key, new)
    with ctx.db.write() as conn:
        for key, new in values.items():
            if key not in FROM_SETTINGS:
                q.put(conn, key, new, actor.username)


def _check(ctx: Context, key: str, new: Any) -> None:
    if not key or len(key) > 255:
        raise InvalidInput("A site configuration property needs a name of 1 to 255 characters")
    if len(json.dumps(new)) > MAX_VALUE:
        raise InvalidInput(f"The value of {key} is larger than 1 MiB")
    if key in FROM_SETTINGS:
        setting, current = FROM_SETTINGS[key]
        if _same(current(ctx.settings), new):
            return
        raise InvalidInput(
            f"{key} comes from xnatd's setting {setting} (environment variable {env_name(setting)}); "
            "change it there and restart"
        )


def _same(current: Any, new: Any) -> bool:
    """A posted value equals the one in force (form posts send every value as text)."""
    if isinstance(current, bool):
        return str(new).strip().lower() == str(current).lower()
    return str(new).strip() == str(current)


def parse_single(body: bytes, media_type: str) -> Any:
    """The body of ``POST /xapi/siteConfig/{key}``: JSON when sent as JSON (a bare string too), else
    the text as it is, as XNAT's ``text/plain`` form."""
    text = body.decode("utf-8", "replace")
    if media_type == "application/json":
        try:
            return json.loads(text) if text.strip() else ""
        except json.JSONDecodeError:
            return text
    return text


def uptime() -> dict[str, str]:
    """``/xapi/siteConfig/uptime``: XNAT's map of days, hours, minutes and seconds."""
    seconds = int(time.time() - STARTED)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return {"days": str(days), "hours": str(hours), "minutes": str(minutes), "seconds": str(secs)}


def uptime_display() -> str:
    up = uptime()
    return f"{up['days']} days, {up['hours']} hours, {up['minutes']} minutes, {up['seconds']} seconds"
