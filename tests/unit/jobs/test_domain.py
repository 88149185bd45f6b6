"""The job state machine and command templates: pure rules, no I/O."""

from __future__ import annotations

import pytest

from xnatd.domain import jobs as J
from xnatd.errors import Conflict, InvalidInput

VALUES = {
    "input": "/archive/P/arc001/E/SCANS/4/DICOM",
    "output": "/data/jobs/1/1-ab/out",
    "project": "P",
    "subject": "S",
    "session": "E",
    "session_id": "XNAT_E00001",
    "scan": "4",
    "scan_type": "T1",
    "job": "1",
}


def test_the_transition_table_is_the_whole_state_machine() -> None:
    allowed = {
        ("queued", "running"),
        ("queued", "cancelled"),
        ("queued", "failed"),
        ("running", "complete"),
        ("running", "failed"),
        ("running", "cancelled"),
        ("running", "queued"),
    }
    for old in J.STATES:
        for new in J.STATES:
            assert J.can_move(old, new) == ((old, new) in allowed), (old, new)
            if (old, new) not in allowed:
                with pytest.raises(Conflict):
                    J.check_move(old, new)
    for final in J.FINAL:  # nothing leaves a final state: a cancelled job never completes
        assert not any(J.can_move(final, new) for new in J.STATES)
    assert set(J.sources_of("cancelled")) == {"queued", "running"}
    assert J.sources_of("complete") == ("running",)
    with pytest.raises(InvalidInput):
        J.check_move("queued", "exploded")


def test_builtin_dcm2niix_fills_to_a_plain_argument_list() -> None:
    argv = J.fill(J.DCM2NIIX.command, VALUES)
    assert argv == ["dcm2niix", "-b", "y", "-z", "y", "-f", "%s_%d", "-o", VALUES["output"], VALUES["input"]]


@pytest.mark.parametrize(
    "hostile",
    [
        "; rm -rf / #",
        "$(touch /tmp/pwned)",
        "`id`",
        "a b c",
        "x' || 'y",
        '"; cat /etc/passwd; "',
        "{input}",
        "{{output}}",
        "line\nbreak",
        "../../etc/passwd",
        "%s_%d",
    ],
)
def test_hostile_values_stay_one_argument_and_are_never_rescanned(hostile: str) -> None:
    template = ("tool", "--type", "{scan_type}", "pre-{scan_type}-post", "{input}")
    argv = J.fill(template, {**VALUES, "scan_type": hostile})
    assert argv == ["tool", "--type", hostile, f"pre-{hostile}-post", VALUES["input"]]


def test_values_that_would_become_options_or_hold_nul_are_refused() -> None:
    with pytest.raises(InvalidInput, match="option"):
        J.fill(("tool", "{scan_type}"), {**VALUES, "scan_type": "--force"})
    assert J.fill(("tool", "--x={scan_type}"), {**VALUES, "scan_type": "-1"}) == ["tool", "--x=-1"]
    with pytest.raises(InvalidInput, match="NUL"):
        J.fill(("tool", "{scan}"), {**VALUES, "scan": "a\x00b"})


def test_literal_braces_and_template_errors() -> None:
    assert J.fill(("t", "{{x}}", "{{{scan}}}"), VALUES) == ["t", "{x}", "{4}"]
    with pytest.raises(InvalidInput, match="Unknown template variable"):
        J.placeholders("{password}")
    with pytest.raises(InvalidInput, match="Unbalanced"):
        J.placeholders("{input")
    with pytest.raises(InvalidInput, match="Unbalanced"):
        J.placeholders("input}")


def test_command_definitions_are_validated() -> None:
    good = J.parse_command(
        {"name": "n4", "command": ["python3", "n4.py", "{input}", "{output}"], "output": {"resource": "N4"}}
    )
    assert good.input_resource == "DICOM" and good.output_resource == "N4" and good.timeout == 3600
    assert J.parse_command(good.to_json()) == good
    bad = [
        {"name": "dcm2niix", "command": ["x"], "output": {"resource": "R"}},
        {"name": "a b", "command": ["x"], "output": {"resource": "R"}},
        {"name": "ok", "command": "x {input}", "output": {"resource": "R"}},
        {"name": "ok", "command": [], "output": {"resource": "R"}},
        {"name": "ok", "command": ["{input}"], "output": {"resource": "R"}},
        {"name": "ok", "command": ["x", "{nope}"], "output": {"resource": "R"}},
        {"name": "ok", "command": ["x"], "output": {"resource": "../R"}},
        {"name": "ok", "command": ["x"], "output": {}},
        {"name": "ok", "command": ["x"], "output": {"resource": "R"}, "timeout": 0},
        {"name": "ok", "command": ["x"], "output": {"resource": "R"}, "timeout": True},
        {"name": "ok", "command": ["x"], "output": "R"},
    ]
    for doc in bad:
        with pytest.raises((InvalidInput, Conflict)):
            J.parse_command(doc)
