"""The permission matrix: who may do what, in private, protected and public projects, over HTTP.

Every cell of EXPECTED is asserted against a real server. A number is the HTTP status; for the
project listing, LISTED/HIDDEN say whether the project appears in it.

The sharing rows act on objects of the level's project that are shared into ``dst`` (private) and
``pub`` (public), projects every user with an account owns: sharing out, sharing on from a share,
edits, renames, uploads and deletes through a share, what a share's reader sees of the owning
project (SHOWN/CLEAN: whether its ID appears anywhere in the documents and listings), and whether a
subject's document lists an experiment of the level's project (LISTED/HIDDEN). The guest (no
credentials on a site with ``guest_access``) reads public projects and writes nothing.
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
from tests.support.testdata import DICOM

pytestmark = pytest.mark.slow

LEVELS = ("private", "protected", "public")
LISTED, HIDDEN = "listed", "hidden"
SHOWN, CLEAN = "shown", "clean"
OK, CREATED = 200, 201
ASK = 401  # a guest writing anything: log in first
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
    "share_out",
    "reshare",
    "edit_via_share",
    "relabel_via_share",
    "upload_via_share",
    "delete_via_share",
    "read_shared_doc",
    "read_children",
)
SHARING = {
    "share_out": (OK,) * 3,
    "reshare": (OK,) * 3,
    "edit_via_share": (OK,) * 3,
    "relabel_via_share": (OK,) * 3,
    "upload_via_share": (OK,) * 3,
    "delete_via_share": (OK,) * 3,
    "read_shared_doc": (SHOWN,) * 3,
    "read_children": (LISTED,) * 3,
}

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
    **SHARING,
}
_MEMBER = {**_ALL_OK, "delete": (403,) * 3, "accessibility": (403,) * 3, "membership": (403,) * 3}
# The prearchive is for those who may add data to the project (XNAT: "editable projects").
_COLLABORATOR = {
    **_MEMBER,
    "create": (403,) * 3,
    "update": (403,) * 3,
    "upload": (403,) * 3,
    "list_prearchive": (403,) * 3,
    # read access shares out of a public project only (its data is every user's anyway); through a
    # share only the share's own label changes (and the share is taken back) without edit rights
    "share_out": (403, 403, OK),
    "reshare": (403, 403, OK),
    "edit_via_share": (403,) * 3,
    "upload_via_share": (403,) * 3,
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
    "share_out": (404, 404, OK),
    "reshare": (403, 403, OK),
    "edit_via_share": (403,) * 3,
    "relabel_via_share": (OK,) * 3,
    "upload_via_share": (403,) * 3,
    "delete_via_share": (OK,) * 3,
    "read_shared_doc": (CLEAN, CLEAN, SHOWN),
    "read_children": (HIDDEN, HIDDEN, LISTED),
}
_GUEST = {
    **{op: (ASK,) * 3 for op in OPS},
    "list_projects": (HIDDEN, HIDDEN, LISTED),
    "global_subjects": (HIDDEN, HIDDEN, LISTED),
    **{
        op: (404, 404, OK)
        for op in (
            "read_project",
            "list_subjects",
            "read_subject",
            "list_experiments",
            "read_experiment",
            "download",
            "zip",
        )
    },
    "read_shared_doc": (CLEAN, CLEAN, SHOWN),
    "read_children": (HIDDEN, HIDDEN, LISTED),
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
    "guest": _GUEST,
    "no_credentials": _NOBODY,
    "wrong_password": _NOBODY,
    "invalidated_token": _NOBODY,
    "expired_token": _NOBODY,
    "expired_session": _NOBODY,
}
# The main server lets guests in; these callers run on the second one, which does not.
EXPIRING = ("expired_token", "expired_session", "no_credentials")
USERS = ("owner", "member", "collaborator", "stranger")


@dataclass
class World:
    server: LiveServer
    projects: dict[str, str]  # level -> project ID
    subject_ids: dict[str, str]  # level -> accession ID of S0
    callers: dict[str, Callable[[], httpx.Client]]
    dst: str  # private, every user an owner: where shared objects are edited
    pub: str  # public, every user an owner: where shared objects are read (and published)
    children: dict[str, str]  # level -> ID of the level's experiment under the public subject SP_{level}
    spare: dict[str, tuple[str, str]]  # level -> a session shared into dst: its own URL and dst's
    admin: httpx.Client  # one for the whole module: a client per request costs the tests more than the server


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
    dst, pub, children = _sharing_world(server, projects, tag)
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
        "guest": lambda: _client(server),
        "no_credentials": lambda: _client(server),
        "wrong_password": lambda: _client(server, ("victim", "not-it")),
        "invalidated_token": lambda: _client(server, (dead["alias"], dead["secret"])),
        "expired_token": lambda: _client(server, (token["alias"], token["secret"])),
        "expired_session": lambda: _client(server, cookie=session),
    }
    if expiring:
        time.sleep(2.5)  # this server's tokens and sessions live one second
    world = World(server, projects, subject_ids, callers, dst, pub, children, {}, admin)
    world.spare = {level: _shared_pair(world, level, dst) for level in LEVELS}
    return world


def _sharing_world(server: LiveServer, projects: dict[str, str], tag: str) -> tuple[str, str, dict[str, str]]:
    """``dst`` and ``pub``, owned by every user; per level, a subject and session shared into
    ``pub`` (SD_{level}, ED_{level}), and a subject of the public project shared into the level's
    project with a session there (SP_{level}, EP_{level})."""
    admin = server.client()
    owner = _client(server, ("owner", "owner-pw"))
    dst, pub = f"dst_{tag}", f"pubd_{tag}"
    for pid, level in ((dst, "private"), (pub, "public")):
        _ok(admin.put(f"/data/projects/{pid}", params={"accessibility": level}))
        for name in USERS:
            _ok(admin.put(f"/data/projects/{pid}/users/Owners/{name}"))
    children = {}
    public = projects["public"]
    for level, pid in projects.items():
        base = f"/data/projects/{pid}/subjects/SD"
        _ok(owner.put(base))
        _ok(owner.put(f"{base}/experiments/ED", params={"xsiType": "xnat:mrSessionData"}))
        _ok(
            owner.put(
                f"{base}/experiments/ED/resources/R/files/d.txt", content=b"d", params={"inbody": "true"}
            )
        )
        _ok(owner.put(f"{base}/projects/{pub}", params={"label": f"SD_{level}"}))
        _ok(owner.put(f"{base}/experiments/ED/projects/{pub}", params={"label": f"ED_{level}"}))
        sp = f"/data/projects/{public}/subjects/SP_{level}"
        _ok(owner.put(sp))
        if level != "public":
            _ok(owner.put(f"{sp}/projects/{pid}"))
        ep = f"/data/projects/{pid}/subjects/SP_{level}/experiments/EP_{level}"
        children[level] = _ok(owner.put(ep, params={"xsiType": "xnat:mrSessionData", "note": "hush"})).text
    return dst, pub, children


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    env = {"XNATD_GUEST_ACCESS": "true"}
    with live_server(tmp_path_factory.mktemp("perm") / "data", env=env) as server:
        built = _build(server, expiring=False)
        yield built
        built.admin.close()


@pytest.fixture(scope="module")
def expiring_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    env = {"XNATD_TOKEN_TIMEOUT": "1", "XNATD_SESSION_TIMEOUT": "1"}
    with live_server(tmp_path_factory.mktemp("perm_exp") / "data", env=env) as server:
        built = _build(server, expiring=True)
        yield built
        built.admin.close()


def _in_listing(r: httpx.Response, key: str, value: str) -> object:
    if r.status_code != 200:
        return r.status_code
    return LISTED if value in {row.get(key) for row in r.json()["ResultSet"]["Result"]} else HIDDEN


def _shared_pair(w: World, level: str, into: str) -> tuple[str, str]:
    """A new subject and session of the level's project, shared into ``into`` by the admin: their
    URLs in their own project and in ``into``."""
    admin = w.admin
    base = f"/data/projects/{w.projects[level]}"
    s, e = f"S{uuid.uuid4().hex[:8]}", f"E{uuid.uuid4().hex[:8]}"
    own = f"{base}/subjects/{s}/experiments/{e}"
    _ok(admin.put(f"{base}/subjects/{s}"))
    _ok(admin.put(own, params={"xsiType": "xnat:mrSessionData", "note": "original"}))
    _ok(admin.put(f"{base}/subjects/{s}/projects/{into}", params={"label": f"{s}x"}))
    _ok(admin.put(f"{own}/projects/{into}", params={"label": f"{e}x"}))
    return own, f"/data/projects/{into}/subjects/{s}x/experiments/{e}x"


def _field(admin: httpx.Client, url: str, name: str) -> object:
    r = _ok(admin.get(url, params={"format": "json"}))
    return r.json()["items"][0]["data_fields"].get(name)


def _sharing(w: World, c: httpx.Client, op: str, level: str, anyone: bool) -> httpx.Response | object:
    """One sharing row's request; what it must (not) have changed is checked here too. A caller who
    is refused before anything is looked up (``anyone``: no valid credentials) gets the objects the
    others leave alone, so the matrix needs new ones only where the answer depends on them."""
    admin = w.admin
    if op == "share_out":
        fresh = "SD" if anyone else f"N{uuid.uuid4().hex[:8]}"
        if not anyone:
            _ok(admin.put(f"/data/projects/{w.projects[level]}/subjects/{fresh}"))
        r = c.put(
            f"/data/projects/{w.projects[level]}/subjects/{fresh}/projects/{w.pub}", params={"label": fresh}
        )
        shared = admin.get(f"/data/projects/{w.pub}/subjects/{fresh}", params={"format": "json"})
        assert shared.status_code == (200 if r.status_code == 200 else 404), (r.status_code, r.text)
        return r
    own, via = w.spare[level] if anyone else _shared_pair(w, level, w.dst)
    if op == "reshare":
        r = c.put(f"{via}/projects/{w.pub}", params={"label": via.rsplit("/", 1)[1]})
        shared = admin.get(f"/data/projects/{w.pub}/experiments/{via.rsplit('/', 1)[1]}")
        assert shared.status_code == (200 if r.status_code == 200 else 404), (r.status_code, r.text)
        return r
    if op == "edit_via_share":
        r = c.put(via, params={"note": "changed", "date": "1999-01-01"})
        assert _field(admin, own, "note") == ("changed" if r.status_code == 200 else "original")
        return r
    if op == "relabel_via_share":
        new = f"R{uuid.uuid4().hex[:8]}"
        r = c.put(via, params={"label": new})
        assert _field(admin, own, "label") == own.rsplit("/", 1)[1]  # the owner's label never changes
        if r.status_code == 200:
            assert _field(admin, f"/data/projects/{w.dst}/experiments/{new}", "label") == new
        return r
    if op == "upload_via_share":
        r = c.put(f"{via}/resources/R/files/u.txt", content=b"u", params={"inbody": "true"})
        stored = admin.get(f"{own}/resources/R/files/u.txt")
        assert stored.status_code == (200 if r.status_code == 200 else 404), (r.status_code, r.text)
        return r
    assert op == "delete_via_share"
    r = c.delete(via)
    assert admin.get(own).status_code == 200  # un-shared at most: the object itself stays
    assert admin.get(via).status_code == (404 if r.status_code == 200 else 200)
    return r


def _seen(w: World, c: httpx.Client, op: str, level: str) -> object:
    """Whether the level's project shows in what a reader of a share gets (read_shared_doc), or
    whether its experiment shows in the public subject's documents (read_children)."""
    if op == "read_children":
        subject = f"/data/projects/{w.projects['public']}/subjects/SP_{level}"
        urls, marker = [(subject, "json"), (subject, "xml")], w.children[level]
    else:
        s = f"/data/projects/{w.pub}/subjects/SD_{level}"
        e = f"{s}/experiments/ED_{level}"
        urls = [(u, f) for u in (s, e) for f in ("json", "xml")]
        urls += [(f"{u}/projects", "json") for u in (s, e)]
        urls += [(f"{e}/resources", "json"), (f"{e}/files", "json"), (f"{e}/resources/R", "json")]
        urls += [
            (f"/data/projects/{w.pub}/experiments", "json"),
            (f"/data/projects/{w.pub}/subjects", "json"),
        ]
        marker = w.projects[level]
    texts = []
    for url, kind in urls:
        r = c.get(url, params={"format": kind})
        if r.status_code != 200:
            return r.status_code
        texts.append(r.text)
    found = any(marker in t for t in texts)
    if op == "read_children":
        assert found or not any("hush" in t for t in texts)  # nor its fields
        return LISTED if found else HIDDEN
    listing = c.get(
        f"/data/projects/{w.pub}/experiments", params={"format": "json", "columns": "label,subject_label"}
    )
    by_label = {r["label"]: r for r in listing.json()["ResultSet"]["Result"]}
    assert by_label[f"ED_{level}"]["subject_label"] == f"SD_{level}"  # as labelled in pub, not at home
    # the listing's URI (/data/experiments/{ID}) leads to the session, shown as in pub
    r = c.get(by_label[f"ED_{level}"]["URI"], params={"format": "json"})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["data_fields"]["label"] in (f"ED_{level}", "ED")
    return SHOWN if found or marker in r.text else CLEAN


