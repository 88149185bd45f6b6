"""The edits a script makes to one dataset, each recorded as a `Change` (the dry run's diff)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

from xnatd.dicom.dicomedit import tagpaths
from xnatd.dicom.dicomedit.nodes import TagPath
from xnatd.dicom.dicomedit.values import Change, element_text, write


class EditError(ValueError):
    """An edit the dataset cannot take (text that is no number for a US attribute...)."""


class Editor:
    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self.changes: list[Change] = []

    def read(self, path: TagPath) -> str | None:
        """The value of the first attribute ``path`` names, None when there is none."""
        found = tagpaths.find(self.dataset, path)
        if not found:
            return None
        return element_text(found[0].dataset[found[0].tag])

    def exists(self, path: TagPath) -> bool:
        return bool(tagpaths.find(self.dataset, path))

    def vr(self, path: TagPath) -> str | None:
        found = tagpaths.find(self.dataset, path)
        return str(found[0].dataset[found[0].tag].VR) if found else None

    def assign(self, path: TagPath, text: str, only_if_exists: bool = False) -> None:
        """Set every attribute ``path`` names; create it where the path is concrete and it is absent
        (unless ``only_if_exists``, DicomEdit's ``?=``)."""
        found = tagpaths.find(self.dataset, path)
        for hit in found:
            self._write(hit.dataset, hit.tag, hit.path, text)
        if only_if_exists or not path.creatable:
            return
        pattern = path.steps[-1].pattern
        assert pattern is not None
        for dataset, prefix in tagpaths.targets(self.dataset, path):
            tag = tagpaths.locate(dataset, pattern, create=False)
            if tag is not None and tag in dataset:
                continue  # found and written above
            if pattern.creator is not None and tagpaths.locate(dataset, pattern, create=False) is None:
                reserved = tagpaths.locate(dataset, pattern, create=True)
                assert reserved is not None
                creator = Tag(reserved.group, reserved.element >> 8)
                self.record(prefix + _tag_text(creator), creator, None, pattern.creator)
            tag = tagpaths.locate(dataset, pattern, create=True)
            assert tag is not None
            tagpaths.new_element(dataset, tag)
            self._write(dataset, tag, prefix + _spell(pattern, tag), text, created=True)

    def update(self, path: TagPath, compute: Callable[[str], str]) -> None:
        """Replace the value of every attribute ``path`` names by ``compute(old value)``."""
        for hit in tagpaths.find(self.dataset, path):
            old = element_text(hit.dataset[hit.tag])
            self._write(hit.dataset, hit.tag, hit.path, compute(old))

    def update_values(self, path: TagPath, compute: Callable[[str], str]) -> None:
        """Like `update`, but on each of a multi-valued attribute's values."""
        self.update(path, lambda old: "\\".join(compute(v) for v in old.split("\\")) if old else old)

    def delete(self, path: TagPath) -> None:
        for hit in tagpaths.find(self.dataset, path):
            self._remove(hit.dataset, hit.tag, hit.path)

    def remove_private(self, keep: list[TagPath]) -> None:
        """Delete every private attribute at every level, except those ``keep`` names and the
        creators that reserve their blocks."""
        kept: set[tuple[int, int]] = set()
        for path in keep:
            for hit in tagpaths.find(self.dataset, path):
                kept.add((id(hit.dataset), int(hit.tag)))
                if hit.tag.element >= 0x1000:
                    kept.add((id(hit.dataset), int(hit.tag.group << 16 | hit.tag.element >> 8)))
        for dataset, tag, spelled in list(_private(self.dataset, "")):
            if (id(dataset), int(tag)) not in kept and tag in dataset:
                self._remove(dataset, tag, spelled)

    def _write(self, dataset: Dataset, tag: BaseTag, path: str, text: str, created: bool = False) -> None:
        element = dataset[tag]
        before = None if created else element_text(element)
        try:
            write(element, text)
        except (ValueError, TypeError, OverflowError) as err:
            if created:
                del dataset[tag]
            raise EditError(f"cannot set {path} ({element.VR}) to {text!r}: {err}") from None
        after = element_text(element)
        if before != after:
            self.changes.append(Change(path, _tag_text(tag), keyword_for_tag(tag), before, after))

    def _remove(self, dataset: Dataset, tag: BaseTag, path: str) -> None:
        before = element_text(dataset[tag])
        del dataset[tag]
        self.changes.append(Change(path, _tag_text(tag), keyword_for_tag(tag), before, None))

    def record(self, path: str, tag: BaseTag, before: str | None, after: str | None) -> None:
        self.changes.append(Change(path, _tag_text(tag), keyword_for_tag(tag), before, after))


def _private(dataset: Dataset, prefix: str) -> Iterator[tuple[Dataset, BaseTag, str]]:
    """Every private attribute under ``dataset``, creators after the elements they reserve (so the
    change list can still name an element's creator), sequences' contents before the sequences."""
    creators = []
    for tag in list(dataset.keys()):
        element = dataset[tag]
        spelled = prefix + tagpaths.spell(dataset, tag)
        if element.VR == "SQ" and element.value:
            for number, item in enumerate(element.value):
                yield from _private(item, f"{spelled}[{number}]/")
        if tag.is_private:
            if tag.element < 0x100:
                creators.append((dataset, tag, spelled))
            else:
                yield dataset, tag, spelled
    yield from creators


def _tag_text(tag: BaseTag) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


def _spell(pattern: tagpaths.TagPattern, tag: BaseTag) -> str:
    if pattern.creator is not None:
        return f"({tag.group:04X},{{{pattern.creator}}}{tag.element & 0xFF:02X})"
    return _tag_text(tag)
