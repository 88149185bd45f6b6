"""Uploaded files opened in a logged-in browser never run as the site's pages (stored XSS).

A member uploads a file a browser would execute (HTML, SVG, XHTML, XML with an XHTML script) whose
script calls the API as whoever opens it: it issues an alias token, with a synchronous request so
that it has done so before the page's load event. An administrator, logged in to the web pages,
opens the file's REST URL (a link anyone could send them): it must come down as a download, or be
shown inert (plain text, an image), and no token may have been issued.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Download, Error, Page

from tests.e2e.conftest import LAPTOP, login
from tests.support.dicom_copies import TESTDATA, dicom_files
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

# Issues a token for whoever opens the file, then says so in the title: a download runs nothing.
SCRIPT = (
    "var x = new XMLHttpRequest(); x.open('GET', '/data/services/tokens/issue', false); x.send();"
    "document.title = 'ran ' + x.status;"
)
HTML = f"<!doctype html><title>evil</title><h1>evil</h1><script>{SCRIPT}</script>".encode()
SVG = f'<svg xmlns="http://www.w3.org/2000/svg"><script>{SCRIPT}</script></svg>'.encode()
XHTML = (
    '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>evil</title></head>'
    f"<body><script>//<![CDATA[\n{SCRIPT}\n//]]></script></body></html>"
).encode()
# name -> (body, shown inline): executable types are downloads, the known-safe ones inline but inert
FILES = {
    "evil.html": (HTML, False),
    "evil.htm": (HTML, False),
    "evil.svg": (SVG, False),
    "evil.xhtml": (XHTML, False),
    "evil.xml": (XHTML, False),
    "evil": (HTML, False),  # no extension: no type guessed
    "evil.txt": (HTML, True),  # plain text, never sniffed into HTML
    "evil.png": (HTML, True),  # an image that is really HTML: not sniffed either
}


@pytest.fixture(scope="module")
def member_files(server: LiveServer) -> Iterator[str]:
    """A project with a member who uploaded every file above; the folder's REST URL."""
    admin = server.client()
    project = f"XSS{uuid.uuid4().hex[:6]}"
    assert admin.put(f"/data/projects/{project}").status_code < 300
    body = {"username": "mallory", "password": "mallory-pw-1", "enabled": True}
    assert admin.post("/xapi/users", json=body).status_code == 201
    assert admin.put(f"/data/projects/{project}/users/Members/mallory").status_code < 300
    folder = f"/data/projects/{project}/resources/R/files"
    with httpx.Client(base_url=server.url, auth=("mallory", "mallory-pw-1"), timeout=60) as mallory:
        for name, (content, _inline) in FILES.items():
            r = mallory.put(f"{folder}/{name}", content=content, params={"inbody": "true"})
            assert r.status_code == 200, r.text
        odd = '<img src=q onerror="document.title=1">.txt'  # a name that is markup, for the listings
        assert mallory.put(f"{folder}/{odd}", content=b"x", params={"inbody": "true"}).status_code == 200
    yield folder


def _tokens(page: Page) -> int:
    """The administrator's live tokens, asked with the browser's own login cookie."""
    r = page.request.get("/data/services/tokens/show")
    assert r.status == 200  # the cookie works on the REST API: a script would have had the admin's rights
    return len(r.json())


def _open(page: Page, url: str) -> bool:
    """Open ``url`` as a user following a link would; whether it was shown (False: downloaded)."""
    seen: list[Download] = []
    page.on("download", lambda d: seen.append(d))
    try:
        page.goto(url)
    except Error as exc:  # navigating to a download ends the navigation with this error
        if "Download is starting" not in str(exc):
            raise
        download = seen[0] if seen else page.wait_for_event("download")
        assert download.failure() is None  # waits for it to finish
        return False
    return True


