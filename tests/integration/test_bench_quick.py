"""The benchmark suite runs end to end in its quick mode. Timings are never asserted here (see bench/)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.live_server import REPO, python

pytestmark = pytest.mark.slow


def test_bench_quick_writes_a_report_with_all_three_sections(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [python(), "-m", "bench.run", "--quick", "--no-curl", "--out", str(out), "--workdir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    report = out / "report.md"
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    text = report.read_text()
    for heading in ("## 1. Upload", "## 2. Zip download", "## 3. Listing"):
        assert heading in text, text[:3000]
    assert "did not complete" not in text, text
    assert "![" in text and (out / "rss.png").exists()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("xnatd-bench-")]
    assert leftovers == [], "the benchmark left its work folder behind"
