"""``alterPixels["rectangle", "l=100, t=100, r=200, b=200", "solid", "v=0"]``: burned-in text
blanked by painting a rectangle in every frame.

Only native (uncompressed) little-endian pixel data is edited: re-encoding a compressed image
would change every pixel's value or the file's transfer syntax, which is not what the script says,
so a compressed or big-endian object is refused with the reason rather than stored unedited.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.tag import Tag
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

PIXEL_DATA = Tag(0x7FE0, 0x0010)
_NATIVE = {ExplicitVRLittleEndian, ImplicitVRLittleEndian, UID("1.2.840.10008.1.2.1.99")}


class PixelError(ValueError):
    pass


def _params(text: str, names: tuple[str, ...]) -> dict[str, int]:
    values = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise PixelError(f"{text!r}: parameters are name=value, separated by commas")
        try:
            values[key.strip().lower()] = int(value.strip())
        except ValueError:
            raise PixelError(f"{part.strip()!r}: the value is not a whole number") from None
    missing = [n for n in names if n not in values]
    if missing:
        raise PixelError(f"{text!r} lacks {', '.join(missing)}")
    return values


def alter(dataset: Dataset, shape: str, shape_params: str, fill: str, fill_params: str) -> tuple[str, str]:
    """Paint the rectangle; answer the pixel data's description before and after."""
    if shape.strip().lower() != "rectangle":
        raise PixelError(f"the shape {shape!r} is not supported; only rectangle is")
    if fill.strip().lower() != "solid":
        raise PixelError(f"the fill {fill!r} is not supported; only solid is")
    box = _params(shape_params, ("l", "t", "r", "b"))
    value = _params(fill_params, ("v",))["v"]
    if PIXEL_DATA not in dataset or not dataset[PIXEL_DATA].value:
        raise PixelError("the object has no pixel data")
    syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if syntax not in _NATIVE:
        raise PixelError(
            f"pixel data in transfer syntax {syntax or 'unknown'} cannot be edited exactly "
            "(only native little-endian pixel data is)"
        )
    pixels = dataset.pixel_array.copy()
    frames = pixels if int(dataset.get("NumberOfFrames", 1) or 1) > 1 else pixels[np.newaxis, ...]
    rows, columns = frames.shape[1], frames.shape[2]
    left, right = max(box["l"], 0), min(box["r"], columns)
    top, bottom = max(box["t"], 0), min(box["b"], rows)
    if left >= right or top >= bottom:
        raise PixelError(f"the rectangle {shape_params!r} lies outside the {columns}x{rows} image")
    info = np.iinfo(frames.dtype) if np.issubdtype(frames.dtype, np.integer) else None
    if info is not None and not info.min <= value <= info.max:
        raise PixelError(f"v={value} does not fit pixels of type {frames.dtype}")
    before = f"<{len(dataset.PixelData)} bytes>"
    frames[:, top:bottom, left:right, ...] = value
    dataset.PixelData = frames.astype(frames.dtype.newbyteorder("<")).tobytes()
    return (
        before,
        f"<{len(dataset.PixelData)} bytes, rectangle l={left} t={top} r={right} b={bottom} set to {value}>",
    )
