"""Passwords, sessions and alias tokens over HTTP: the one password rule wherever a password is set, a
password change that needs the current password and ends the user's other logins, and alias tokens
(and sessions opened with them) that may use the data but never change the account."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("accounts") / "data") as srv:
        yield srv


@dataclass
class User:
    name: str
    password: str


@pytest.fixture
def user(server: LiveServer, request: pytest.FixtureRequest) -> User:
    """A new user of its own for each test (logins of one test never touch another's)."""
    name = re.sub(r"[^A-Za-z0-9]", "", request.node.name)[-40:]
    with server.client() as admin:
        r = admin.post("/xapi/users", json={"username": name, "password": "first-pass", "email": "u@x.org"})
        assert r.status_code == 201, r.text
    return User(name, "first-pass")


def status(server: LiveServer, auth: tuple[str, str] | None = None, cookie: str | None = None) -> int:
    cookies = {"JSESSIONID": cookie} if cookie else None
    return httpx.get(f"{server.url}/data/auth", auth=auth, cookies=cookies, timeout=30).status_code


def client(
    server: LiveServer, auth: tuple[str, str] | None = None, cookie: str | None = None
) -> httpx.Client:
    cookies = {"JSESSIONID": cookie} if cookie else None
    return httpx.Client(base_url=server.url, auth=auth, cookies=cookies, timeout=30)


def session_of(server: LiveServer, auth: tuple[str, str]) -> str:
    r = httpx.post(f"{server.url}/data/JSESSION", auth=auth, timeout=30)
    assert r.status_code == 200, r.text
    return r.text.strip()


def token_of(server: LiveServer, auth: tuple[str, str]) -> tuple[str, str]:
    r = httpx.get(f"{server.url}/data/services/tokens/issue", auth=auth, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["alias"], r.json()["secret"]


def test_empty_and_weak_passwords_are_refused_wherever_one_is_set(server: LiveServer, user: User) -> None:
    me = (user.name, user.password)
    with server.client() as admin, client(server, me) as own:
        for weak in ("", " " * 10, "short", "=name"):  # "=name": the user's own name, in capitals
            new = "WEAKLING" if weak == "=name" else weak
            r = admin.post("/xapi/users", json={"username": "weakling", "password": new})
            assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain"), (weak, r.text)
            new = user.name.upper() if weak == "=name" else weak
            r = own.put("/xapi/users/profile", json={"password": new, "currentPassword": user.password})
            assert r.status_code == 400, (weak, r.text)
            r = admin.put(f"/xapi/users/{user.name}", json={"password": new})
            assert r.status_code == 400, (weak, r.text)
        assert admin.post("/xapi/users", json={"username": "weakling"}).status_code == 400  # none at all
        assert admin.get("/xapi/users/weakling").status_code == 404
    assert status(server, (user.name, "")) == 401  # `curl -u user:` never logs in
    assert status(server, me) == 200


def test_own_password_change_needs_the_current_password(server: LiveServer, user: User) -> None:
    me = (user.name, user.password)
    with client(server, me) as own:
        r = own.put("/xapi/users/profile", json={"password": "second-pass"})
        assert r.status_code == 400 and "currentPassword" in r.text
        r = own.put("/xapi/users/profile", json={"password": "second-pass", "currentPassword": "wrong-one"})
        assert r.status_code == 400 and "current password is wrong" in r.text
        assert status(server, (user.name, "second-pass")) == 401
        r = own.put(
            f"/xapi/users/{user.name}", json={"password": "second-pass", "currentPassword": user.password}
        )
        assert r.status_code == 200, r.text
    assert status(server, me) == 401
    assert status(server, (user.name, "second-pass")) == 200
    with server.client() as admin:  # a site administrator sets anyone's without it
        assert admin.put(f"/xapi/users/{user.name}", json={"password": "third-pass"}).status_code == 200
    assert status(server, (user.name, "third-pass")) == 200


def test_a_password_change_ends_the_other_sessions_and_every_token(server: LiveServer, user: User) -> None:
    me = (user.name, user.password)
    mine, other = session_of(server, me), session_of(server, me)
    token = token_of(server, me)
    token_session = session_of(server, token)
    assert status(server, me) == 200  # the Basic check is now remembered by the server
    assert [status(server, cookie=s) for s in (mine, other, token_session)] == [200] * 3
    assert status(server, token) == 200
    with client(server, cookie=mine) as web:
        r = web.put("/xapi/users/profile", json={"password": "second-pass", "currentPassword": user.password})
        assert r.status_code == 200, r.text
    assert status(server, cookie=mine) == 200  # the session that changed it goes on
    assert [status(server, cookie=s) for s in (other, token_session)] == [401, 401]
    assert status(server, token) == 401
    assert status(server, me) == 401  # the remembered check of the old password is no use
    assert status(server, (user.name, "second-pass")) == 200

    again = session_of(server, (user.name, "second-pass"))
    token = token_of(server, (user.name, "second-pass"))
    with server.client() as admin:  # set by an administrator: every session of the user ends
        assert admin.put(f"/xapi/users/{user.name}", json={"password": "third-pass"}).status_code == 200
    assert (status(server, cookie=mine), status(server, cookie=again), status(server, token)) == (401,) * 3


@pytest.mark.parametrize("login", ["token", "token_session"])
def test_an_alias_token_cannot_change_the_account(server: LiveServer, user: User, login: str) -> None:
    me = (user.name, user.password)
    token = token_of(server, me)
    admin_token = token_of(server, ("admin", "admin"))

    def as_token(of: tuple[str, str]) -> httpx.Client:
        if login == "token":
            return client(server, of)
        return client(server, cookie=session_of(server, of))

    with as_token(token) as c:
        assert c.get("/xapi/users/profile").status_code == 200  # the token works for everything else
        for change in (
            {"password": "stolen-pass", "currentPassword": user.password},
            {"email": "thief@example.org"},
            {"firstName": "Thief"},
        ):
            for url in ("/xapi/users/profile", f"/xapi/users/{user.name}"):
                r = c.put(url, json=change)
                assert r.status_code == 403 and "alias token" in r.text, (url, change, r.text)
        assert c.get("/data/services/tokens/issue").status_code == 403  # nor make itself new tokens
    with as_token(admin_token) as c:  # an administrator's token neither
        for change in ({"enabled": False}, {"admin": True}, {"password": "stolen-pass"}):
            assert c.put(f"/xapi/users/{user.name}", json=change).status_code == 403, change
        r = c.post("/xapi/users", json={"username": "sleeper", "password": "sleeper-pass", "admin": True})
        assert r.status_code == 403
        assert c.get(f"/data/services/tokens/issue/user/{user.name}").status_code == 403
    assert status(server, me) == 200 and status(server, ("sleeper", "sleeper-pass")) == 401
    with server.client() as admin:
        doc = admin.get(f"/xapi/users/{user.name}").json()
    assert (doc["email"], doc["firstName"], doc["enabled"], doc["admin"]) == ("u@x.org", "", True, False)


def test_disabling_a_user_ends_their_sessions_and_tokens_for_good(server: LiveServer, user: User) -> None:
    me = (user.name, user.password)
    session, token = session_of(server, me), token_of(server, me)
    token_session = session_of(server, token)
    with server.client() as admin:
        assert admin.put(f"/xapi/users/{user.name}", json={"enabled": False}).status_code == 200
        assert status(server, me) == 401
        assert admin.put(f"/xapi/users/{user.name}", json={"enabled": True}).status_code == 200
    assert status(server, me) == 200  # the password works again; what was open before does not
    assert (status(server, cookie=session), status(server, token), status(server, cookie=token_session)) == (
        401,
        401,
        401,
    )


def test_a_session_opened_with_a_token_ends_with_the_token(server: LiveServer, user: User) -> None:
    me = (user.name, user.password)
    alias, secret = token_of(server, me)
    session = session_of(server, (alias, secret))
    assert status(server, cookie=session) == 200
    with client(server, me) as own:
        assert own.get(f"/data/services/tokens/invalidate/{alias}/{secret}").status_code == 200
    assert status(server, cookie=session) == 401


# --- the web pages: the account page and the administrator's users page ------------------------------


@contextlib.contextmanager
def web_login(server: LiveServer, username: str, password: str) -> Iterator[httpx.Client]:
    """A cookie-carrying client logged in through the login form, as a browser is."""
    with httpx.Client(base_url=server.url, timeout=30) as web:
        form = web.get("/app/login")
        token = re.search(r'name="token" value="([0-9a-f]+)"', form.text)
        assert token is not None
        r = web.post("/app/login", data={"username": username, "password": password, "token": token.group(1)})
        assert r.status_code == 303, r.text
        yield web


def post_form(web: httpx.Client, path: str, **fields: str) -> httpx.Response:
    """Post a page's form with its CSRF token; follows the redirect to the page that says how it went."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', web.get(path).text)
    assert found is not None
    return web.post(path, data={**fields, "csrf": found.group(1)}, follow_redirects=True)


def test_account_page_changes_the_password_with_the_current_one(server: LiveServer, user: User) -> None:
    me = (user.name, user.password)
    other = session_of(server, me)
    with web_login(server, *me) as web:
        page = web.get("/app/account")
        assert page.status_code == 200 and 'id="change-password"' in page.text
        for fields, reason in (
            (
                {"current": "wrong-one", "password": "second-pass", "again": "second-pass"},
                "current password is wrong",
            ),
            ({"current": user.password, "password": "second-pass", "again": "other-pass"}, "differ"),
            ({"current": user.password, "password": "short", "again": "short"}, "too short"),
            ({"current": user.password, "password": "", "again": ""}, "empty"),
        ):
            r = post_form(web, "/app/account", **fields)
            assert reason in r.text, (fields, r.text[-2000:])
        assert status(server, cookie=other) == 200 and status(server, me) == 200
        r = post_form(web, "/app/account", current=user.password, password="second-pass", again="second-pass")
        assert "Password changed" in r.text
        assert web.get("/app/account").status_code == 200  # this login goes on
    assert status(server, cookie=other) == 401 and status(server, me) == 401
    assert status(server, (user.name, "second-pass")) == 200


def test_account_page_of_a_token_login_cannot_change_the_password(server: LiveServer, user: User) -> None:
    alias, secret = token_of(server, (user.name, user.password))
    with web_login(server, alias, secret) as web:
        page = web.get("/app/account")
        assert 'id="token-login"' in page.text and 'id="change-password"' not in page.text
        r = post_form(web, "/app/account", current=user.password, password="stolen-pass", again="stolen-pass")
        assert r.status_code == 403 and "alias token" in r.text
        assert 'id="issue"' not in web.get("/app/tokens").text
        r = post_form(web, "/app/tokens", action="issue")
        assert r.status_code == 403 and "alias token" in r.text
    assert status(server, (user.name, user.password)) == 200


def test_users_page_applies_the_same_password_rule(server: LiveServer, user: User) -> None:
    with web_login(server, "admin", "admin") as web:
        r = post_form(web, "/app/admin/users", action="password", username=user.name, password="short")
        assert "too short" in r.text
        r = post_form(web, "/app/admin/users", action="create", username="webweak", password="   x   ")
        assert "too short" in r.text or "only spaces" in r.text
        r = post_form(
            web, "/app/admin/users", action="password", username=user.name, password="admin-set-pass"
        )
        assert "password done" in r.text
    assert status(server, (user.name, user.password)) == 401
    assert status(server, (user.name, "admin-set-pass")) == 200
