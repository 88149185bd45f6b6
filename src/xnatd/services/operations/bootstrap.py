"""Open a site: data folders, database schema, first admin."""

from __future__ import annotations

from xnatd.config import Settings
from xnatd.db.engine import Database
from xnatd.services.access import auth
from xnatd.services.access.context import Context
from xnatd.services.operations import verify


def open_context(settings: Settings, recover: bool = True) -> Context:
    """``recover``: first clear what a crashed process left behind (old temporaries, prearchive
    sessions stuck mid-operation; see services/operations/verify.py). Safe when several processes
    start at once."""
    settings.ensure_dirs()
    db = Database(settings.database)
    db.migrate()
    ctx = Context(settings=settings, db=db)
    auth.bootstrap(ctx)
    if recover:
        verify.recover(ctx, settings.recover_after)
    return ctx
