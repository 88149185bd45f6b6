"""``xnatd import PATH --project P [--subject S] [--session E] [--archive]``: import local DICOM.

A folder (walked), a zip/tar or a single file goes through the very service the REST import uses,
with a progress bar; sessions land in the project's prearchive (built, ready to archive), or in the
archive with ``--archive``. The command prints the URI of every session it filed.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from xnatd import config
from xnatd.errors import XnatdError
from xnatd.services.access.context import SYSTEM
from xnatd.services.ingest import import_options as io
from xnatd.services.ingest import importer
from xnatd.services.operations.bootstrap import open_context


@click.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--project", required=True, help="Project ID (or alias) to import into")
@click.option("--subject", help="Subject label (default: from PatientName)")
@click.option("--session", help="Session label (default: from PatientID)")
@click.option(
    "--archive", is_flag=True, help="Archive at once instead of leaving the sessions in the prearchive"
)
@click.option(
    "--overwrite", type=click.Choice(["none", "append", "delete"]), default="none", show_default=True
)
@click.option("--data", type=click.Path(path_type=Path), help="Data folder [XNATD_DATA, ./data]")
@click.option("--database", "database_url", help="Database URL [XNATD_DATABASE_URL]")
def import_command(
    path: Path,
    project: str,
    subject: str | None,
    session: str | None,
    archive: bool,
    overwrite: str,
    data: Path | None,
    database_url: str | None,
) -> None:
    """Import DICOM files from PATH (a folder, a zip/tar or one file)."""
    ctx = open_context(config.load({"data": data, "database_url": database_url}))
    opts = io.replace_overwrite(io.for_local_import(project, subject, session, archive), overwrite)
    try:
        total = importer.count_entries(path)
        columns = (TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task("import", total=total)
            result = importer.import_path(ctx, SYSTEM, path, opts, lambda n: bar.advance(task, n))
    except XnatdError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        ctx.db.dispose()
    click.echo(f"{result.report.summary()}", err=True)
    for uri in result.uris:
        click.echo(uri)
