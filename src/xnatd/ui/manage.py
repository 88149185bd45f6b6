"""Manage Files, on any object: its folders (XNAT resources) and, for a session, its scans' folders,
with counts and sizes; Add Folder; upload files or a whole folder; download a file, a folder or the
session as a zip (REST URLs, which take the same login cookie); delete with a confirmation.

The page's script uploads each file as the raw body of ``POST /app/upload/{archive path}/files/{name}``
so it can show progress; without the script, the form posts the files as ``multipart/form-data``.
Either way the bytes stream through ``files.upload``, exactly as a REST upload does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse, Response

from xnatd.domain import address as A
from xnatd.errors import InvalidInput, NotFound
from xnatd.services.archive import browse, files, resources
from xnatd.services.archive.files import UploadOptions, UploadPart
from xnatd.ui.web import Page, page

OBJECTS = (A.PROJECT, A.SUBJECT, A.EXPERIMENT, A.CHILD)
CHUNK = 1024 * 1024


def parse_object(rest: str) -> A.Address:
    """An archive object's path below /data (``projects/P/...``), or 404."""
    addr = A.parse(A.split_path(rest))
    if addr.kind not in OBJECTS or not addr.project or addr.extra:
        raise NotFound("Page not found")
    return addr


def parse_files(rest: str) -> A.Address:
    addr = A.parse(A.split_path(rest))
    if addr.kind not in (A.FILE, A.FILES) or not addr.project or not addr.resource:
        raise NotFound("Page not found")
    return addr


@page
async def manage_page(p: Page) -> Response:
    addr = parse_object(p.request.path_params["rest"])
    assert addr.project is not None
    if p.request.method == "POST":
        return await _action(p, addr)
    rights = await p.call(browse.rights, addr.project, addr)
    tree = await p.call(browse.file_tree, addr)
    rest = browse.rest_path(addr)
    return p.render(
        "files.html",
        addr=addr,
        rights=rights,
        tree=tree,
        rest=f"/data/{rest}/files",
        object_rest=rest,
        is_session=addr.level == "experiment",
        holders=[h.rest for h in tree],
    )


async def _action(p: Page, addr: A.Address) -> Response:
    action, here = p.field("action"), p.request.url.path
    holder = parse_object(p.field("holder") or browse.rest_path(addr))
    if action == "mkdir":
        name = p.field("folder")
        target = replace(holder, kind=A.RESOURCE, resource=name)
        params = [("format", p.field("format")), ("content", p.field("content"))]
        await p.call(resources.create_resource, target, params)
        return p.redirect(here, f"Folder {name} created.")
    if action == "upload":
        return await _form_upload(p, holder)
    if action == "delete_folder":
        asked = p.confirmation(f"Delete folder {p.field('folder')} and every file in it?")
        if asked is not None:
            return asked
        target = replace(holder, kind=A.RESOURCE, resource=p.field("folder"))
        await p.call(resources.delete_resource, target, True)
        return p.redirect(here, f"Folder {p.field('folder')} deleted.")
    if action == "delete_file":
        target = parse_files(p.field("file"))
        asked = p.confirmation(f"Delete {target.path} from folder {target.resource}?")
        if asked is not None:
            return asked
        await p.call(files.delete_files, target)
        return p.redirect(here, f"{target.path} deleted.")
    raise InvalidInput(f"Unknown action {action}")


async def _form_upload(p: Page, holder: A.Address) -> Response:
    """The form without the script: the files came as multipart parts (spooled by the parser)."""
    if not p.uploads:
        raise InvalidInput("Choose files to upload.")
    folder = p.field("folder") or "DEFAULT"
    sub = p.field("subfolder").strip("/")
    target = replace(holder, kind=A.FILES, resource=folder, path=f"{sub}/" if sub else None)
    opts = UploadOptions(overwrite=p.field("overwrite") == "on", extract=p.field("extract") == "on")
    await files.upload(p.ctx, p.actor, target, _parts(p.uploads), opts)
    return p.redirect(p.request.url.path, f"{len(p.uploads)} file(s) uploaded to {folder}.")


async def _parts(uploads: list[UploadFile]) -> AsyncIterator[UploadPart]:
    for upload in uploads:
        yield UploadPart(upload.filename, upload.content_type, _chunks(upload))


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


@page
async def upload_endpoint(p: Page) -> Response:
    """One file as the raw request body, sent by the page's script (which shows the progress)."""
    addr = parse_files(p.request.path_params["rest"])
    if addr.kind != A.FILE:
        raise InvalidInput("Give the file's name after files/")
    opts = UploadOptions(
        overwrite=p.param("overwrite") == "true",
        extract=p.param("extract") == "true",
    )
    part = UploadPart(None, p.request.headers.get("content-type"), _body(p))
    await files.upload(p.ctx, p.actor, addr, _one(part), opts)
    return PlainTextResponse("uploaded", status_code=201)


async def _one(part: UploadPart) -> AsyncIterator[UploadPart]:
    yield part


async def _body(p: Page) -> AsyncIterator[bytes]:
    try:
        async for chunk in p.request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise InvalidInput("The browser stopped sending the file") from None
