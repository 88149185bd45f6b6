"""The permission matrix: who may do what, in private, protected and public projects, over HTTP.

Every cell of EXPECTED is asserted against a real server. A number is the HTTP status; for the
project listing, LISTED/HIDDEN say whether the project appears in it.
"""

from __future__ import annotations

import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO

import httpx
import pytest

from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow

LEVELS = ("private", "protected", "public")
LISTED, HIDDEN = "listed", "hidden"
OK, CREATED = 200, 201
OPS = (
    "list_projects",
    "read_project",
    "list_subjects",
    "read_subject",
    "list_experiments",
    "read_experiment",
    "global_subjects",
    "create",
    "update",
    "delete",
    "upload",
    "download",
    "zip",
    "accessibility",
    "membership",
    "list_prearchive",
)

_ALL_OK = {
    "list_projects": (LISTED,) * 3,
    "read_project": (OK,) * 3,
    "list_subjects": (OK,) * 3,
    "read_subject": (OK,) * 3,
    "list_experiments": (OK,) * 3,
    "read_experiment": (OK,) * 3,
    "global_subjects": (LISTED,) * 3,
    "create": (CREATED,) * 3,
    "update": (OK,) * 3,
    "delete": (OK,) * 3,
    "upload": (OK,) * 3,
    "download": (OK,) * 3,
    "zip": (OK,) * 3,
    "accessibility": (OK,) * 3,
    "membership": (OK,) * 3,
    "list_prearchive": (OK,) * 3,
}
_MEMBER = {**_ALL_OK, "delete": (403,) * 3, "accessibility": (403,) * 3, "membership": (403,) * 3}
# The prearchive is for those who may add data to the project (XNAT: "editable projects").
_COLLABORATOR = {
    **_MEMBER,
    "create": (403,) * 3,
    "update": (403,) * 3,
    "upload": (403,) * 3,
    "list_prearchive": (403,) * 3,
}
# Someone with no role: private is invisible, protected is described only, public is readable.
_STRANGER = {
    "list_projects": (HIDDEN, LISTED, LISTED),
    "read_project": (404, OK, OK),
    "list_subjects": (404, 403, OK),
    "read_subject": (404, 404, OK),
    "list_experiments": (404, 403, OK),
    "read_experiment": (404, 404, OK),
    "global_subjects": (HIDDEN, HIDDEN, LISTED),
    "create": (404, 403, 403),
    "update": (404, 403, 403),
    "delete": (404, 404, 403),
    "upload": (404, 403, 403),
    "download": (404, 404, OK),
    "zip": (404, 404, OK),
    "accessibility": (404, 403, 403),
    "membership": (404, 403, 403),
    "list_prearchive": (404, 403, 403),
}
_NOBODY = {op: (401,) * 3 for op in OPS}

EXPECTED: dict[str, dict[str, tuple[object, object, object]]] = {
    "site_admin": _ALL_OK,
    "owner": _ALL_OK,
    "member": _MEMBER,
    "member_token": _MEMBER,
    "member_session": _MEMBER,
    "collaborator": _COLLABORATOR,
    "stranger": _STRANGER,
    "no_credentials": _NOBODY,
    "wrong_password": _NOBODY,
    "invalidated_token": _NOBODY,
    "expired_token": _NOBODY,
    "expired_session": _NOBODY,
}
EXPIRING = ("expired_token", "expired_session")


@dataclass
class World:
    server: LiveServer
    projects: dict[str, str]  # level -> project ID
    subject_ids: dict[str, str]  # level -> accession ID of S0
    callers: dict[str, Callable[[], httpx.Client]]


def _client(
    server: LiveServer, auth: tuple[str, str] | None = None, cookie: str | None = None
) -> httpx.Client:
    cookies = {"JSESSIONID": cookie} if cookie else None
    return httpx.Client(base_url=server.url, auth=auth, cookies=cookies, timeout=60)


def _ok(r: httpx.Response) -> httpx.Response:
    assert r.status_code < 300, f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}"
    return r


