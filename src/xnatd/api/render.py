"""One renderer per format: any Table or Item becomes JSON, XML, CSV or HTML here and nowhere else."""

from __future__ import annotations

import csv
import io
import json
from html import escape
from typing import Any
from urllib.parse import quote
from xml.sax.saxutils import escape as xml_escape

from starlette.responses import JSONResponse, Response

from xnatd.domain.items import Item, items_document, to_xml
from xnatd.domain.table import Table
from xnatd.errors import InvalidInput

TABLE_FORMATS = ("json", "xml", "csv", "html", "txt")
# Stored bytes are whatever someone uploaded: a browser must never run them as one of the site's pages
# (an HTML or SVG file opened by an administrator would act with the administrator's login). Only
# types a browser shows without running anything in them are shown inline; every other file is a
# download. nosniff stops a browser from guessing HTML in a file sent as text or an image, and the
# sandbox gives whatever is shown an origin of its own, with no scripts, even if one got through.
INLINE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/tiff",
        "image/avif",
        "image/vnd.microsoft.icon",
        "application/pdf",
        "text/plain",
    }
)
UNTRUSTED = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}


def table_response(table: Table, fmt: str | None) -> Response:
    fmt = (fmt or "json").lower()
    if fmt == "json":
        return JSONResponse(table_json(table))
    if fmt == "xml":
        return Response(table_xml(table), media_type="text/xml")
    if fmt in ("csv", "txt"):
        return Response(table_csv(table), media_type="text/csv" if fmt == "csv" else "text/plain")
    if fmt == "html":
        return Response(table_html(table), media_type="text/html", headers=UNTRUSTED)
    raise InvalidInput(f"Unsupported format for a listing: {fmt} (json, xml, csv or html)")


def table_json(table: Table) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if table.column_meta is not None:
        result["Columns"] = table.column_meta
    result["Result"] = table.rows
    if table.total is not None:
        result["totalRecords"] = str(table.total)
    if table.title:
        result["title"] = table.title
    return {"ResultSet": result}


def table_xml(table: Table) -> str:
    total = f' totalRecords="{table.total}"' if table.total is not None else ""
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<ResultSet{total}><results><columns>']
    out.extend(f"<column>{xml_escape(c)}</column>" for c in table.columns)
    out.append("</columns>\n<rows>")
    for row in table.rows:
        cells = "".join(f"<cell>{xml_escape(row.get(c, ''))}</cell>" for c in table.columns)
        out.append(f"<row>{cells}</row>\n")
    out.append("</rows></results></ResultSet>")
    return "".join(out)


def table_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([row.get(c, "") for c in table.columns])
    return buf.getvalue()


def table_html(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(row.get(c, ''))}</td>" for c in table.columns) + "</tr>\n"
        for row in table.rows
    )
    return f'<table class="x_rs_t">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody>\n</table>\n'


def item_response(item: Item, fmt: str | None, default: str = "xml") -> Response:
    fmt = (fmt or default).lower()
    if fmt == "json":
        return JSONResponse(items_document(item))
    if fmt == "xml":
        return Response(to_xml(item), media_type="text/xml")
    if fmt == "html":
        body = json.dumps(items_document(item), indent=1, default=str)
        return Response(f"<pre>{escape(body)}</pre>", media_type="text/html", headers=UNTRUSTED)
    raise InvalidInput(f"Unsupported format for an object: {fmt} (json or xml)")


def text(body: str, status: int = 200, media_type: str = "text/plain") -> Response:
    return Response(body, status_code=status, media_type=media_type)


def stored_file_headers(name: str, media_type: str) -> dict[str, str]:
    """Headers of a response carrying a stored file's bytes (archive, prearchive, job outputs): a
    download unless its type is known to be inert in a browser, never sniffed, always sandboxed."""
    kind = "inline" if media_type.split(";")[0].strip().lower() in INLINE_TYPES else "attachment"
    return {"Content-Disposition": disposition(kind, name), **UNTRUSTED}


def text_of_stored(body: str) -> Response:
    """Plain text made of stored bytes (a job's or a prearchive session's log), never sniffed."""
    return Response(body, media_type="text/plain", headers=UNTRUSTED)


def disposition(kind: str, filename: str) -> str:
    """``Content-Disposition`` for any file name: headers are Latin-1, names are not (RFC 6266's
    ``filename*`` carries the UTF-8 name; ``filename`` an ASCII stand-in for old clients)."""
    plain = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in filename)
    if plain == filename:
        return f'{kind}; filename="{filename}"'
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
