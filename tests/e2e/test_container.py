"""The Containerfile, built with podman and its image run: xnatd, dcm2niix and dcmtk from the image.

No container registry is reachable here, so the base image (Debian 12, as the Containerfile's
default `debian:bookworm-slim`) is made with debootstrap and imported; a proxy's CA certificate that
this machine trusts is added to it, as a site behind such a proxy would. podman builds with chroot
isolation in a storage folder of the test's own. This sandbox forbids `podman run` (no rlimits, no
cgroups), so the image's file tree is mounted and its command started with chroot, as the user
the image runs as: the network is the host's, so the test talks to it on loopback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.live_server import REPO, free_port, stop_process, wait_ready

pytestmark = pytest.mark.slow

UV = REPO / ".tools" / "bin" / "uv"
MIRROR = "http://deb.debian.org/debian"


def _run(args: list[str | Path], timeout: float = 900, **kw: object) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{args[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return str(done.stdout)


class Podman:
    """podman with storage of its own (its run folder's path must be short: under 50 characters)."""

    def __init__(self, root: Path) -> None:
        self.run_root = Path(tempfile.mkdtemp(prefix="xnatd-podman-"))
        self.base = ["podman", "--root", root, "--runroot", self.run_root]
        self.base += ["--storage-driver", "overlay", "--cgroup-manager", "cgroupfs"]

    def __call__(self, *args: str | Path, **kw: object) -> str:
        return _run([*self.base, *args], **kw).strip()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Podman, str]]:
    for tool in ("podman", "debootstrap"):
        assert shutil.which(tool), f"{tool} is missing: `make install-system` installs it"
    work = tmp_path_factory.mktemp("container")
    context = work / "context"
    (context / "dist").mkdir(parents=True)
    shutil.copy(REPO / "Containerfile", context / "Containerfile")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", context / "dist", REPO])
    _run([UV, "export", "--locked", "--no-hashes", "--no-emit-project", "--extra", "postgres",
          "--extra", "jobqueue", "-o", context / "dist" / "constraints.txt"], cwd=REPO)  # fmt: skip
    rootfs = work / "rootfs"
    _run(["debootstrap", "--variant=minbase", "--include=ca-certificates", "bookworm", rootfs, MIRROR])
    for crt in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy(crt, rootfs / "usr/local/share/ca-certificates" / crt.name)
    _run(["chroot", rootfs, "update-ca-certificates"])
    podman = Podman(work / "podman")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    _run([*podman.base, "import", "-", "localhost/xnatd-test-base"], stdin=tar.stdout)
    tar.wait()
    shutil.rmtree(rootfs)
    podman("build", "--isolation", "chroot", "--build-arg", "BASE=localhost/xnatd-test-base",
           "-t", "localhost/xnatd-test", context)  # fmt: skip
    try:
        yield podman, "localhost/xnatd-test"
    finally:
        subprocess.run(
            [*map(str, podman.base), "system", "reset", "--force"], capture_output=True, check=False
        )
        shutil.rmtree(podman.run_root, ignore_errors=True)


@pytest.fixture
def mounted(image: tuple[Podman, str]) -> Iterator[Path]:
    podman, name = image
    container = podman("create", name)
    root = Path(podman("mount", container))
    mounts = [root / "proc", root / "dev"]
    _run(["mount", "-t", "proc", "proc", mounts[0]])
    _run(["mount", "--bind", "/dev", mounts[1]])
    try:
        yield root
    finally:
        for m in mounts:
            subprocess.run(["umount", "-l", str(m)], check=False)
        podman("umount", container)
        podman("rm", container)


def test_image_serves_http_and_dicom_with_its_own_xnatd_and_dcmtk(mounted: Path, tmp_path: Path) -> None:
    root = mounted
    assert (root / "usr/bin/storescu").exists(), "dcmtk is in the image"
    assert (root / "opt/xnatd/bin/dcm2niix").exists(), "dcm2niix comes with the wheel's dependencies"
    port, dicom_port = free_port(), free_port()
    env = {
        "PATH": "/opt/xnatd/bin:/usr/bin:/bin",
        "HOME": "/var/lib/xnatd",
        "XNATD_DATA": "/var/lib/xnatd/data",
        "XNATD_HOST": "127.0.0.1",  # the image says 0.0.0.0; here the network is the host's
        "XNATD_PORT": str(port),
        "XNATD_DICOM_PORT": str(dicom_port),
        "XNATD_ADMIN_PASSWORD": "container-admin",
    }
    log = tmp_path / "serve.log"
    command = ["chroot", "--userspec=xnatd:xnatd", str(root), "/usr/bin/env", "-i"]
    command += [f"{k}={v}" for k, v in env.items()] + ["xnatd", "serve"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=out, cwd="/")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, log, timeout=120)
        with httpx.Client(base_url=url, auth=("admin", "container-admin"), timeout=60) as http:
            assert http.get("/xapi/siteConfig/buildInfo").json()["xnatdVersion"]
            assert http.put("/data/projects/BOX").status_code in (200, 201)
            put = http.put("/data/projects/BOX/resources/R/files/a.txt?inbody=true", content=b"boxed")
            assert put.status_code == 200, put.text
        echo = subprocess.run(
            ["chroot", str(root), "echoscu", "-aec", "XNAT", "127.0.0.1", str(dicom_port)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert echo.returncode == 0, echo.stderr
        stored = root / "var/lib/xnatd/data/archive/BOX/resources/R/a.txt"
        assert stored.read_bytes() == b"boxed" and stored.stat().st_uid == _uid(root, "xnatd")
    finally:
        stop_process(proc)


def _uid(root: Path, user: str) -> int:
    for line in (root / "etc/passwd").read_text().splitlines():
        name, _, uid, *_ = line.split(":")
        if name == user:
            return int(uid)
    raise AssertionError(f"no user {user} in the image")


def test_containerfile_and_docs_agree() -> None:
    """The image's settings are the ones docs/deploy.md tells container users to set."""
    text = (REPO / "Containerfile").read_text()
    docs = (REPO / "docs" / "deploy.md").read_text()
    assert "## 6. Containers" in docs
    for needle in ("XNATD_ADMIN_PASSWORD", "/var/lib/xnatd", "make container", "8104"):
        assert needle in text and needle in docs, needle
    assert os.path.basename(str(REPO / "Containerfile")) in docs