def _perform(w: World, c: httpx.Client, op: str, level: str, who: str) -> object:
    p = w.projects[level]
    base = f"/data/projects/{p}"
    exp = f"{base}/subjects/S0/experiments/E0"
    admin = w.admin
    fresh = f"N{uuid.uuid4().hex[:8]}"
    if op in ("read_shared_doc", "read_children"):
        return _seen(w, c, op, level)
    if op in SHARING:
        found = _sharing(w, c, op, level, EXPECTED[who] is _NOBODY)
        assert isinstance(found, httpx.Response)
        if found.status_code >= 400:  # an error names no project the object came from
            assert p not in found.text or p in found.request.url.path, found.text
        return found.status_code
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
        got = tuple(_perform(w, client, op, level, who) for level in LEVELS)
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
        assert {roles.get(p) for p in world.projects.values()} == {"member"}


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


# --- sharing, guests and owners beyond the matrix -------------------------------------------------

GE_SERIES = DICOM / "dcm_qa_nih" / "20180918GE" / "mr_0004"


def _dicom_zip(count: int = 2) -> bytes:
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(GE_SERIES.glob("*.dcm"))[:count]:
            zf.write(path, path.name)
    return buf.getvalue()


def _same_answer(real: httpx.Response, fake: httpx.Response, real_key: str, fake_key: str) -> None:
    """Unreadable and missing must read alike: the same status, the same text but for the key asked."""
    assert real.status_code == fake.status_code, (real.request.url, real.text, fake.text)
    assert real.text.replace(real_key, "KEY") == fake.text.replace(fake_key, "KEY"), (real.text, fake.text)


