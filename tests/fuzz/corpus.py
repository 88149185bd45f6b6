"""A reproducible corpus of malformed DICOM, and the settings every fuzz test shares.

The corpus is made, never stored: the DICOM files bundled in the pydicom wheel (only those in the
wheel; pydicom 3 downloads others on demand, which a test must not do) and mutations of real files
from shared/testdata, each mutation a kind of damage seen in the wild or aimed at a reader's weak
spot: truncations, bit flips, wrong and huge declared lengths, bad VRs, sequences nested thousands
deep. A fixed seed makes every run try the same inputs; ``XNATD_FUZZ_SCALE`` (an integer, default
1) multiplies the number of mutations and hypothesis examples to fuzz longer.
"""

from __future__ import annotations

import os
import random
import struct
from dataclasses import dataclass
from pathlib import Path

import pydicom
from hypothesis import HealthCheck, settings

from tests.support.testdata import DICOM

SCALE = max(1, int(os.environ.get("XNATD_FUZZ_SCALE", "1")))
SEED = int(os.environ.get("XNATD_FUZZ_SEED", "20261123"))
PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
# Real files the mutations start from: three transfer syntaxes, two vendors.
SEEDS = [
    DICOM / "dcm_qa_ts" / "1.dcm",
    DICOM / "dcm_qa_ts" / "4.dcm",
    DICOM / "dcm_qa_ts" / "7.dcm",
    PYDICOM_FILES / "CT_small.dcm",
    PYDICOM_FILES / "MR_small_implicit.dcm",
]


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings for CI: a fixed number of examples, derandomized, no example database.

    ``XNATD_FUZZ_RANDOM=1`` lets hypothesis draw new examples on every run (for long local runs).
    """
    return settings(
        max_examples=examples * SCALE,
        derandomize=os.environ.get("XNATD_FUZZ_RANDOM") != "1",
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@dataclass(frozen=True)
class Case:
    """One input of the corpus: where it came from and what was done to it."""

    name: str
    data: bytes


def bundled() -> list[Case]:
    """The DICOM files shipped inside the pydicom wheel (several deliberately broken)."""
    return [Case(f"pydicom/{p.name}", p.read_bytes()) for p in sorted(PYDICOM_FILES.glob("*.dcm"))]


def dataset_start(data: bytes) -> int:
    """Offset of the dataset after the preamble and file meta (0 for a file without them).

    The meta is walked element by element (explicit VR little endian), not trusted to begin with
    its group length: some files lack it (pydicom's ``no_meta_group_length.dcm``).
    """
    if data[128:132] != b"DICM":
        return 0
    pos = 132
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
        if data[pos + 4 : pos + 6] in (b"OB", b"OW", b"UN", b"UT", b"SQ"):
            pos += 12 + struct.unpack_from("<I", data, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
    return min(pos, len(data))


def element_offsets(data: bytes, start: int, limit: int = 64) -> list[int]:
    """Offsets of the first top-level explicit-VR little-endian elements (a best-effort walk)."""
    found: list[int] = []
    pos = start
    while pos + 8 <= len(data) and len(found) < limit:
        vr = data[pos + 4 : pos + 6]
        if not (vr.isalpha() and vr.isupper()):
            break
        found.append(pos)
        if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR", b"OF", b"OD", b"OL"):
            length = struct.unpack_from("<I", data, pos + 8)[0]
            if length == 0xFFFFFFFF:
                break
            pos += 12 + length
        else:
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
    return found


def deep_sequence(depth: int) -> bytes:
    """A ReferencedImageSequence nested ``depth`` levels, all of undefined length (explicit VR LE)."""
    sq = struct.pack("<HH2sHI", 0x0008, 0x1140, b"SQ", 0, 0xFFFFFFFF)
    item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    item_end = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
    seq_end = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return (sq + item) * depth + (item_end + seq_end) * depth


def _with_meta(template: bytes, dataset: bytes) -> bytes:
    return template[: dataset_start(template)] + dataset


def mutations(seed_file: Path, rng: random.Random, count: int) -> list[Case]:
    """``count`` damaged copies of ``seed_file`` (a real Part-10 file, explicit VR LE meta)."""
    data = seed_file.read_bytes()
    start = dataset_start(data)
    offsets = element_offsets(data, start) or [start]
    header_end = min(len(data), start + 4096)
    tag = seed_file.parent.name + "/" + seed_file.name
    cases: list[Case] = []
    for i in range(count):
        kind = i % 7
        buf = bytearray(data)
        if kind == 0:  # truncated anywhere in the header or the pixels
            cut = rng.randrange(1, len(data))
            cases.append(Case(f"{tag}:truncate@{cut}", bytes(buf[:cut])))
            continue
        if kind == 1:  # a few bits flipped in the header
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(0, header_end)
                buf[pos] ^= 1 << rng.randrange(8)
            cases.append(Case(f"{tag}:bitflip#{i}", bytes(buf)))
            continue
        pos = rng.choice(offsets)
        vr = bytes(buf[pos + 4 : pos + 6])
        if kind == 2:  # a wrong short length: too long, odd, zero
            bad = rng.choice([0, 1, 0xFFFF, rng.randrange(0x10000)])
            struct.pack_into("<H", buf, pos + 6, bad)
            cases.append(Case(f"{tag}:length{bad}@{pos}", bytes(buf)))
        elif kind == 3:  # a huge declared length, as a long-VR element
            buf[pos + 4 : pos + 8] = b"UN\x00\x00"
            buf[pos + 8 : pos + 8] = struct.pack("<I", rng.choice([0xFFFFFFF0, 0x7FFFFFFF, 0xFFFFFFFE]))
            cases.append(Case(f"{tag}:huge@{pos}", bytes(buf)))
        elif kind == 4:  # a VR that does not exist, or is not letters
            buf[pos + 4 : pos + 6] = rng.choice([b"ZZ", b"\x00\x00", b"sq", b"\xff\xfe", b"S"])[:2].ljust(2)
            cases.append(Case(f"{tag}:vr{vr!r}@{pos}", bytes(buf)))
        elif kind == 5:  # a sequence nested deep before the identifying attributes
            depth = rng.choice([50, 500, 5000])
            body = bytes(buf[start:])
            cases.append(Case(f"{tag}:deep{depth}", _with_meta(data, deep_sequence(depth) + body)))
        else:  # elements out of order / duplicated / random bytes spliced in
            junk = rng.randbytes(rng.randint(1, 64))
            cases.append(Case(f"{tag}:splice@{pos}", bytes(buf[:pos]) + junk + bytes(buf[pos:])))
    return [Case(f"{case.name}#{i}", case.data) for i, case in enumerate(cases)]


def malformed(per_seed: int = 14) -> list[Case]:
    """The whole made corpus: ``per_seed`` times SCALE mutations of every seed file."""
    rng = random.Random(SEED)
    cases: list[Case] = []
    for seed_file in SEEDS:
        cases.extend(mutations(seed_file, rng, per_seed * SCALE))
    return cases
