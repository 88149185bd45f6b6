"""The web pages in a real browser: log in, create a project, Manage Files (Add Folder, upload files and a
folder with the progress bar, zip download, delete with confirmation), archive a prearchive session and
see its thumbnails, run a dcm2niix conversion to completion, issue an alias token and use it with curl,
and a user who may not see a project does not see it anywhere."""

from __future__ import annotations

import io
import subprocess
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import LAPTOP, Shots, login
from tests.support.dicom_copies import TESTDATA, dicom_files
from tests.support.live_server import LiveServer

pytestmark = pytest.mark.slow

GE_SERIES = TESTDATA / "dcm_qa_nih" / "20180918GE" / "mr_0004"


def uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def create_project(page: Page, url: str, project: str, name: str) -> None:
    page.goto(url + "/app/projects")
    if not page.is_visible("#new-project"):
        page.click("summary:has-text('New project')")
    page.fill("#new-project input[name=project]", project)
    page.fill("#new-project input[name=name]", name)
    page.fill("#new-project textarea[name=description]", "Made by the browser tests")
    page.click("#new-project button")
    page.wait_for_url(f"**/app/projects/{project}")


def test_login_redirects_and_logout(browser: Browser, server: LiveServer, shots: Shots) -> None:
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/app/login?next=%2Fapp%2Fprojects")
    shots.take(page, "login")
    user, password = (page.locator(f"input[name={n}]").bounding_box() for n in ("username", "password"))
    assert user and password
    assert (user["x"], user["width"]) == (password["x"], password["width"]), "the fields line up"
    assert password["y"] > user["y"] + user["height"], "one field under the other"
    # The curl hint names this very server, ready to paste.
    expect(page.locator("p.hint code")).to_have_text(f'curl -u USER "{server.url}/data/projects"')
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong")
    page.click("button:has-text('Log in')")
    expect(page.locator(".flash.error")).to_contain_text("Wrong user name or password")
    page.goto(server.url + "/app/projects/NOPE?x=1")  # remembered, and returned to after logging in
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "admin")
    page.click("button:has-text('Log in')")
    expect(page).to_have_url(server.url + "/app/projects/NOPE?x=1")
    expect(page.locator("h1")).to_have_text("Not found")
    page.click("button:has-text('Log out')")
    expect(page).to_have_url(server.url + "/app/login")
    page.goto(server.url + "/app/projects")
    expect(page).to_have_url(server.url + "/app/login?next=%2Fapp%2Fprojects")
    context.close()


def test_project_and_manage_files(
    admin_page: Page, server: LiveServer, admin_http: httpx.Client, shots: Shots, tmp_path: Path
) -> None:
    page, url, project = admin_page, server.url, uid("WEB")
    create_project(page, url, project, "Web <b>pilot</b>")
    expect(page.locator("h1")).to_contain_text("Web <b>pilot</b>")  # shown as text, never as markup
    page.fill("#new-subject input[name=label]", "Subj01")
    page.click("#new-subject button")
    page.wait_for_url("**/subjects/Subj01")
    page.select_option("#demographics select[name=gender]", "female")
    page.fill("#demographics input[name=age]", "42")
    page.click("#demographics button")
    expect(page.locator("#demographics input[name=age]")).to_have_value("42")
    subject = admin_http.get(f"/data/projects/{project}/subjects/Subj01", params={"format": "json"}).json()
    assert subject["items"][0]["children"][0]["items"][0]["data_fields"]["gender"] == "female"
    shots.take(page, "subject")

    page.goto(f"{url}/app/projects/{project}")
    page.fill("#new-session input[name=subject]", "Subj01")
    page.fill("#new-session input[name=label]", "Subj01_MR1")
    page.click("#new-session button")
    page.wait_for_url("**/experiments/Subj01_MR1")
    expect(page.locator(".rest code")).to_have_text(
        f"{url}/data/projects/{project}/subjects/Subj01/experiments/Subj01_MR1"
    )
    page.click("a:has-text('Manage Files')")
    page.fill("#add-folder input[name=folder]", "NIFTI")
    page.fill("#add-folder input[name=format]", "NIFTI")
    page.click("#add-folder button")
    expect(page.locator(".flash")).to_contain_text("Folder NIFTI created")

    files = [tmp_path / "run1.nii", tmp_path / "run1.json"]
    files[0].write_bytes(b"\0" * 300_000)
    files[1].write_text('{"RepetitionTime": 2.0}')
    tree = tmp_path / "derivatives"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("bb")
    page.fill("#upload input[name=folder]", "NIFTI")
    page.set_input_files("#upload input[name=files]", [str(f) for f in files])
    page.set_input_files("#upload input[name=tree]", str(tree))
    page.click("#upload button")
    page.wait_for_load_state("networkidle")
    folder = page.locator("details.folder", has=page.locator(".name", has_text="NIFTI"))
    expect(folder.locator(".meta")).to_contain_text("4 files")
    for name in ("run1.nii", "run1.json", "derivatives/a.txt", "derivatives/sub/b.txt"):
        expect(folder.locator("table.files")).to_contain_text(name)
    rest = f"/data/projects/{project}/subjects/Subj01/experiments/Subj01_MR1/resources/NIFTI/files"
    listed = {
        r["Name"]: r for r in admin_http.get(rest, params={"format": "json"}).json()["ResultSet"]["Result"]
    }
    assert listed["run1.nii"]["Size"] == "300000" and "b.txt" in listed
    shots.take(page, "manage-files")

    with page.expect_download() as download:
        folder.locator("a:has-text('zip')").click()
    names = zipfile.ZipFile(download.value.path()).namelist()
    assert any(n.endswith("resources/NIFTI/files/derivatives/sub/b.txt") for n in names), names

    page.once("dialog", lambda dialog: dialog.accept())
    folder.locator("tr", has_text="run1.json").locator("button:has-text('Delete')").click()
    expect(page.locator(".flash")).to_contain_text("run1.json deleted")
    assert admin_http.get(f"{rest}/run1.json").status_code == 404
    page.once("dialog", lambda dialog: dialog.dismiss())  # cancelling the dialog deletes nothing
    page.locator("details.folder", has_text="NIFTI").locator("button:has-text('Delete folder')").click()
    assert admin_http.get(f"{rest}/run1.nii").status_code == 200