def test_existence_oracles_answer_like_missing_objects(world: World) -> None:
    """For a caller without access, a private project's prearchive sessions, alias and accession IDs
    answer exactly as wrong ones do (item 12)."""
    p, admin = world.projects["private"], world.admin
    alias = f"AL{uuid.uuid4().hex[:6]}"
    _ok(admin.put(f"/data/projects/{p}", params={"alias": alias}))
    r = _ok(
        admin.post(
            "/data/services/import",
            params={"import-handler": "DICOM-zip", "dest": f"/prearchive/projects/{p}"},
            content=_dicom_zip(),
            headers={"Content-Type": "application/zip"},
        )
    )
    session = r.text.strip()
    _, ts, folder = session.rsplit("/", 2)
    exp_id = _ok(admin.get(f"/data/projects/{p}/subjects/S0/experiments/E0", params={"format": "json"}))
    eid = exp_id.json()["items"][0]["data_fields"]["ID"]
    sid = world.subject_ids["private"]
    fake_eid, fake_sid = eid[:-5] + "99999", sid[:-5] + "99999"
    pairs = [
        (session, session.replace(ts, "20000101_000000"), ts, "20000101_000000"),
        (session, session.replace(folder, "NOSUCHFOLDER"), folder, "NOSUCHFOLDER"),
        (f"{session}/scans", f"{session.replace(ts, '20000101_000000')}/scans", ts, "20000101_000000"),
        (f"/data/projects/{alias}", "/data/projects/NOALIAS", alias, "NOALIAS"),
        (f"/data/projects/{alias}/subjects/S0", "/data/projects/NOALIAS/subjects/S0", alias, "NOALIAS"),
        (f"/data/prearchive/projects/{alias}", "/data/prearchive/projects/NOALIAS", alias, "NOALIAS"),
        (f"/data/subjects/{sid}", f"/data/subjects/{fake_sid}", sid, fake_sid),
        (f"/data/experiments/{eid}", f"/data/experiments/{fake_eid}", eid, fake_eid),
        (f"/data/experiments/{eid}/scans", f"/data/experiments/{fake_eid}/scans", eid, fake_eid),
        (
            f"/data/experiments/{eid}/resources/R/files",
            f"/data/experiments/{fake_eid}/resources/R/files",
            eid,
            fake_eid,
        ),
        (
            f"/data/experiments/{eid}/resources/R/files/f.txt",
            f"/data/experiments/{fake_eid}/resources/R/files/f.txt",
            eid,
            fake_eid,
        ),
    ]
    for who in ("stranger", "guest"):
        with world.callers[who]() as c:
            for real, fake, real_key, fake_key in pairs:
                # a PUT to a missing project creates it: whether an ID is free is no secret
                methods = ("GET", "DELETE") if real.count("/") == 3 else ("GET", "PUT", "DELETE")
                for method in methods:
                    got = c.request(method, real, params={"format": "json"})
                    _same_answer(got, c.request(method, fake, params={"format": "json"}), real_key, fake_key)
                    assert p in real or p not in got.text, (who, method, real, got.text)
            share = f"/data/projects/{world.projects['public']}/subjects/S0/projects"
            got = c.put(f"{share}/{alias}")
            _same_answer(got, c.put(f"{share}/NOALIAS"), alias, "NOALIAS")
            got = c.get("/xapi/jobs", params={"project": alias})
            _same_answer(got, c.get("/xapi/jobs", params={"project": "NOALIAS"}), alias, "NOALIAS")
    with world.callers["collaborator"]() as c:  # may read the project, may not manage its prearchive
        got = c.get(session, params={"format": "json"})
        fake = session.replace(ts, "20000101_000000")
        _same_answer(got, c.get(fake, params={"format": "json"}), ts, "20000101_000000")


