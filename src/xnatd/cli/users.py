"""``xnatd user add|passwd|list|disable|enable``: manage accounts from the shell, as the site operator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from xnatd import config
from xnatd.errors import XnatdError
from xnatd.services.access import users
from xnatd.services.access.context import SYSTEM, Context
from xnatd.services.operations.bootstrap import open_context

data_option = click.option("--data", type=click.Path(path_type=Path), help="Data folder [XNATD_DATA, ./data]")
database_option = click.option("--database", "database_url", help="Database URL [XNATD_DATABASE_URL]")


def _with_context(func: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(data: Path | None, database_url: str | None, **kw: Any) -> None:
        ctx = open_context(config.load({"data": data, "database_url": database_url}))
        try:
            func(ctx, **kw)
        except XnatdError as exc:  # a refusal (weak password, user exists): its reason, no traceback
            raise click.ClickException(str(exc)) from None
        finally:
            ctx.db.dispose()

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return data_option(database_option(wrapper))


def _password(value: str | None) -> str:
    if value:
        return value
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group("user")
def user() -> None:
    """Manage user accounts."""


@user.command("add")
@click.argument("username")
@click.option("--password", help="The password (prompted for when not given)")
@click.option("--email", default="")
@click.option("--first-name", default="")
@click.option("--last-name", default="")
@click.option("--admin", is_flag=True, help="Make the user a site administrator")
@_with_context
def add(
    ctx: Context,
    username: str,
    password: str | None,
    email: str,
    first_name: str,
    last_name: str,
    admin: bool,
) -> None:
    """Create a user."""
    doc = {
        "username": username,
        "password": _password(password),
        "email": email,
        "firstName": first_name,
        "lastName": last_name,
        "admin": admin,
        "enabled": True,
        "verified": True,
    }
    users.create(ctx, SYSTEM, doc)
    click.echo(f"Created user {username}" + (" (site administrator)" if admin else ""))


@user.command("passwd")
@click.argument("username")
@click.option("--password", help="The new password (prompted for when not given)")
@_with_context
def passwd(ctx: Context, username: str, password: str | None) -> None:
    """Set a user's password (their sessions and alias tokens end)."""
    users.update(ctx, SYSTEM, username, {"password": _password(password)})
    click.echo(f"Password of {username} changed")


@user.command("list")
@_with_context
def list_users(ctx: Context) -> None:
    """List users."""
    for name in users.names(ctx, SYSTEM):
        doc = users.get(ctx, SYSTEM, name)
        flags = ("admin " if doc["admin"] else "") + ("" if doc["enabled"] else "disabled")
        click.echo(f"{name:24} {doc['firstName']} {doc['lastName']:20} {doc['email']:30} {flags}".rstrip())


@user.command("disable")
@click.argument("username")
@_with_context
def disable(ctx: Context, username: str) -> None:
    """Disable a user: their password stops working, their tokens and sessions end."""
    users.update(ctx, SYSTEM, username, {"enabled": False})
    click.echo(f"Disabled {username}")


@user.command("enable")
@click.argument("username")
@_with_context
def enable(ctx: Context, username: str) -> None:
    """Enable a user again."""
    users.update(ctx, SYSTEM, username, {"enabled": True})
    click.echo(f"Enabled {username}")
