"""The files of deploy/ (systemd units, environment file, nginx site) turned into real processes.

tests/e2e/test_deploy.py follows docs/deploy.md with these: each process is started from its unit's
ExecStart line, changed only where a substitution is named (paths, addresses, ports, process counts),
and every substitution must match, so a unit that drifts from the test fails it instead of being
silently ignored.
"""

from __future__ import annotations

import configparser
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import psutil

from tests.support.live_server import REPO

DEPLOY = REPO / "deploy"
UNITS = DEPLOY / "systemd"
# What systemd gives a service: no virtual environment activated, a plain PATH.
SYSTEMD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def exec_start(name: str, subs: dict[str, str]) -> list[str]:
    """The unit's ExecStart as argv: systemd's ``$$``/``%%`` escapes undone, then ``subs`` applied."""
    line = unit(name)["Service"]["ExecStart"].replace("$$", "$").replace("%%", "%")
    for old, new in subs.items():
        assert old in line, f"{name}: {old!r} is not in its ExecStart any more: {line}"
        line = line.replace(old, new)
    return shlex.split(line)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines, as systemd's EnvironmentFile= reads them (comments and blanks skipped)."""
    out = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)  # as the guide says


def service_env(env_file: Path, home: Path) -> dict[str, str]:
    """The environment systemd would give a unit with this EnvironmentFile (and nothing of ours)."""
    home.mkdir(parents=True, exist_ok=True)
    base = {"PATH": SYSTEMD_PATH, "HOME": str(home), "LANG": "C.UTF-8", "TMPDIR": str(home)}
    return {**base, **read_env_file(env_file)}


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd="/")


def stop_tree(proc: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGTERM the process we started (as systemd's KillSignal would), wait, then SIGKILL by PID any
    of its descendants that outlived it (none should: each role stops its own children)."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace)
    deadline = time.monotonic() + 5
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except psutil.TimeoutExpired:
            os.kill(child.pid, signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 (what the guide's Let's Encrypt files would be)."""
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def nginx_site(folder: Path, https_port: int, http_port: int, upstream_port: int) -> Path:
    """deploy/nginx/xnatd.conf with the certificate, ports and host name of this machine."""
    cert, key = self_signed(folder)
    text = (DEPLOY / "nginx" / "xnatd.conf").read_text()
    subs = {
        "listen 443 ssl": f"listen 127.0.0.1:{https_port} ssl",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "server 127.0.0.1:8080;": f"server 127.0.0.1:{upstream_port};",
        "/etc/letsencrypt/live/xnat.example.org/fullchain.pem": str(cert),
        "/etc/letsencrypt/live/xnat.example.org/privkey.pem": str(key),
        "server_name xnat.example.org;": "server_name localhost;",
    }
    for old, new in subs.items():
        assert old in text, f"deploy/nginx/xnatd.conf: {old!r} is gone"
        text = text.replace(old, new)
    site = folder / "xnatd.conf"
    site.write_text(text)
    return site


def nginx_main(folder: Path, site: Path) -> Path:
    """The part of Debian's /etc/nginx/nginx.conf that matters here, with every path in ``folder``.

    Run as root (the tests are), nginx's workers would switch to `nobody`, who cannot enter pytest's
    private temporary folders; Debian's own file says `user www-data`.
    """
    (folder / "body").mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = folder / "nginx.conf"
    main.write_text(
        f"{user}worker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        "events { worker_connections 512; }\n"
        f"http {{\n  access_log {folder}/access.log;\n  client_body_temp_path {folder}/body;\n"
        f"  proxy_temp_path {folder}/proxy;\n  fastcgi_temp_path {folder}/fastcgi;\n"
        f"  uwsgi_temp_path {folder}/uwsgi;\n  scgi_temp_path {folder}/scgi;\n  include {site};\n}}\n"
    )
    return main
