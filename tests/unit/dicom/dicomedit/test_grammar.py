"""Scripts that do not parse, or name what does not exist, are refused with the line and column
of the problem and a plain reason; the hash names a script's text, not its spelling of line ends."""

from __future__ import annotations

import pytest

from xnatd.dicom.dicomedit import parse, script_hash
from xnatd.errors import InvalidInput, ScriptError


@pytest.mark.parametrize(
    ("script", "line", "column", "reason"),
    [
        ('version "6.1"\n(0010,0010) := "a\n', 2, 16, "string is not closed"),
        ('version "6.1"\n(0010,0010) = \n', 2, 15, "unexpected end of line"),
        ('version "6.1"\n\n  (0010,001G) := "x"\n', 3, 3, "a tag must be"),
        ('(0010,0010) := "x"\n- \n', 2, 3, "unexpected end of line"),
        ('version "6.1"\nif (0008,0060) = "MR" {\n  - (0010,0010)\n', 4, 1, "ends too early"),
        ('(0010,0010) := "x"\nversion "6.1"\n', 2, 1, "must be the script's first statement"),
        ('version "5.0"\n', 1, 1, 'version "5.0" is not a DicomEdit 6 version'),
        ('version "6.1"\n(0010,0010) := lowercas[(0010,0010)]\n', 2, 16, "unknown function lowercas"),
        ("(0010,0010) := substring[(0010,0010)]\n", 1, 16, "substring takes 2 to 3 arguments, not 1"),
        ('(0010,0010) := lookup["pid", (0010,0020)]\n', 1, 16, "lookup is not supported"),
        ('x := 1\n(0010,{ACME}10) := "x"\n', 2, 1, "a private creator needs an odd group"),
        ('(0002,0010) := "1.2"\n', 1, 1, "groups 0000 and 0002"),
        ('(0010,9999) := "x"\n', 1, 1, "not in the DICOM dictionary"),
        ("- */\n", 1, 5, "unexpected end of line"),
        ('retainPrivateTags["(0019,{SIEMENS}1)"]\n', 1, 19, "is not a tag path"),
        ("- (0008,1140)[0]\n", 1, 3, "an item number must be followed by"),
    ],
)
def test_broken_scripts_are_refused_at_their_line_and_column(
    script: str, line: int, column: int, reason: str
) -> None:
    with pytest.raises(ScriptError) as caught:
        parse(script)
    err = caught.value
    assert (err.line, err.column) == (line, column), err.message
    assert reason in err.reason
    assert str(err).startswith(f"line {line}, column {column}: ")
    assert isinstance(err, InvalidInput)  # so the API answers 400


def test_else_may_start_the_line_after_a_closing_brace() -> None:
    script = parse(
        'if (0008,0060) = "CT" {\n  - (0010,0010)\n}\n// a comment\n'
        'elseif modality ~ "M.*" {\n  echo "mr"\n}\n'
        "else\n{\n  echo\n}\n"
    )
    conditional = script.statements[0]
    assert len(conditional.branches) == 2  # type: ignore[union-attr]
    assert len(conditional.otherwise) == 1  # type: ignore[union-attr]
    assert script.variables == frozenset({"modality"})


def test_variables_are_what_the_script_reads_but_never_sets() -> None:
    script = parse('version "6.1"\nlabel := "x"\n(0010,0010) := label\n(0010,0020) := session\n')
    assert script.variables == frozenset({"session"})
    assert script.version == "6.1"


def test_hash_ignores_line_ends_and_trailing_blanks_but_not_content() -> None:
    text = 'version "6.1"\n(0010,0010) := subject\n'
    assert script_hash(text) == script_hash(text.replace("\n", "\r\n") + "  \n\n")
    assert script_hash(text) != script_hash(text.replace("subject", "session"))
    assert parse(text).hash == script_hash(text)
    assert len(script_hash(text)) == 64