def test_guest_writes_nothing(world: World) -> None:
    """``guest_access`` lets the anonymous caller read public projects, nothing else (item 9)."""
    admin = world.admin
    before = admin.get("/data/prearchive/projects", params={"format": "json"}).json()["ResultSet"]["Result"]
    pub = world.projects["public"]
    one = sorted(GE_SERIES.glob("*.dcm"))[0].read_bytes()
    with world.callers["guest"]() as guest:
        attempts = [
            guest.post(
                "/data/services/import",
                params={"import-handler": "DICOM-zip"},
                content=_dicom_zip(),
                headers={"Content-Type": "application/zip"},
            ),
            guest.post(
                "/data/services/import",
                params={"import-handler": "gradual-DICOM"},
                content=one,
                headers={"Content-Type": "application/dicom"},
            ),
            guest.post("/data/JSESSION"),
            guest.get("/data/services/tokens/issue"),
            guest.put("/xapi/users/profile", json={"email": "guest@example.org"}),
            guest.put("/xapi/users/guest", json={"email": "guest@example.org"}),
            guest.post(
                "/xapi/jobs", json={"command": "dcm2niix", "scan": f"/data/projects/{pub}/subjects/S0"}
            ),
            guest.put(f"/data/projects/{pub}/subjects/S0", params={"gender": "male"}),
            guest.delete(f"/data/projects/{pub}/subjects/S0"),
            guest.put(f"/data/projects/{pub}/subjects/S0/projects/{world.dst}"),
            guest.post(
                "/data/services/prearchive/move",
                params={"src": "/prearchive/projects/x/1/y", "newProject": pub},
            ),
            guest.post("/data/services/archive", params={"src": "/prearchive/projects/x/1/y"}),
            guest.put(f"/data/projects/G{uuid.uuid4().hex[:6]}"),
        ]
        for r in attempts:
            assert r.status_code == 401, (r.request.method, r.request.url, r.status_code, r.text)
        assert guest.get(f"/data/projects/{pub}/subjects/S0", params={"format": "json"}).status_code == 200
    after = admin.get("/data/prearchive/projects", params={"format": "json"}).json()["ResultSet"]["Result"]
    assert after == before  # nothing stored, in Unassigned or anywhere
    # no account can take the guest's name (it would be treated as the guest, and the guest as it)
    assert admin.post("/xapi/users", json={"username": "guest", "password": "pw-guest-1"}).status_code == 400
    assert _field(admin, f"/data/projects/{pub}/subjects/S0", "ID") == world.subject_ids["public"]


