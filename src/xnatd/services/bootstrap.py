"""Open a site: data folders, database schema, first admin."""

from __future__ import annotations

from xnatd.config import Settings
from xnatd.db.engine import Database
from xnatd.services import auth
from xnatd.services.context import Context


def open_context(settings: Settings) -> Context:
    settings.ensure_dirs()
    db = Database(settings.database)
    db.migrate()
    ctx = Context(settings=settings, db=db)
    auth.bootstrap(ctx)
    return ctx
