"""The compiled form of a DicomEdit 6 script: immutable statements and expressions.

The parser's tree is turned into these once, when a script is saved, so applying a script to
thousands of objects never looks at grammar again; each node keeps its line and column so a
failure on a dataset still points at the statement that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Position:
    line: int
    column: int


@dataclass(frozen=True)
class TagPattern:
    """One ``(gggg,eeee)`` of a tag path. ``group``/``element`` hold four (element: two for a private
    tag with a creator, four otherwise) characters, each a hex digit or a wildcard: ``X``/``x`` any
    digit, ``@`` an even digit, ``#`` an odd digit."""

    group: str
    element: str
    creator: str | None = None

    @property
    def concrete(self) -> bool:
        return all(ch in "0123456789ABCDEF" for ch in self.group + self.element)

    def __str__(self) -> str:
        creator = "{" + self.creator + "}" if self.creator is not None else ""
        return f"({self.group},{creator}{self.element})"


@dataclass(frozen=True)
class Step:
    """A step of a tag path: an attribute (with an item selector when a sequence is entered) or one
    of the sequence wildcards ``*`` (any depth, top level included), ``+`` (one level or more) and
    ``.`` (exactly one level)."""

    pattern: TagPattern | None = None
    item: int | None = None  # None: every item ([%] or no selector)
    depth: str | None = None  # "*", "+" or "."

    def __str__(self) -> str:
        if self.depth is not None:
            return self.depth
        assert self.pattern is not None
        return str(self.pattern) + ("" if self.item is None else f"[{self.item}]")


@dataclass(frozen=True)
class TagPath:
    steps: tuple[Step, ...]

    @property
    def singular(self) -> bool:
        """Names at most one attribute: no wildcard anywhere, an item number on every sequence."""
        last = self.steps[-1]
        return all(s.depth is None and s.item is not None for s in self.steps[:-1]) and (
            last.pattern is not None and last.pattern.concrete
        )

    @property
    def creatable(self) -> bool:
        """An assignment may create the attribute: no depth wildcard, a concrete last tag."""
        last = self.steps[-1]
        return all(s.depth is None for s in self.steps) and last.pattern is not None and last.pattern.concrete

    def __str__(self) -> str:
        return "/".join(str(s) for s in self.steps)


# Expressions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: str | int | float
    pos: Position


@dataclass(frozen=True)
class Variable:
    name: str
    pos: Position


@dataclass(frozen=True)
class TagRef:
    path: TagPath
    pos: Position


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Expr, ...]
    pos: Position
    # Arguments that are tag paths written as strings, compiled once: position -> path.
    tagpath_args: dict[int, TagPath] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class NewUID:
    pos: Position


Expr = Literal | Variable | TagRef | Call | NewUID


# Conditions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    left: Expr
    op: str  # "=", "!=", "~", "!~"
    right: Expr


@dataclass(frozen=True)
class Truth:
    """A bare value used as a condition (``isPresent[...]``): true when it is true or "true"."""

    value: Expr


@dataclass(frozen=True)
class Not:
    condition: Condition


Condition = Comparison | Truth | Not


# Statements ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    version: str
    pos: Position


@dataclass(frozen=True)
class Assign:
    path: TagPath
    value: Expr
    pos: Position
    only_if_exists: bool = False


@dataclass(frozen=True)
class Delete:
    path: TagPath
    pos: Position


@dataclass(frozen=True)
class Initialize:
    name: str
    value: Expr
    pos: Position


@dataclass(frozen=True)
class Perform:
    """A function called for its effect (``retainPrivateTags[...]``, ``alterPixels[...]``)."""

    call: Call
    pos: Position


@dataclass(frozen=True)
class Echo:
    value: Expr | None
    pos: Position


@dataclass(frozen=True)
class Describe:
    name: str
    label: str | None
    flag: str | None  # "hidden", "const", "immutable"
    pos: Position


@dataclass(frozen=True)
class Export:
    name: str
    field_name: str
    pos: Position


@dataclass(frozen=True)
class RemoveAllPrivateTags:
    pos: Position


@dataclass(frozen=True)
class Reject:
    reason: Expr | None
    pos: Position


@dataclass(frozen=True)
class Conditional:
    """``condition ? action : action`` and ``if``/``elseif``/``else`` blocks alike: the first
    branch whose condition holds runs; ``otherwise`` runs when none does."""

    branches: tuple[tuple[Condition, tuple[Statement, ...]], ...]
    otherwise: tuple[Statement, ...]
    pos: Position


Statement = (
    Version
    | Assign
    | Delete
    | Initialize
    | Perform
    | Echo
    | Describe
    | Export
    | RemoveAllPrivateTags
    | Reject
    | Conditional
)