def test_edits_through_a_share_by_xml_and_custom_fields_are_refused(world: World) -> None:
    """Every way of changing the object itself through a share needs edit rights in its own project
    (item 5); the share's label is all a share's editors change."""
    admin = world.admin
    own, via = _shared_pair(world, "public", world.dst)
    xml = (
        '<xnat:MRSession xmlns:xnat="http://nrg.wustl.edu/xnat" label="HIJACKED">'
        "<xnat:note>xml</xnat:note></xnat:MRSession>"
    )
    with world.callers["stranger"]() as c:
        attempts = [
            c.put(via, content=xml.encode(), headers={"Content-Type": "text/xml"}),
            c.put(via, params={"xnat:experimentData/fields/field[name=cv]/field": "x"}),
            c.put(via, params={"label": "HIJACKED", "note": "x", "date": "1999-01-01"}),
            c.put(f"{via}/scans/7", params={"xsiType": "xnat:mrScanData"}),
            c.put(f"{via}/assessors/A{uuid.uuid4().hex[:6]}", params={"xsiType": "xnat:qcAssessmentData"}),
            c.put(f"{via}/resources/NEW"),
            c.put(f"/data/projects/{world.dst}/subjects/{via.split('/')[5]}", params={"gender": "male"}),
        ]
        for r in attempts:
            assert r.status_code == 403, (r.request.method, r.request.url, r.text)
    doc = _ok(admin.get(own, params={"format": "json"})).json()["items"][0]
    assert doc["data_fields"]["label"] == own.rsplit("/", 1)[1]
    assert doc["data_fields"]["note"] == "original" and "date" not in doc["data_fields"]
    assert "HIJACKED" not in admin.get(own, params={"format": "xml"}).text
    assert admin.get(f"{own}/scans/7").status_code == 404
    assert admin.get(f"{own}/resources/NEW").status_code == 404