@pytest.mark.parametrize("name", list(FILES))
def test_uploaded_file_never_runs_as_the_site(
    name: str, browser: Browser, server: LiveServer, member_files: str
) -> None:
    context = browser.new_context(viewport=LAPTOP, accept_downloads=True, base_url=server.url)
    page = context.new_page()
    try:
        login(page, server.url, "admin", "admin")
        before = _tokens(page)
        shown = _open(page, f"{server.url}{member_files}/{name}")
        assert _tokens(page) == before, f"{name}: the file's script issued a token as the administrator"
        assert shown == FILES[name][1]
        if shown:
            assert not page.title().startswith("ran")
    finally:
        context.close()


def test_listing_as_html_shows_markup_names_as_text(
    browser: Browser, server: LiveServer, member_files: str
) -> None:
    context = browser.new_context(viewport=LAPTOP, base_url=server.url)
    page = context.new_page()
    try:
        login(page, server.url, "admin", "admin")
        page.goto(f"{server.url}{member_files}?format=html")
        assert '<img src=q onerror="document.title=1">.txt' in page.inner_text("table")
        assert page.title() != "1"
        assert page.locator("img").count() == 0
    finally:
        context.close()


def _untrusted(r: httpx.Response, disposition: str) -> None:
    assert r.status_code == 200, (r.request.url, r.status_code, r.text[:200])
    assert r.headers["content-disposition"].startswith(disposition), r.headers
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-security-policy"] == "sandbox"


def test_every_door_to_stored_bytes_sends_them_as_untrusted(server: LiveServer, member_files: str) -> None:
    """The same headers on every answer made of stored bytes: files, HEAD, zips, the prearchive."""
    admin = server.client()
    _untrusted(admin.get(f"{member_files}/evil.html"), "attachment")
    _untrusted(admin.head(f"{member_files}/evil.svg"), "attachment")
    _untrusted(admin.get(f"{member_files}/evil.html", params={"format": "html"}), "attachment")
    _untrusted(admin.get(f"{member_files}/evil.txt"), "inline")
    _untrusted(admin.get(member_files, params={"format": "zip"}), "attachment")
    packed = admin.put(f"{member_files}/notes.txt.gz", content=b"\x1f\x8b", params={"inbody": "true"})
    assert packed.status_code == 200
    r = admin.get(f"{member_files}/notes.txt.gz")
    _untrusted(r, "attachment")
    assert r.headers["content-type"] == "application/gzip"  # not text: gzip bytes shown as a page

    listing = admin.get(member_files, params={"format": "html"})
    assert listing.headers["content-security-policy"] == "sandbox"
    assert "&lt;img src=q" in listing.text and "<img" not in listing.text

    project = member_files.split("/")[3]
    dicom = dicom_files(TESTDATA / "dcm_qa_nih" / "20180918GE" / "mr_0004")[0]
    r = admin.post(
        "/data/services/import",
        params={"import-handler": "gradual-DICOM", "dest": f"/prearchive/projects/{project}"},
        content=dicom.read_bytes(),
        headers={"Content-Type": "application/dicom"},
    )
    assert r.status_code == 200, r.text
    session = admin.get(f"/data/prearchive/projects/{project}", params={"format": "json"})
    url = "/data" + session.json()["ResultSet"]["Result"][0]["url"]
    scan = admin.get(f"{url}/scans", params={"format": "json"}).json()["ResultSet"]["Result"][0]["ID"]
    names = admin.get(f"{url}/scans/{scan}/resources/DICOM/files", params={"format": "json"})
    name = names.json()["ResultSet"]["Result"][0]["Name"]
    _untrusted(admin.get(f"{url}/scans/{scan}/resources/DICOM/files/{name}"), "attachment")
    _untrusted(admin.get(url, params={"format": "zip"}), "attachment")
    log = admin.get(f"{url}/logs")
    assert log.headers["x-content-type-options"] == "nosniff"
    assert log.headers["content-type"].startswith("text/plain")
