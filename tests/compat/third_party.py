"""What tests/compat/test_third_party_tools.py and test_third_party_dax.py need around the tools they
drive: the lab's data imported from shared/testdata, the tools' environment (credentials as each tool
takes them), and for dax the site's pieces that are no part of dax: a processor, a job template, and
stand-ins for the two programs that cannot run here (Slurm's commands and the Singularity runtime)."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import textwrap
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.compat.helpers import ADMIN, describe, new_label
from tests.support.live_server import LiveServer, python
from tests.support.testdata import DICOM

BIN = Path(python()).parent  # the tools' console scripts live beside the project's interpreter
SIEMENS = DICOM / "dcm_qa_nih" / "20180918Si"  # 4 EPI series (3..6) of 2 mosaic files each
GE = DICOM / "dcm_qa_nih" / "20180918GE" / "mr_0004"  # one EPI series (4) of 150 slices
SIEMENS_SCANS = {  # scan ID -> (type, series folder)
    "3": ("EPI PE=AP", "mr_0003"),
    "4": ("EPI PE=PA", "mr_0004"),
    "5": ("EPI PE=RL", "mr_0005"),
    "6": ("EPI PE=LR", "mr_0006"),
}
GE_TYPE = "Axial EPI-FMRI (Interleaved I to S)"


def md5_file(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def md5s(folder: Path) -> dict[str, str]:
    """Path below ``folder`` → MD5 of every file in it."""
    return {str(p.relative_to(folder)): md5_file(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def dicom_md5s(series: Path) -> list[str]:
    return sorted(md5_file(p) for p in series.glob("*.dcm"))


@dataclass
class Lab:
    """A project as a lab has it after a scanning day: subject ``{P}_001`` with two imported MR
    sessions (xnatutils' ``PROJECT_SUBJECT_VISIT`` naming). Tests that write use other subjects."""

    server: LiveServer
    project: str
    subject: str
    mr01: str  # the Siemens session: scans 3, 4, 5, 6
    mr02: str  # the GE session: scan 4
    ids: dict[str, str] = field(default_factory=dict)  # label -> accession ID

    @property
    def url(self) -> str:
        return self.server.url

    def env(self, home: Path, credentials: bool = True) -> dict[str, str]:
        """The environment a tool runs in: its own HOME (netrc files), the project's scripts first on
        PATH, and XNAT_HOST/XNAT_USER/XNAT_PASS (yaxil, xnatutils and dax all read them)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("XNAT_")}
        env["HOME"] = str(home)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        if credentials:
            env.update(XNAT_HOST=self.url, XNAT_USER=ADMIN[0], XNAT_PASS=ADMIN[1])
        return env


def _zip(folder: Path, pattern: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for p in sorted(folder.rglob(pattern)):
            zf.write(p, str(p.relative_to(folder)))
    return buf.getvalue()


def make_lab(server: LiveServer) -> Lab:
    project = new_label("T")
    lab = Lab(server, project, f"{project}_001", f"{project}_001_MR01", f"{project}_001_MR02")
    with server.client() as http:
        assert http.put(f"/data/projects/{project}").status_code in (200, 201)
        for label, folder in ((lab.mr01, SIEMENS), (lab.mr02, GE)):
            dest = f"/archive/projects/{project}/subjects/{lab.subject}/experiments/{label}"
            r = http.post(
                "/data/services/import",
                params={"dest": dest},
                content=_zip(folder, "*.dcm"),
                headers={"Content-Type": "application/zip"},
            )
            assert r.status_code == 200, describe(r)
        for row in http.get("/data/experiments", params={"project": project, "format": "json"}).json()[
            "ResultSet"
        ]["Result"]:
            lab.ids[row["label"]] = row["ID"]
        subject = http.get(f"/data/projects/{project}/subjects/{lab.subject}", params={"format": "json"})
        lab.ids[lab.subject] = subject.json()["items"][0]["data_fields"]["ID"]
    return lab


def run(
    argv: list[str], env: dict[str, str], cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """A tool's console script as a user types it. A new session, so that no terminal is attached and
    password prompts read stdin, as in a batch job."""
    exe = BIN / argv[0] if (BIN / argv[0]).exists() else Path(argv[0])
    return subprocess.run(
        [str(exe), *argv[1:]],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        start_new_session=True,
    )


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """A tool run's output, once it exited 0 (else its output and errors in the failure)."""
    assert proc.returncode == 0, f"{proc.args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return str(proc.stdout)


def rows(http: httpx.Client, path: str, **params: str) -> list[dict[str, str]]:
    r = http.get(path, params={"format": "json", **params})
    assert r.status_code == 200, describe(r)
    return list(r.json()["ResultSet"]["Result"])


# --- dax: a site's processor, job template and cluster -------------------------------------------

PROCTYPE = "epiqa_v1"

# A dax v3 processor: the phase-encoding AP EPI scan's DICOM in, a report out.
PROCESSOR = textwrap.dedent(
    """\
    ---
    procyamlversion: 3.0.0-dev.0
    containers:
      - name: epiqa
        path: epiqa_v1.0.0.sif
    requirements:
      walltime: 0-1
      memory: 1G
    inputs:
      xnat:
        scans:
          - name: scan_epi
            types: EPI PE=AP
            resources:
              - resource: DICOM
                ftype: DIR
                fdest: dicom
    outputs:
      - path: report.txt
        type: FILE
        resource: REPORT
      - path: stats
        type: DIR
        resource: STATS
    command:
      type: singularity_exec
      container: epiqa
      args: epiqa /INPUTS /OUTPUTS
    description: EPI QA
    """
)

# The site's job template for v3 processors (dax fills ``${job_cmds}``): fetch the inputs from XNAT
# with a JSESSION cookie opened with the netrc credentials, run the container, leave the outputs
# where ``dax upload`` takes them, and flag the run ready.
JOB_TEMPLATE = textwrap.dedent(
    """\
    #!/bin/bash
    #SBATCH --account=${job_rungroup}
    #SBATCH --time=${job_walltime}
    #SBATCH --mem=${job_memory}
    #SBATCH -o ${job_output_file}
    ${job_cmds}
    set -e
    mkdir -p "$INDIR" "$OUTDIR"
    SESSID=$(curl -sSf -n "$XNATHOST/data/JSESSION")
    for IN in "${INLIST[@]}"; do
        IFS=',' read -r name kind uri <<< "$IN"
        if [ "$kind" == "FILE" ]; then
            curl -sSf -b "JSESSIONID=$SESSID" "$uri" -o "$INDIR/$name"
        else
            curl -sSf -b "JSESSIONID=$SESSID" "$uri?format=zip" -o "$INDIR/$name.zip"
            unzip -q -j "$INDIR/$name.zip" -d "$INDIR/$name" && rm "$INDIR/$name.zip"
        fi
    done
    curl -sSf -b "JSESSIONID=$SESSID" -X DELETE "$XNATHOST/data/JSESSION"
    eval $MAINCMD
    mkdir -p "$DSTDIR"
    echo "$VERSION" > "$DSTDIR/version.txt"
    for OUT in "${OUTLIST[@]}"; do
        IFS=',' read -r path kind resource <<< "$OUT"
        mkdir -p "$DSTDIR/$resource"
        if [ "$kind" == "DIR" ]; then cp -r "$OUTDIR/$path"/* "$DSTDIR/$resource/"
        else cp "$OUTDIR/$path" "$DSTDIR/$resource/"; fi
    done
    touch "$DSTDIR/READY_TO_UPLOAD.txt"
    """
)

JOB_ID = "4242"

# Stand-ins for what cannot run here. Slurm: sbatch runs the batch script at once, as a node would
# (its output where ``#SBATCH -o`` says); squeue shows no job; sacct reports the finished job's use.
# Singularity: runs the image's one command, ``epiqa IN OUT``, which lists its inputs' MD5s and
# writes one statistics file per input.
STAND_INS = {
    "sbatch": f"""\
        #!/bin/bash
        log=$(sed -n 's/^#SBATCH -o //p' "$1")
        bash "$1" > "${{log:-/dev/null}}" 2>&1
        echo "Submitted batch job {JOB_ID}"
        """,
    "squeue": """\
        #!/bin/bash
        exit 0
        """,
    "sacct": """\
        #!/bin/bash
        case "$*" in
            *MaxRss*) echo "51200K" ;;
            *CPUTime*) echo "00:00:03" ;;
            *NodeList*) echo "node001" ;;
        esac
        """,
    "singularity": """\
        #!/bin/bash
        declare -A binds
        while [ $# -gt 0 ]; do
            case "$1" in
                --bind) IFS=: read -r src dst <<< "$2"; binds[$dst]=$src; shift 2 ;;
                --home) shift 2 ;;
                *.sif) shift; break ;;
                *) shift ;;
            esac
        done
        [ "$1" == "epiqa" ] || { echo "unknown command: $1" >&2; exit 2; }
        (cd "${binds[$2]}" && find . -type f | sort | xargs md5sum) > "${binds[$3]}/report.txt"
        mkdir -p "${binds[$3]}/stats"
        for f in "${binds[$2]}"/dicom/*; do stat -c %s "$f" > "${binds[$3]}/stats/$(basename "$f").size"; done
        """,
}


def dax_site(lab: Lab, root: Path) -> tuple[Path, dict[str, str]]:
    """A dax site for ``lab``'s project in ``root``: settings file, processor, job template, results
    folder, the stand-ins on PATH and a netrc with the XNAT login (dax and curl both read it).
    Returns the settings file and the environment to run dax in."""
    home, tools, resdir = root / "home", root / "bin", root / "resdir"
    for folder in (home, tools, resdir):
        folder.mkdir(parents=True)
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin {ADMIN[0]}\npassword {ADMIN[1]}\n")
    netrc.chmod(0o600)
    for name, text in STAND_INS.items():
        (tools / name).write_text(textwrap.dedent(text))
        (tools / name).chmod(0o755)
    (root / f"{PROCTYPE}.0.0.yaml").write_text(PROCESSOR)
    (root / "job_template_v3.txt").write_text(JOB_TEMPLATE)
    settings = root / "settings.yaml"
    settings.write_text(
        textwrap.dedent(
            f"""\
            ---
            processorlib: {root}
            jobtemplate: {root}/job_template.txt
            resdir: {resdir}
            attrs:
              xnat_host: {lab.url}
              xnat_user: {ADMIN[0]}
              xnat_pass: {ADMIN[1]}
              job_rungroup: lab
            yamlprocessors:
              - name: EPIQA
                filepath: {PROCTYPE}.0.0.yaml
            projects:
              - project: {lab.project}
                yamlprocessors: EPIQA
            """
        )
    )
    env = lab.env(home)
    env["PATH"] = f"{tools}{os.pathsep}{env['PATH']}"
    return settings, env
