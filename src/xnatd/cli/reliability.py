"""``xnatd verify``, ``xnatd backup`` and ``xnatd restore`` (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import click

from xnatd import config
from xnatd.domain.wording import count
from xnatd.errors import XnatdError
from xnatd.services.operations import backup as backups
from xnatd.services.operations import verify as verifying
from xnatd.services.operations.bootstrap import open_context

_data = click.option("--data", type=click.Path(path_type=Path), help="Data folder [XNATD_DATA, ./data]")
_database = click.option("--database", "database_url", help="Database URL [XNATD_DATABASE_URL]")


@click.command("verify")
@click.option("--project", help="Only this project's files and prearchive sessions")
@click.option("--repair", is_flag=True, help="Fix what is safe: temporaries, stuck sessions, orphans")
@click.option("--no-md5", is_flag=True, help="Check sizes only (much faster on a large archive)")
@click.option(
    "--stale-after", type=float, default=verifying.STALE_AFTER, show_default=True,
    help="Seconds after which a temporary or a transient session counts as left behind",
)  # fmt: skip
@_data
@_database
def verify_command(
    project: str | None,
    repair: bool,
    no_md5: bool,
    stale_after: float,
    data: Path | None,
    database_url: str | None,
) -> None:
    """Check the database against the files; exit 1 when anything is wrong (with --repair: when
    anything is left that needs a human), 0 when clean."""
    ctx = open_context(config.load({"data": data, "database_url": database_url}), recover=False)
    try:
        report = verifying.verify(ctx, project, md5=not no_md5, repair=repair, stale_after=stale_after)
    finally:
        ctx.db.dispose()
    for p in report.problems:
        line = f"{p.kind:9} {p.where}  {p.detail}"
        click.echo(line + (f"  [repaired: {p.fixed}]" if p.fixed else ("  [NOT FIXED]" if repair else "")))
    left = len(report.unfixed)
    click.echo(
        f"{count(report.checked_files, 'file')} checked, {count(len(report.problems), 'problem')}"
        + (
            f", {len(report.problems) - left} repaired, {left} {'needs' if left == 1 else 'need'} a human"
            if repair
            else ""
        ),
        err=True,
    )
    raise SystemExit(1 if report.unfixed else 0)


@click.command("backup")
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--no-md5", is_flag=True, help="Check each copy's size only (faster on a large archive)")
@_data
@_database
def backup_command(dest: Path, no_md5: bool, data: Path | None, database_url: str | None) -> None:
    """Copy the database (a consistent snapshot) and every file it names into DEST, while the
    server runs; DEST must be new or empty."""
    ctx = open_context(config.load({"data": data, "database_url": database_url}), recover=False)
    try:
        out = backups.backup(ctx, dest, md5=not no_md5)
    except XnatdError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ctx.db.dispose()
    _summary("backed up", out)


@click.command("restore")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--data", type=click.Path(path_type=Path), required=True, help="New (empty) data folder")
@click.option("--database", "database_url", help="An empty PostgreSQL database (PostgreSQL backups)")
def restore_command(src: Path, data: Path, database_url: str | None) -> None:
    """Restore the backup in SRC into an empty data folder and check every file against the manifest."""
    try:
        out = backups.restore(src, data, database_url)
    except XnatdError as exc:
        raise click.ClickException(str(exc)) from None
    _summary("restored", out)


def _summary(verb: str, out: backups.Outcome) -> None:
    for p in out.problems:
        click.echo(f"problem  {p}")
    sizes = f"{count(out.bytes, 'byte')}, {out.linked} hard-linked"
    click.echo(f"{verb} {count(out.files, 'file')} ({sizes})", err=True)
    if out.problems:
        raise SystemExit(1)