def test_manage_files_refuses_a_file_over_a_folder_and_a_folder_over_a_file(
    admin_page: Page, server: LiveServer, admin_http: httpx.Client, shots: Shots, tmp_path: Path
) -> None:
    """Issue 17: uploading ``sub`` where the folder ``sub/`` holds files moved the folder aside and
    lost it; the page says why nothing was stored, and the files stay."""
    page, project = admin_page, uid("CLASH")
    rest = f"/data/projects/{project}/resources/R/files"
    assert admin_http.put(f"/data/projects/{project}").status_code in (200, 201)
    for name in ("sub/dir/ok.txt", "top.txt"):
        assert (
            admin_http.put(f"{rest}/{name}", content=name.encode(), params={"inbody": "true"}).status_code
            == 200
        )
    (tmp_path / "sub").write_text("a file named like the folder")
    tree = tmp_path / "top.txt"  # a folder named like the file
    tree.mkdir()
    (tree / "x.txt").write_text("x")
    page.goto(f"{server.url}/app/files/projects/{project}")
    status = page.locator("#upload .status")
    page.fill("#upload input[name=folder]", "R")
    page.set_input_files("#upload input[name=files]", str(tmp_path / "sub"))
    page.click("#upload button")
    expect(status).to_contain_text("Upload failed: 'sub' is a folder")
    page.set_input_files("#upload input[name=files]", [])
    page.set_input_files("#upload input[name=tree]", str(tree))
    page.click("#upload button")
    expect(status).to_contain_text("Upload failed: 'top.txt' is a file")
    shots.take(page, "manage-files-clash")
    rows = admin_http.get(rest, params={"format": "json"}).json()["ResultSet"]["Result"]
    assert sorted(r["URI"].split("/files/", 1)[1] for r in rows) == ["sub/dir/ok.txt", "top.txt"]
    assert admin_http.get(f"{rest}/sub/dir/ok.txt").content == b"sub/dir/ok.txt"


def import_series(http: httpx.Client, project: str) -> None:
    body = io.BytesIO()
    with zipfile.ZipFile(body, "w") as zf:
        for path in dicom_files(GE_SERIES):
            zf.write(path, f"mr_0004/{path.name}")
    r = http.post(
        "/data/services/import",
        params={"import-handler": "DICOM-zip", "dest": f"/prearchive/projects/{project}"},
        content=body.getvalue(),
        headers={"Content-Type": "application/zip"},
    )
    assert r.status_code == 200, r.text


