"""Scan snapshots: the middle slice of a series as PNG, from every transfer syntax real scanners send."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support.dicom_copies import TESTDATA, dicom_files
from xnatd.dicom import pictures

TS = TESTDATA / "dcm_qa_ts"  # one Siemens mosaic in 9 transfer syntaxes (all lossless)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_every_transfer_syntax_gives_the_same_picture() -> None:
    made = [pictures.middle_slice([TS / f"{n}.dcm"]) for n in range(1, 10)]
    assert all(m is not None for m in made)
    first_full, first_thumb = made[0]  # type: ignore[misc]
    image = Image.open(io.BytesIO(first_full))
    assert image.format == "PNG" and max(image.size) <= pictures.FULL
    assert max(Image.open(io.BytesIO(first_thumb)).size) <= pictures.THUMB
    for full, _thumb in made[1:]:  # type: ignore[misc]
        assert np.array_equal(pixels(full), pixels(first_full))
    assert pixels(first_full).std() > 10  # a real picture, not a flat square


def test_the_middle_instance_of_a_series_is_drawn() -> None:
    series = dicom_files(TESTDATA / "dcm_qa_nih" / "20180918GE" / "mr_0004")
    made = pictures.middle_slice(list(reversed(series)))  # order comes from InstanceNumber, not the list
    assert made is not None
    assert Image.open(io.BytesIO(made[0])).size == (64, 64)


def test_ct_and_files_without_pixels(tmp_path: Path) -> None:
    ct = dicom_files(TESTDATA / "dcm_qa_ct_philips")
    assert pictures.middle_slice(ct) is not None
    junk = tmp_path / "README.txt"
    junk.write_text("not DICOM")
    assert pictures.middle_slice([junk]) is None
    assert pictures.middle_slice([]) is None


def test_thumbnails_are_scaled_down() -> None:
    made = pictures.middle_slice([TS / "1.dcm"])
    assert made is not None
    full, thumb = (Image.open(io.BytesIO(png)) for png in made)
    assert max(thumb.size) == pictures.THUMB < max(full.size) <= pictures.FULL