def test_collaborators_share_only_where_the_project_lets_them(world: World) -> None:
    """Sharing out of a project needs edit rights there, or the project's leave for collaborators
    (item 8); only its owners give that leave."""
    p, admin = world.projects["private"], world.admin
    fresh = f"C{uuid.uuid4().hex[:8]}"
    _ok(admin.put(f"/data/projects/{p}/subjects/{fresh}"))
    share = f"/data/projects/{p}/subjects/{fresh}/projects/{world.pub}"
    with world.callers["collaborator"]() as c:
        assert c.put(share).status_code == 403
        assert c.put(f"/data/projects/{p}/collaborator_sharing/true").status_code == 403
    with world.callers["member"]() as c:
        assert c.put(f"/data/projects/{p}/collaborator_sharing/true").status_code == 403
    with world.callers["owner"]() as c:
        assert c.get(f"/data/projects/{p}/collaborator_sharing").text == "false"
        _ok(c.put(f"/data/projects/{p}/collaborator_sharing/true"))
        assert c.get(f"/data/projects/{p}/collaborator_sharing").text == "true"
    try:
        with world.callers["collaborator"]() as c:
            _ok(c.put(share))
        with world.callers["stranger"]() as c:  # the leave is for the project's collaborators only
            _own, via = _shared_pair(world, "private", world.dst)
            assert c.put(f"{via}/projects/{world.pub}").status_code == 403
    finally:
        with world.callers["owner"]() as c:
            _ok(c.put(f"/data/projects/{p}/collaborator_sharing/false"))