def _build(server: LiveServer, expiring: bool) -> World:
    admin = server.client()
    for name in ("owner", "member", "collaborator", "stranger", "extra", "victim", "locked"):
        body = {"username": name, "password": f"{name}-pw", "email": f"{name}@example.org"}
        _ok(admin.post("/xapi/users", json=body))
    owner = _client(server, ("owner", "owner-pw"))
    tag = uuid.uuid4().hex[:6]
    projects, subject_ids = {}, {}
    for level in LEVELS:
        pid = f"{level[:4]}_{tag}"
        projects[level] = pid
        _ok(owner.put(f"/data/projects/{pid}", params={"accessibility": level}))
        _ok(owner.put(f"/data/projects/{pid}/users/Members/member"))
        _ok(owner.put(f"/data/projects/{pid}/users/Collaborators/collaborator"))
        subject_ids[level] = _ok(owner.put(f"/data/projects/{pid}/subjects/S0")).text
        exp = f"/data/projects/{pid}/subjects/S0/experiments/E0"
        _ok(owner.put(exp, params={"xsiType": "xnat:mrSessionData"}))
        _ok(owner.put(f"{exp}/resources/R/files/f.txt", content=b"secret", params={"inbody": "true"}))
    member = _client(server, ("member", "member-pw"))
    token = _ok(member.get("/data/services/tokens/issue")).json()
    dead = _ok(member.get("/data/services/tokens/issue")).json()
    _ok(member.get(f"/data/services/tokens/invalidate/{dead['alias']}/{dead['secret']}"))
    session = _ok(member.post("/data/JSESSION")).text
    callers: dict[str, Callable[[], httpx.Client]] = {
        "site_admin": lambda: server.client(),
        "owner": lambda: _client(server, ("owner", "owner-pw")),
        "member": lambda: _client(server, ("member", "member-pw")),
        "member_token": lambda: _client(server, (token["alias"], token["secret"])),
        "member_session": lambda: _client(server, cookie=session),
        "collaborator": lambda: _client(server, ("collaborator", "collaborator-pw")),
        "stranger": lambda: _client(server, ("stranger", "stranger-pw")),
        "no_credentials": lambda: _client(server),
        "wrong_password": lambda: _client(server, ("victim", "not-it")),
        "invalidated_token": lambda: _client(server, (dead["alias"], dead["secret"])),
        "expired_token": lambda: _client(server, (token["alias"], token["secret"])),
        "expired_session": lambda: _client(server, cookie=session),
    }
    if expiring:
        time.sleep(2.5)  # this server's tokens and sessions live one second
    return World(server, projects, subject_ids, callers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with live_server(tmp_path_factory.mktemp("perm") / "data") as server:
        yield _build(server, expiring=False)


@pytest.fixture(scope="module")
def expiring_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    env = {"XNATD_TOKEN_TIMEOUT": "1", "XNATD_SESSION_TIMEOUT": "1"}
    with live_server(tmp_path_factory.mktemp("perm_exp") / "data", env=env) as server:
        yield _build(server, expiring=True)


def _in_listing(r: httpx.Response, key: str, value: str) -> object:
    if r.status_code != 200:
        return r.status_code
    return LISTED if value in {row.get(key) for row in r.json()["ResultSet"]["Result"]} else HIDDEN


def _perform(w: World, c: httpx.Client, op: str, level: str) -> object:
    p = w.projects[level]
    base = f"/data/projects/{p}"
    exp = f"{base}/subjects/S0/experiments/E0"
    admin = w.server.client()
    fresh = f"N{uuid.uuid4().hex[:8]}"
    if op == "list_projects":
        return _in_listing(c.get("/data/projects", params={"format": "json"}), "ID", p)
    if op == "global_subjects":
        return _in_listing(c.get("/data/subjects", params={"format": "json"}), "ID", w.subject_ids[level])
    if op == "delete":
        _ok(admin.put(f"{base}/subjects/{fresh}"))
        return c.delete(f"{base}/subjects/{fresh}").status_code
    if op == "zip":
        r = c.get(f"{exp}/resources/R/files", params={"format": "zip"})
        if r.status_code == 200:
            assert zipfile.ZipFile(BytesIO(r.content)).read("E0/resources/R/files/f.txt") == b"secret"
        return r.status_code
    if op == "download":
        r = c.get(f"{exp}/resources/R/files/f.txt")
        assert r.status_code != 200 or r.content == b"secret"
        assert r.status_code == 200 or b"secret" not in r.content
        return r.status_code
    requests: dict[str, Callable[[], httpx.Response]] = {
        "read_project": lambda: c.get(base, params={"format": "json"}),
        "list_subjects": lambda: c.get(f"{base}/subjects", params={"format": "json"}),
        "read_subject": lambda: c.get(f"{base}/subjects/S0", params={"format": "json"}),
        "list_experiments": lambda: c.get(f"{base}/experiments", params={"format": "json"}),
        "read_experiment": lambda: c.get(exp, params={"format": "json"}),
        "create": lambda: c.put(f"{base}/subjects/{fresh}"),
        "update": lambda: c.put(f"{base}/subjects/S0", params={"gender": "female"}),
        "upload": lambda: c.put(
            f"{exp}/resources/R/files/{fresh}.txt", content=b"x", params={"inbody": "true"}
        ),
        "accessibility": lambda: c.put(f"{base}/accessibility/{level}"),
        "membership": lambda: c.put(f"{base}/users/Collaborators/extra"),
        "list_prearchive": lambda: c.get(f"/data/prearchive/projects/{p}", params={"format": "json"}),
    }
    r = requests[op]()
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("text/plain"), r.text
        assert "S0" not in r.text or level != "private" or r.status_code == 401 or "S0" in r.request.url.path
    return r.status_code


CELLS = [(who, op) for who in EXPECTED for op in OPS]


@pytest.mark.parametrize(("who", "op"), CELLS, ids=[f"{w}-{o}" for w, o in CELLS])
def test_matrix(who: str, op: str, world: World, expiring_world: World) -> None:
    w = expiring_world if who in EXPIRING else world
    with w.callers[who]() as client:
        got = tuple(_perform(w, client, op, level) for level in LEVELS)
    assert got == EXPECTED[who][op], f"{who} {op} (private, protected, public)"


def test_private_names_never_leak(world: World) -> None:
    """A stranger asking for a private project's subject gets the same answer as for a missing one."""
    p = world.projects["private"]
    with world.callers["stranger"]() as c:
        real = c.get(f"/data/projects/{p}/subjects/S0", params={"format": "json"})
        missing = c.get("/data/projects/NoSuchProject/subjects/S0", params={"format": "json"})
        by_id = c.get(f"/data/subjects/{world.subject_ids['private']}", params={"format": "json"})
    assert (real.status_code, missing.status_code, by_id.status_code) == (404, 404, 404)
    assert real.text == f"Project {p} not found" or p not in real.text or "Subject" in real.text
    assert p not in by_id.text


def test_non_admins_cannot_create_users_or_see_emails(world: World) -> None:
    with world.callers["member"]() as c:
        assert c.post("/xapi/users", json={"username": "x1", "password": "p"}).status_code == 403
        listing = c.get("/data/users", params={"format": "json"})
        assert listing.status_code == 200, listing.text
        rows = listing.json()["ResultSet"]["Result"]
        assert {"member", "owner"} <= {r["login"] for r in rows}
        assert all("email" not in r for r in rows)
        assert c.get("/xapi/users/profile").json()["username"] == "member"
        assert c.get("/xapi/users/owner").status_code == 404
        roles = {p["ID"]: p["role"] for p in c.get("/xapi/access/projects").json()}
        assert set(roles.values()) == {"member"} and set(world.projects.values()) <= set(roles)


def test_repeated_failures_lock_the_account_only(world: World) -> None:
    server = world.server
    with _client(server, ("locked", "wrong")) as bad:
        for _ in range(10):
            assert bad.get("/data/auth").status_code == 401
    with _client(server, ("locked", "locked-pw")) as right:
        r = right.get("/data/auth")
        assert r.status_code == 401 and r.text == "The request requires user authentication"
    with _client(server, ("nobody-at-all", "x")) as unknown:
        assert unknown.get("/data/auth").text == r.text  # no hint whether a user exists
    with _client(server, ("stranger", "stranger-pw")) as other:
        assert other.get("/data/auth").status_code == 200


def test_job_listing_of_a_private_project_reads_like_a_missing_one(world: World) -> None:
    p = world.projects["private"]
    with world.callers["stranger"]() as c:
        private = c.get("/xapi/jobs", params={"project": p})
        missing = c.get("/xapi/jobs", params={"project": "NoSuchProject"})
    assert (private.status_code, missing.status_code) == (404, 404)
    with world.callers["member"]() as c:
        assert c.get("/xapi/jobs", params={"project": p}).status_code == 200