def test_prearchive_archive_thumbnails_and_conversion(
    admin_page: Page, server: LiveServer, admin_http: httpx.Client, shots: Shots
) -> None:
    page, url, project = admin_page, server.url, uid("ARC")
    create_project(page, url, project, "Archive tests")
    import_series(admin_http, project)
    page.goto(url + "/app/prearchive")
    card = page.locator("section.prearchive", has_text=project)
    expect(card.locator("table")).to_contain_text("150")  # the scan with its file count
    shots.take(page, "prearchive")
    card.locator(".archive-form input[name=subject]").fill("Sub02")
    card.locator(".archive-form input[name=label]").fill("Sub02_MR1")
    card.locator(".archive-form button").click()
    page.wait_for_url(f"**/app/projects/{project}/subjects/Sub02/experiments/Sub02_MR1")
    thumb = page.locator("td.thumb img").first
    expect(thumb).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    expect(page.locator("table.scans")).to_contain_text("150")  # frames
    shots.take(page, "session")
    with page.expect_download() as download:
        page.click("a:has-text('Download zip')")
    names = zipfile.ZipFile(download.value.path()).namelist()
    assert sum("/scans/4-" in n and "/resources/DICOM/files/" in n for n in names) == 150
    assert "Sub02_MR1/scans/4-Axial_EPI_FMRI__Interleaved_I_to_S_/resources/SNAPSHOTS/files/4_qc.png" in names

    page.locator("table.scans button:has-text('dcm2niix')").first.click()
    page.wait_for_url("**/app/jobs/*")
    expect(page.locator("#job-status")).to_have_text("complete", timeout=120_000)
    expect(page.locator("#job-log")).not_to_be_empty()
    shots.take(page, "job")
    page.goto(url + "/app/jobs")
    expect(page.locator("table")).to_contain_text("complete")
    page.goto(f"{url}/app/projects/{project}")
    expect(page.locator("main")).to_contain_text("Sub02_MR1")
    shots.take(page, "project")
    page.goto(f"{url}/app/projects")
    shots.take(page, "projects")
    session = f"/data/projects/{project}/subjects/Sub02/experiments/Sub02_MR1"
    nifti = admin_http.get(f"{session}/scans/ALL/resources/NIFTI/files", params={"format": "json"})
    assert any(r["Name"].endswith(".nii.gz") for r in nifti.json()["ResultSet"]["Result"])