def test_a_project_keeps_at_least_one_owner(world: World) -> None:
    """The last owner can neither leave, nor be removed, nor be demoted (item 13)."""
    admin = world.admin
    pid = f"O{uuid.uuid4().hex[:6]}"
    with world.callers["owner"]() as owner:
        _ok(owner.put(f"/data/projects/{pid}"))
        for r in (
            owner.delete(f"/data/projects/{pid}/users/Owners/owner"),
            owner.put(f"/data/projects/{pid}/users/Members/owner"),
            owner.put(f"/data/projects/{pid}/users/Collaborators/owner"),
            admin.delete(f"/data/projects/{pid}/users/Owners/owner"),
        ):
            assert r.status_code == 409 and "owner" in r.text.lower(), (r.request.url, r.text)
        _ok(owner.put(f"/data/projects/{pid}/users/Owners/member"))
        _ok(owner.put(f"/data/projects/{pid}/users/Members/owner"))  # another owner stays: allowed
    with world.callers["member"]() as member:
        assert member.delete(f"/data/projects/{pid}/users/Owners/member").status_code == 409
        roles = {
            r["login"]: r["role"]
            for r in _ok(member.get(f"/data/projects/{pid}/users", params={"format": "json"})).json()[
                "ResultSet"
            ]["Result"]
        }
        assert roles == {"member": "owner", "owner": "member"}


def test_a_session_under_a_shared_subject_belongs_to_its_own_project(world: World) -> None:
    """A session made in dst under a subject shared in from a public project is dst's: its editors
    change it, its scans and its files without any rights in the subject's project."""
    pub, admin = world.projects["public"], world.admin
    subject = f"T{uuid.uuid4().hex[:6]}"
    _ok(admin.put(f"/data/projects/{pub}/subjects/{subject}"))
    _ok(
        admin.put(
            f"/data/projects/{pub}/subjects/{subject}/projects/{world.dst}", params={"label": f"{subject}d"}
        )
    )
    subject += "d"  # its label in dst
    session = f"/data/projects/{world.dst}/subjects/{subject}/experiments/M{uuid.uuid4().hex[:6]}"
    with world.callers["stranger"]() as c:  # owns dst, only reads the public project
        assert c.put(session, params={"xsiType": "xnat:mrSessionData"}).status_code == 201
        _ok(c.put(session, params={"note": "mine"}))
        _ok(c.put(f"{session}/scans/1", params={"xsiType": "xnat:mrScanData"}))
        _ok(c.put(f"{session}/resources/R/files/a.txt", content=b"a", params={"inbody": "true"}))
        _ok(c.put(f"{session}/scans/1/resources/DICOM/files/b.txt", content=b"b", params={"inbody": "true"}))
        assert c.get(f"{session}/resources/R/files/a.txt").content == b"a"
        _ok(c.delete(f"{session}/resources/R/files/a.txt"))
        job = _ok(c.post("/xapi/jobs", json={"command": "dcm2niix", "target": f"{session}/scans/1"})).json()[
            0
        ]
        assert job["target"] == f"{session}/scans/1"  # the subject as labelled in dst, not in pub
        assert c.post(f"/xapi/jobs/{job['id']}/cancel").status_code in (200, 409)  # 409: it ended already
        # the subject itself stays the public project's
        assert (
            c.put(f"/data/projects/{world.dst}/subjects/{subject}", params={"gender": "male"}).status_code
            == 403
        )
    assert _field(admin, session, "note") == "mine"
