"""DicomEdit 6's built-in functions: their names, how many arguments each takes (checked when a
script is parsed), which arguments are tag paths written as strings (compiled then too), and what
each does. A function that cannot be done faithfully here is refused at parse time with the reason.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from xnatd.dicom.dicomedit import datetimes, pixels, uids
from xnatd.dicom.dicomedit.editing import Editor
from xnatd.dicom.dicomedit.nodes import TagPath
from xnatd.dicom.dicomedit.values import Value, as_text


class FunctionError(ValueError):
    """A function given arguments it cannot work with; the interpreter adds the position."""


@dataclass(frozen=True)
class Arg:
    """An evaluated argument, with the tag path it was read from (when it was one) or the tag path
    its string spells (for the functions that take tag paths as strings)."""

    value: Value
    path: TagPath | None = None

    @property
    def text(self) -> str:
        return as_text(self.value)


Impl = Callable[[Editor, list[Arg]], Value]


@dataclass(frozen=True)
class Function:
    name: str
    min_args: int
    max_args: int | None
    impl: Impl
    # Positions of arguments that are tag paths written as strings; -1: every argument.
    path_args: tuple[int, ...] = ()


def _integer(arg: Arg, what: str) -> int:
    try:
        return int(arg.text.strip())
    except ValueError:
        raise FunctionError(f"{what} must be a whole number, not {arg.text!r}") from None


def _format(editor: Editor, args: list[Arg]) -> Value:
    """Java MessageFormat's ``{0}``, ``{1}``... placeholders, as DicomEdit's format uses."""
    template, values = args[0].text, [a.text for a in args[1:]]

    def fill(match: re.Match[str]) -> str:
        index = int(match[1])
        if index >= len(values):
            raise FunctionError(f"format: {{{index}}} has no argument")
        return values[index]

    return re.sub(r"\{(\d+)\}", fill, template)


def _substring(editor: Editor, args: list[Arg]) -> Value:
    text = args[0].text
    begin = _integer(args[1], "substring's start")
    end = _integer(args[2], "substring's end") if len(args) > 2 else len(text)
    if not 0 <= begin <= end <= len(text):
        raise FunctionError(f"substring[{text!r}, {begin}, {end}]: out of range for {len(text)} characters")
    return text[begin:end]


def _match(editor: Editor, args: list[Arg]) -> Value:
    found = _regex(args[1].text).fullmatch(args[0].text)
    if found is None:
        return None
    group = _integer(args[2], "match's group") if len(args) > 2 else 0
    if group > (found.re.groups or 0):
        raise FunctionError(f"match: the pattern has no group {group}")
    return found[group]


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as err:
        raise FunctionError(f"{pattern!r} is not a regular expression: {err}") from None


def _hash_uid(editor: Editor, args: list[Arg]) -> Value:
    if args[0].value is None:
        return None
    return uids.hash_uid(args[0].text)


def _get_url_param(editor: Editor, args: list[Arg]) -> Value:
    query = urllib.parse.urlsplit(args[0].text).query
    values = urllib.parse.parse_qs(query, keep_blank_values=True).get(args[1].text)
    return values[0] if values else None


def _set(editor: Editor, args: list[Arg]) -> Value:
    assert args[0].path is not None
    editor.assign(args[0].path, args[1].text)
    return None


def _delete(editor: Editor, args: list[Arg]) -> Value:
    assert args[0].path is not None
    editor.delete(args[0].path)
    return None


def _retain_private_tags(editor: Editor, args: list[Arg]) -> Value:
    editor.remove_private([a.path for a in args if a.path is not None])
    return None


def _hash_uid_list(editor: Editor, args: list[Arg]) -> Value:
    for arg in args:
        assert arg.path is not None
        editor.update_values(arg.path, uids.hash_uid)
    return None


# mapReferencedUIDs with no argument: the UIDs that point at instances, series, studies and frames
# of reference inside sequences (never SOP class UIDs, which name kinds of object, not patients).
REFERENCED_UIDS = (
    "+/(0008,1155)",  # Referenced SOP Instance UID
    "+/(0020,000D)",  # Study Instance UID
    "+/(0020,000E)",  # Series Instance UID
    "+/(0020,0052)",  # Frame of Reference UID
    "+/(3006,0024)",  # Referenced Frame of Reference UID
    "+/(0004,1511)",  # Referenced SOP Instance UID in File
)


def _map_referenced_uids(editor: Editor, args: list[Arg]) -> Value:
    from xnatd.dicom.dicomedit.compiler import compile_tagpath

    paths = [a.path for a in args if a.path is not None] or [compile_tagpath(p) for p in REFERENCED_UIDS]
    for path in paths:
        editor.update_values(path, uids.hash_uid)
    return None


def _shift(name: str, vrs: tuple[str, ...], default_units: str) -> Impl:
    def shift(editor: Editor, args: list[Arg]) -> Value:
        if args[0].path is not None:
            vr = editor.vr(args[0].path)
            if vr is not None and vr not in vrs:
                raise FunctionError(f"{name}: {args[0].path} is {vr}, not {' or '.join(vrs)}")
        units = args[2].text if len(args) > 2 else default_units
        try:
            return datetimes.shift(args[0].text, _integer(args[1], f"{name}'s increment"), units)
        except datetimes.DateError as err:
            raise FunctionError(f"{name}: {err}") from None

    return shift


def _shift_sequence(editor: Editor, args: list[Arg]) -> Value:
    increment = _integer(args[0], "shiftDateTimeSequenceByIncrement's increment")
    assert args[1].path is not None
    units = args[2].text if len(args) > 2 else "seconds"
    try:
        editor.update_values(args[1].path, lambda v: datetimes.shift(v, increment, units))
    except datetimes.DateError as err:
        raise FunctionError(f"shiftDateTimeSequenceByIncrement: {err}") from None
    return None


def _blank_values(editor: Editor, args: list[Arg]) -> Value:
    for arg in args:
        assert arg.path is not None
        editor.update(arg.path, lambda _old: "")
    return None


def _alter_pixels(editor: Editor, args: list[Arg]) -> Value:
    try:
        before, after = pixels.alter(editor.dataset, *(a.text for a in args))
    except pixels.PixelError as err:
        raise FunctionError(f"alterPixels: {err}") from None
    editor.record("(7FE0,0010)", pixels.PIXEL_DATA, before, after)
    return None


def _simple(fn: Callable[..., Value]) -> Impl:
    return lambda editor, args: fn(*(a.text for a in args))


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("format", 1, None, _format),
        Function("concatenate", 1, None, _simple(lambda *parts: "".join(parts))),
        Function("lowercase", 1, 1, _simple(str.lower)),
        Function("uppercase", 1, 1, _simple(str.upper)),
        Function("replace", 3, 3, _simple(lambda text, old, new: text.replace(old, new))),
        Function("substring", 2, 3, _substring),
        Function("match", 2, 3, _match),
        Function("ismatch", 2, 2, lambda e, a: _regex(a[1].text).fullmatch(a[0].text) is not None),
        Function("urlEncode", 1, 1, _simple(lambda text: urllib.parse.quote_plus(text, safe="*"))),
        Function("getURLParam", 2, 2, _get_url_param),
        Function("hashUID", 1, 2, _hash_uid),
        Function("newUID", 0, 0, lambda e, a: uids.new_uid()),
        Function("isPresent", 1, 1, lambda e, a: a[0].path is not None and e.exists(a[0].path), (0,)),
        Function("set", 2, 2, _set, (0,)),
        Function("delete", 1, 1, _delete, (0,)),
        Function("retainPrivateTags", 1, None, _retain_private_tags, (-1,)),
        Function("hashUIDList", 1, None, _hash_uid_list, (-1,)),
        Function("mapReferencedUIDs", 0, None, _map_referenced_uids, (-1,)),
        Function("blankValues", 1, None, _blank_values, (-1,)),
        Function("shiftDateByIncrement", 2, 3, _shift("shiftDateByIncrement", ("DA",), "days")),
        Function(
            "shiftDateTimeByIncrement", 2, 3, _shift("shiftDateTimeByIncrement", ("DA", "DT"), "seconds")
        ),
        Function("shiftDateTimeSequenceByIncrement", 2, 3, _shift_sequence, (1,)),
        Function("alterPixels", 4, 4, _alter_pixels),
    )
}

# DicomEdit functions refused when a script is parsed, with the reason.
REFUSED = {
    "getURL": "getURL fetches a web address while a DICOM object is being stored; xnatd does not "
    "let a script reach the network",
    "lookup": "lookup reads a site lookup table, which xnatd does not have yet",
}