def test_alias_token_with_curl(admin_page: Page, server: LiveServer, shots: Shots) -> None:
    page, url = admin_page, server.url
    page.goto(url + "/app/tokens")
    page.click("#issue button")
    alias, secret = page.inner_text("#alias"), page.inner_text("#secret")
    shots.take(page, "tokens")

    def curl() -> int:
        out = subprocess.run(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-u",
                f"{alias}:{secret}",
                f"{url}/data/projects",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        return int(out.stdout)

    assert curl() == 200
    page.locator("tr", has_text=alias).locator("button:has-text('Invalidate')").click()
    expect(page.locator(".flash")).to_contain_text("no longer works")
    assert curl() == 401


def test_stranger_sees_no_private_project(
    browser: Browser, admin_page: Page, server: LiveServer, admin_http: httpx.Client, shots: Shots
) -> None:
    page, url, secret_project, stranger = admin_page, server.url, uid("SECRET"), uid("eve")
    create_project(page, url, secret_project, "Hidden")
    page.fill("#new-subject input[name=label]", "HiddenSubj")
    page.click("#new-subject button")
    page.goto(url + "/app/admin/users")
    page.click("summary:has-text('New user')")
    page.fill("#new-user input[name=username]", stranger)
    page.fill("#new-user input[name=password]", "pw-eve-1")
    page.click("#new-user button")
    expect(page.locator("table.grid")).to_contain_text(stranger)
    shots.take(page, "users")
    import_series(admin_http, secret_project)

    context = browser.new_context(viewport=LAPTOP)
    eve = context.new_page()
    login(eve, url, stranger, "pw-eve-1")
    expect(eve.locator("main")).not_to_contain_text(secret_project)
    eve.goto(f"{url}/app/search?q=HiddenSubj")
    expect(eve.locator("main")).to_contain_text("No subject matches")
    eve.goto(f"{url}/app/search?q={secret_project}")
    expect(eve.locator("main")).not_to_contain_text("HiddenSubj")
    for path in ("/app/prearchive", "/app/jobs"):
        eve.goto(url + path)
        expect(eve.locator("main")).not_to_contain_text(secret_project)
    for path in (
        f"/app/projects/{secret_project}",
        f"/app/projects/{secret_project}/subjects/HiddenSubj",
        f"/app/files/projects/{secret_project}",
        f"/app/files/projects/{secret_project}/subjects/HiddenSubj",
    ):
        response = eve.goto(url + path)
        assert response is not None and response.status == 404, path
        expect(eve.locator("main")).not_to_contain_text("HiddenSubj")
    missing = eve.goto(f"{url}/app/projects/NO_SUCH_{secret_project}")
    assert missing is not None and missing.status == 404  # the same answer as for a missing project
    context.close()


def test_shared_subject_page_shows_nothing_of_a_private_project(
    browser: Browser, server: LiveServer, admin_http: httpx.Client, shots: Shots
) -> None:
    """A public subject shared into a private project and given a session there: the subject's page
    in the public project lists no such session, and a private session shared into the public
    project shows there without naming its own project (issue 17, items 6 and 7)."""
    url, public, private, reader = server.url, uid("OPEN"), uid("CLOSED"), uid("rita")
    for pid, level in ((public, "public"), (private, "private")):
        assert admin_http.put(f"/data/projects/{pid}", params={"accessibility": level}).status_code == 200
    body = {"username": reader, "password": "pw-rita-1", "email": f"{reader}@example.org"}
    assert admin_http.post("/xapi/users", json=body).status_code in (200, 201)
    subject = f"/data/projects/{public}/subjects/Open1"
    assert admin_http.put(subject).status_code == 201
    assert admin_http.put(f"{subject}/projects/{private}").status_code == 200
    hidden = f"/data/projects/{private}/subjects/Open1/experiments/HushSession"
    made = admin_http.put(hidden, params={"xsiType": "xnat:mrSessionData", "note": "do-not-tell"})
    assert made.status_code == 201, made.text
    hidden_id = made.text
    lent = f"/data/projects/{private}/subjects/Lent1"
    assert admin_http.put(lent).status_code == 201
    assert (
        admin_http.put(
            f"{lent}/experiments/LentSession", params={"xsiType": "xnat:mrSessionData"}
        ).status_code
        == 201
    )
    assert admin_http.put(f"{lent}/projects/{public}", params={"label": "Borrowed1"}).status_code == 200
    assert (
        admin_http.put(
            f"{lent}/experiments/LentSession/projects/{public}", params={"label": "Borrowed"}
        ).status_code
        == 200
    )
    own = f"/data/projects/{public}/subjects/Borrowed1/experiments/OwnSession"
    assert admin_http.put(own, params={"xsiType": "xnat:mrSessionData"}).status_code == 201

    context = browser.new_context(viewport=LAPTOP)
    rita = context.new_page()
    login(rita, url, reader, "pw-rita-1")
    rita.goto(f"{url}/app/projects/{public}/subjects/Open1")
    expect(rita.locator("h1")).to_contain_text("Open1")
    shots.take(rita, "shared-subject")
    main = rita.locator("main")
    for secret in ("HushSession", hidden_id, private, "do-not-tell"):
        expect(main).not_to_contain_text(secret)
    assert private not in rita.content()  # not in links either
    rita.goto(f"{url}/app/projects/{public}/subjects/Borrowed1/experiments/Borrowed")
    expect(rita.locator("h1")).to_contain_text("Borrowed")
    expect(main).to_contain_text(public)
    assert private not in rita.content() and "LentSession" not in rita.content()
    rita.goto(f"{url}/app/projects/{public}/subjects/Borrowed1")
    expect(main).to_contain_text("Borrowed")
    assert private not in rita.content() and "LentSession" not in rita.content()
    # rita's own project, with the public subject shared in: she may un-share it, not change it, so
    # its pages offer no form to change it (the services would refuse: 403)
    mine = uid("MINE")
    assert admin_http.put(f"/data/projects/{mine}").status_code == 200
    assert admin_http.put(f"/data/projects/{mine}/users/Owners/{reader}").status_code == 200
    assert admin_http.put(f"{subject}/projects/{mine}", params={"label": "Mine1"}).status_code == 200
    rita.goto(f"{url}/app/projects/{mine}/subjects/Mine1")
    expect(rita.locator("h1")).to_contain_text("Mine1")
    expect(rita.locator("#demographics")).to_have_count(0)
    rita.goto(f"{url}/app/files/projects/{mine}/subjects/Mine1")
    expect(rita.locator("#upload")).to_have_count(0)
    expect(rita.locator("#add-folder")).to_have_count(0)
    rita.goto(f"{url}/app/projects/{mine}")  # her own project's page still offers its forms
    expect(rita.locator("#new-subject")).to_have_count(1)
    # a public session of the lent subject: its subject is Borrowed1 on every page, never Lent1
    for page_url in (f"/app/projects/{public}", "/app/search?q=OwnSession"):
        rita.goto(url + page_url)
        expect(main.locator("a", has_text="OwnSession").first).to_be_visible()
        expect(main).to_contain_text("Borrowed1")
        assert "Lent1" not in rita.content() and private not in rita.content(), page_url
    context.close()


def test_phone_layout(browser: Browser, server: LiveServer, admin_page: Page, shots: Shots) -> None:
    project = uid("PHONE")
    create_project(admin_page, server.url, project, "On a phone")
    cookies = admin_page.context.cookies()
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    context.add_cookies(cookies)
    phone = context.new_page()
    phone.goto(f"{server.url}/app/projects/{project}")
    expect(phone.locator("h1")).to_contain_text("On a phone")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shots.take(phone, "phone")
    context.close()
