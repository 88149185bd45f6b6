"""A scan's middle slice as PNG pictures (full size and thumbnail), as XNAT's snapshots show a scan.

Only headers are read to order the files (instance number, then file name); the pixels of one file
are decoded (pydicom with numpy; Pillow for the JPEG transfer syntaxes it can decode). Grey levels
are stretched between the 1st and 99th percentiles, so a picture is readable whatever the scanner's
range; MONOCHROME1 is inverted, colour images stay in colour.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from PIL import Image

FULL, THUMB = 512, 128
_ORDER_TAGS = ["InstanceNumber", "Rows", "NumberOfFrames"]


def _ordered_images(paths: Sequence[Path]) -> list[Path]:
    found = []
    for path in paths:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_ORDER_TAGS)
        except Exception:  # not DICOM, or damaged: nothing to show from it
            continue
        if "Rows" not in ds:
            continue  # no image in this file (a report, a presentation state)
        number = ds.get("InstanceNumber")
        found.append((int(number) if number not in (None, "") else 0, path.name, path))
    found.sort()
    return [p for _, _, p in found]


def _middle_frame(ds: Any) -> np.ndarray:
    pixels = np.asarray(ds.pixel_array)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if frames > 1:
        pixels = pixels[frames // 2]
    if samples == 1 and pixels.ndim == 3:  # a volume in one frame's worth of data
        pixels = pixels[pixels.shape[0] // 2]
    return pixels


def _to_image(ds: Any, pixels: np.ndarray) -> Image.Image:
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        if "YBR" in str(ds.get("PhotometricInterpretation", "")):
            pixels = pydicom.pixels.convert_color_space(pixels, ds.PhotometricInterpretation, "RGB")
        return Image.fromarray(_stretch(pixels[..., :3]), "RGB")
    grey = _stretch(pixels.astype(np.float64))
    if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
        grey = 255 - grey
    return Image.fromarray(grey, "L")


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = np.percentile(values, [1, 99])
    if high <= low:
        high = low + 1
    scaled = (values.astype(np.float64) - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _png(image: Image.Image, largest: int) -> bytes:
    copy = image.copy()
    if max(copy.size) > largest:
        copy.thumbnail((largest, largest), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    copy.save(out, format="PNG", optimize=True)
    return out.getvalue()


def middle_slice(paths: Sequence[Path]) -> tuple[bytes, bytes] | None:
    """PNG bytes of the middle image of a series (at most 512 px, and a 128 px thumbnail), or None
    when no file holds pixels this installation can decode."""
    ordered = _ordered_images(paths)
    if not ordered:
        return None
    middle = len(ordered) // 2
    for path in [ordered[middle], *ordered[:middle], *ordered[middle + 1 :]][:3]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path)
                image = _to_image(ds, _middle_frame(ds))
        except Exception:  # an undecodable transfer syntax or broken pixel data: try a neighbour
            continue
        return _png(image, FULL), _png(image, THUMB)
    return None
