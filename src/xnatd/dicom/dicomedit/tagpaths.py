"""Tag paths against a pydicom dataset: which attributes a path names, and where an assignment
creates one.

A private tag written with its creator, ``(0019,{SIEMENS MR HEADER}10)``, names element ``xx10`` of
whichever block ``xx`` the creator ``SIEMENS MR HEADER`` reserved in that dataset (its
``(0019,00xx)``), so one script serves every scanner that numbers its blocks differently.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR, get_private_entry
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

from xnatd.dicom.dicomedit.nodes import Step, TagPath, TagPattern

_TAG_TEXT = re.compile(
    r"\(\s*(?P<group>[0-9A-Fa-fXx@#]{4})\s*,\s*(?:\{(?P<creator>[^}]*)\})?\s*(?P<element>[0-9A-Fa-fXx@#]{2,4})\s*\)"
)
_EVEN = set("02468ACE")
_ODD = set("13579BDF")


class TagError(ValueError):
    """A tag that is well formed lexically but names nothing DICOM allows editing."""


def parse_tag(text: str) -> TagPattern:
    match = _TAG_TEXT.fullmatch(text.strip())
    if match is None:
        raise TagError(f"{text} is not a tag (gggg,eeee)")
    group = _norm(match["group"])
    element = _norm(match["element"])
    creator = match["creator"]
    if creator is not None:
        if len(element) != 2:
            raise TagError(f"{text}: after a private creator comes the element's last two hex digits")
        if group[3] in _EVEN or group[3] == "@":
            raise TagError(f"{text}: a private creator needs an odd group")
        if not creator.strip():
            raise TagError(f"{text}: the private creator is empty")
        creator = creator.strip()
    elif len(element) != 4:
        raise TagError(f"{text}: the element needs four hex digits")
    if group in ("0000", "0002"):
        raise TagError(f"{text}: command and file meta attributes (groups 0000 and 0002) cannot be edited")
    return TagPattern(group, element, creator)


def _norm(digits: str) -> str:
    return digits.upper().replace("x", "X")


def digit_matches(pattern: str, digit: str) -> bool:
    if pattern == "X":
        return True
    if pattern == "@":
        return digit in _EVEN
    if pattern == "#":
        return digit in _ODD
    return pattern == digit


def hex_matches(pattern: str, value: int, width: int) -> bool:
    digits = f"{value:0{width}X}"
    return all(digit_matches(p, d) for p, d in zip(pattern, digits, strict=True))


@dataclass(frozen=True)
class Found:
    """An existing attribute a path names: the dataset holding it, its tag, and its path spelled out
    with item numbers (what the change list shows)."""

    dataset: Dataset
    tag: BaseTag
    path: str


def creator_of(dataset: Dataset, tag: BaseTag) -> str | None:
    """The private creator that reserved the block of ``tag``, if it is a private data element."""
    if not tag.is_private or tag.element < 0x1000:
        return None
    reservation = dataset.get(Tag(tag.group, tag.element >> 8))
    if reservation is None or not isinstance(reservation.value, str):
        return None
    return reservation.value.strip()


def element_matches(pattern: TagPattern, dataset: Dataset, tag: BaseTag) -> bool:
    if not hex_matches(pattern.group, tag.group, 4):
        return False
    if pattern.creator is None:
        return hex_matches(pattern.element, tag.element, 4)
    return hex_matches(pattern.element, tag.element & 0xFF, 2) and creator_of(dataset, tag) == pattern.creator


def spell(dataset: Dataset, tag: BaseTag) -> str:
    creator = creator_of(dataset, tag)
    if creator is not None:
        return f"({tag.group:04X},{{{creator}}}{tag.element & 0xFF:02X})"
    return f"({tag.group:04X},{tag.element:04X})"


def _candidates(pattern: TagPattern, dataset: Dataset) -> Iterator[BaseTag]:
    if pattern.creator is None and pattern.concrete:
        tag = Tag(int(pattern.group, 16), int(pattern.element, 16))
        if tag in dataset:
            yield tag
        return
    for tag in list(dataset.keys()):
        if element_matches(pattern, dataset, tag):
            yield tag


def find(dataset: Dataset, path: TagPath) -> list[Found]:
    """Every existing attribute ``path`` names, each once, in dataset order."""
    seen: set[tuple[int, int]] = set()
    found = []
    for hit in _walk(dataset, path.steps, ""):
        key = (id(hit.dataset), int(hit.tag))
        if key not in seen:
            seen.add(key)
            found.append(hit)
    return found


def _walk(dataset: Dataset, steps: tuple[Step, ...], prefix: str) -> Iterator[Found]:
    step, rest = steps[0], steps[1:]
    if step.depth is not None:
        if step.depth == "*":
            yield from _walk(dataset, rest, prefix)
        deeper = rest if step.depth == "." else (Step(depth="*"), *rest)
        for item, item_prefix in _items(dataset, None, None, prefix):
            yield from _walk(item, deeper, item_prefix)
        return
    assert step.pattern is not None
    if not rest:
        for tag in _candidates(step.pattern, dataset):
            yield Found(dataset, tag, prefix + spell(dataset, tag))
        return
    for item, item_prefix in _items(dataset, step.pattern, step.item, prefix):
        yield from _walk(item, rest, item_prefix)


def _items(
    dataset: Dataset, pattern: TagPattern | None, item: int | None, prefix: str
) -> Iterator[tuple[Dataset, str]]:
    """The items of the sequences ``pattern`` names (every sequence when None), with their paths."""
    tags = list(dataset.keys()) if pattern is None else list(_candidates(pattern, dataset))
    for tag in tags:
        element = dataset[tag]
        if element.VR != "SQ" or not element.value:
            continue
        for number, sub in enumerate(element.value):
            if item is None or item == number:
                yield sub, f"{prefix}{spell(dataset, tag)}[{number}]/"


def targets(dataset: Dataset, path: TagPath) -> list[tuple[Dataset, str]]:
    """The datasets an assignment to a creatable ``path`` writes into (the top level, or the items
    its sequences select), with the path prefix of each."""
    level = [(dataset, "")]
    for step in path.steps[:-1]:
        assert step.pattern is not None
        level = [pair for ds, prefix in level for pair in _items(ds, step.pattern, step.item, prefix)]
    return level


def locate(dataset: Dataset, pattern: TagPattern, create: bool) -> BaseTag | None:
    """The tag a concrete ``pattern`` has in ``dataset``; a private one's block is reserved for its
    creator when ``create`` and the creator has none yet."""
    group = int(pattern.group, 16)
    if pattern.creator is None:
        return Tag(group, int(pattern.element, 16))
    offset = int(pattern.element, 16)
    for block in range(0x10, 0x100):
        reservation = dataset.get(Tag(group, block))
        if reservation is not None and str(reservation.value).strip() == pattern.creator:
            return Tag(group, (block << 8) | offset)
    if not create:
        return None
    return Tag(group, (dataset.private_block(group, pattern.creator, create=True).block_start) | offset)


def vr_for(dataset: Dataset, tag: BaseTag) -> str:
    """The VR a new attribute gets: the DICOM dictionary's (the first choice where it lists several),
    pydicom's private dictionary for a known creator, else LO."""
    if tag.is_private:
        creator = creator_of(dataset, tag)
        if creator is not None:
            try:
                return str(get_private_entry(tag, creator)[0]).split(" or ")[0]
            except KeyError:
                return "LO"
        return "LO"
    return str(dictionary_VR(tag)).split(" or ")[0]


def new_element(dataset: Dataset, tag: BaseTag) -> DataElement:
    element = DataElement(tag, vr_for(dataset, tag), None)
    dataset[tag] = element
    return element
