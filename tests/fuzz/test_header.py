"""The DICOM header reader on hostile bytes: it answers FileKeys or NotDicom, nothing else.

``read_keys`` is the first thing every imported or received file meets; any other exception would be
a 500 at the REST door or an aborted association at the DICOM door.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.corpus import SEEDS, Case, bundled, deep_sequence, fuzz_settings, malformed
from xnatd.dicom.header import PREFIX_BYTES, FileKeys, NotDicom, read_keys

pytestmark = pytest.mark.filterwarnings("ignore")  # pydicom warns about every oddity it meets


def outcome(path: Path, data: bytes) -> str:
    """Read ``data`` as the importer does (with and without the prefix at hand); "keys" or "refused"."""
    path.write_bytes(data)
    answers = set()
    for prefix in (None, data[:PREFIX_BYTES]):
        try:
            keys = read_keys(path, prefix)
        except NotDicom:
            answers.add("refused")
        else:
            assert isinstance(keys, FileKeys) and keys.sop_instance_uid and keys.study_instance_uid
            answers.add("keys")
    assert len(answers) == 1, "the prefix at hand must not change the answer"
    return answers.pop()


def test_corpus_is_read_or_refused(tmp_path: Path) -> None:
    cases: list[Case] = bundled() + malformed()
    results = {case.name: outcome(tmp_path / "f.dcm", case.data) for case in cases}
    assert len(results) == len(cases) > 100
    assert "refused" in results.values() and "keys" in results.values()
    assert results["pydicom/CT_small.dcm"] == "keys"


@pytest.mark.parametrize(("depth", "expected"), [(10, "keys"), (2000, "keys"), (20000, "refused")])
def test_deeply_nested_sequence_is_not_a_crash(tmp_path: Path, depth: int, expected: str) -> None:
    """Skipped by the scanner (no recursion); deeper than the scanned prefix, pydicom's recursion
    gives up and the file is refused, never a crash."""
    real = SEEDS[0].read_bytes()
    start = 144 + int.from_bytes(real[140:144], "little")
    data = real[:start] + deep_sequence(depth) + real[start:]
    assert outcome(tmp_path / "deep.dcm", data) == expected


@fuzz_settings(150)
@given(data=st.binary(max_size=2048))
def test_random_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    outcome(tmp_path_factory.mktemp("h") / "r.dcm", data)


HEAD = SEEDS[3].read_bytes()[:4096]  # CT_small: meta and the start of the dataset


@fuzz_settings(300)
@given(
    edits=st.lists(
        st.tuples(st.integers(0, len(HEAD) - 1), st.binary(min_size=1, max_size=8)), min_size=1, max_size=6
    ),
    cut=st.integers(1, len(HEAD)),
)
def test_edited_real_header(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[int, bytes]], cut: int
) -> None:
    buf = bytearray(HEAD)
    for pos, patch in edits:
        buf[pos : pos + len(patch)] = patch
    outcome(tmp_path_factory.mktemp("h") / "e.dcm", bytes(buf[:cut]))
