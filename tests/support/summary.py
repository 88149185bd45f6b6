"""One line from a pytest JUnit XML report, for the summary `make test` prints at its very end.

`make test` runs the SQLite suite (in two parts) and the PostgreSQL suite in two lanes side by
side, each whatever the others do; their own summary lines scroll far away, so the Makefile prints
one line per suite again at the end (a suite run in parts: its reports together, their seconds added).

    python -m tests.support.summary build/test-results/sqlite-1.xml build/test-results/sqlite-2.xml
    1063 tests: 1060 passed, 2 failed, 1 error, 0 skipped in 642 s; failed: tests.x::test_a, ...
"""

from __future__ import annotations

import sys
from pathlib import Path
from xml.etree import ElementTree


def summary(*reports: Path) -> str:
    missing = [r.name for r in reports if not r.exists()]
    if len(missing) == len(reports):
        return "no report (the suite did not run)"
    total = failures = errors = skipped = 0
    seconds = 0.0
    bad: list[str] = []
    for report in reports:
        if not report.exists():
            continue
        root = ElementTree.parse(report).getroot()
        for suite in [root] if root.tag == "testsuite" else list(root.iter("testsuite")):
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
    line += f"; failed: {', '.join(bad)}" if bad else ""
    return line + (f"; no report from {', '.join(missing)} (that part did not run)" if missing else "")


if __name__ == "__main__":
    print(summary(*(Path(a) for a in sys.argv[1:])))
