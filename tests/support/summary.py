"""One line from a pytest JUnit XML report, for the summary `make test` prints at its very end.

`make test` runs the SQLite and the PostgreSQL suites side by side, each whatever the other does;
their own summary lines scroll far away, so the Makefile prints both again, one under the other.

    python -m tests.support.summary build/test-results/sqlite.xml
    1063 tests: 1060 passed, 2 failed, 1 error, 0 skipped in 642 s; failed: tests.x::test_a, ...
"""

from __future__ import annotations

import sys
from pathlib import Path
from xml.etree import ElementTree


def summary(report: Path) -> str:
    if not report.exists():
        return "no report (the suite did not run)"
    root = ElementTree.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = failures = errors = skipped = 0
    seconds = 0.0
    bad: list[str] = []
    for suite in suites:
        total += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0))
        errors += int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
        seconds += float(suite.get("time", 0))
        for case in suite.iter("testcase"):
            if case.find("failure") is not None or case.find("error") is not None:
                bad.append(f"{case.get('classname')}::{case.get('name')}")
    passed = total - failures - errors - skipped
    line = (
        f"{total} tests: {passed} passed, {failures} failed, {errors} "
        f"{'error' if errors == 1 else 'errors'}, {skipped} skipped in {seconds:.0f} s"
    )
    return line + (f"; failed: {', '.join(bad)}" if bad else "")


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))
