"""A script's text → its compiled `Script`, checked once when it is saved: the grammar, then what
the grammar cannot see (unknown or refused functions, argument counts, tags DICOM does not allow,
tag paths written as strings, the version line)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import cast

from lark import Token, Tree
from pydicom.datadict import dictionary_VR

from xnatd.dicom.dicomedit import nodes as n
from xnatd.dicom.dicomedit.functions import FUNCTIONS, REFUSED
from xnatd.dicom.dicomedit.grammar import parse_tree
from xnatd.dicom.dicomedit.tagpaths import TagError, parse_tag
from xnatd.errors import ScriptError

_VERSION = re.compile(r"6\.\d+")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "\\": "\\"}


@dataclass(frozen=True)
class Script:
    """A parsed, checked script. ``variables`` are the names it reads but never sets itself (XNAT
    supplies ``project``, ``subject``, ``session``, ``modality``...); ``hash`` names this text's
    version (`script_hash`)."""

    text: str
    statements: tuple[n.Statement, ...]
    version: str | None
    hash: str
    variables: frozenset[str]
    descriptions: dict[str, str] = field(default_factory=dict, compare=False)


def script_hash(text: str) -> str:
    """SHA-256 of the text with line ends made ``\\n``, trailing blanks and blank edges removed, so
    re-saving the same script from another editor keeps its version."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return hashlib.sha256("\n".join(lines).strip("\n").encode("utf-8")).hexdigest()


def parse(text: str) -> Script:
    """Compile ``text`` or raise `ScriptError` with the line and column of the first problem."""
    tree = parse_tree(text)
    builder = _Builder()
    statements = tuple(builder.statement(cast(Tree[Token], child)) for child in tree.children)
    version = None
    for index, statement in enumerate(statements):
        if isinstance(statement, n.Version):
            if index:
                raise ScriptError(
                    "the version line must be the script's first statement", *_at(statement.pos)
                )
            version = statement.version
    return Script(
        text=text,
        statements=statements,
        version=version,
        hash=script_hash(text),
        variables=frozenset(builder.read - builder.set),
        descriptions=builder.descriptions,
    )


def compile_tagpath(text: str, pos: n.Position | None = None) -> n.TagPath:
    """A tag path written as a string (``retainPrivateTags["(0019,{SIEMENS MR HEADER}XX)"]``)."""
    try:
        tree = parse_tree(text, start="tagpath")
        return _Builder().tagpath(tree)
    except ScriptError as err:
        if pos is None:
            raise
        raise ScriptError(f"{text!r} is not a tag path: {err.reason}", *_at(pos)) from None


def _at(pos: n.Position) -> tuple[int, int]:
    return pos.line, pos.column


def _pos(node: Tree[Token] | Token) -> n.Position:
    if isinstance(node, Token):
        return n.Position(node.line or 1, node.column or 1)
    return n.Position(getattr(node.meta, "line", 1), getattr(node.meta, "column", 1))


def unquote(token: Token) -> str:
    body = str(token)[1:-1]
    return re.sub(r"\\([0-7]{3}|.)", lambda m: _unescape(m[1]), body)


def _unescape(code: str) -> str:
    if len(code) == 3:
        return chr(int(code, 8))
    # DicomEdit lets regular expressions keep their backslashes ("\d"), so unknown escapes stay.
    return _ESCAPES.get(code, "\\" + code)


class _Builder:
    def __init__(self) -> None:
        self.read: set[str] = set()
        self.set: set[str] = set()
        self.descriptions: dict[str, str] = {}

    def statement(self, tree: Tree[Token]) -> n.Statement:
        kind, kids, pos = tree.data, tree.children, _pos(tree)
        if kind == "version":
            version = unquote(cast(Token, kids[0]))
            if not _VERSION.fullmatch(version):
                raise ScriptError(
                    f'version "{version}" is not a DicomEdit 6 version such as "6.1"', *_at(pos)
                )
            return n.Version(version, pos)
        if kind in ("assignment", "assign_if_exists"):
            path = self.tagpath(cast(Tree[Token], kids[0]), assigned=True)
            value = self.expr(kids[1])
            return n.Assign(path, value, pos, only_if_exists=kind == "assign_if_exists")
        if kind == "deletion":
            return n.Delete(self.tagpath(cast(Tree[Token], kids[0])), pos)
        if kind == "initialization":
            name = str(kids[0])
            value = self.expr(kids[1])
            self.set.add(name)
            return n.Initialize(name, value, pos)
        if kind == "perform":
            call = self.expr(kids[0])
            assert isinstance(call, n.Call)
            return n.Perform(call, pos)
        if kind == "echo":
            values = [self.expr(k) for k in kids if k is not None]
            if len(values) > 1:
                values = [n.Call("concatenate", tuple(values), pos)]
            return n.Echo(values[0] if values else None, pos)
        if kind == "remove_all":
            return n.RemoveAllPrivateTags(pos)
        if kind == "reject":
            return n.Reject(self.expr(kids[0]) if kids and kids[0] is not None else None, pos)
        if kind == "describe":
            name, what = str(kids[0]), cast(Token, kids[1])
            self.set.add(name)
            if what.type == "STRING":
                self.descriptions[name] = unquote(what)
                return n.Describe(name, unquote(what), None, pos)
            return n.Describe(name, None, str(what), pos)
        if kind == "export":
            return n.Export(str(kids[0]), unquote(cast(Token, kids[1])), pos)
        if kind == "conditional":
            condition = self.condition(cast(Tree[Token], kids[0]))
            otherwise = (
                (self.statement(cast(Tree[Token], kids[2])),) if len(kids) > 2 and kids[2] is not None else ()
            )
            return n.Conditional(
                ((condition, (self.statement(cast(Tree[Token], kids[1])),)),), otherwise, pos
            )
        if kind == "if_block":
            return self.if_block(tree)
        raise AssertionError(f"unhandled statement {kind}")  # pragma: no cover

    def if_block(self, tree: Tree[Token]) -> n.Conditional:
        kids = tree.children
        branches = [(self.condition(cast(Tree[Token], kids[0])), self.block(cast(Tree[Token], kids[1])))]
        otherwise: tuple[n.Statement, ...] = ()
        for kid in kids[2:]:
            if kid is None:
                continue
            kid = cast(Tree[Token], kid)
            blocks = [c for c in kid.children if isinstance(c, Tree)]
            if kid.data == "elseif":
                branches.append((self.condition(blocks[0]), self.block(blocks[1])))
            else:
                otherwise = self.block(blocks[0])
        return n.Conditional(tuple(branches), otherwise, _pos(tree))

    def block(self, tree: Tree[Token]) -> tuple[n.Statement, ...]:
        statements = tuple(self.statement(cast(Tree[Token], k)) for k in tree.children if isinstance(k, Tree))
        for statement in statements:
            if isinstance(statement, n.Version):
                raise ScriptError("the version line cannot be inside a block", *_at(statement.pos))
        return statements

    def condition(self, tree: Tree[Token]) -> n.Condition:
        if tree.data == "comparison":
            left, op, right = tree.children
            return n.Comparison(self.expr(left), str(op), self.expr(right))
        if tree.data == "negation":
            return n.Not(self.condition(cast(Tree[Token], tree.children[0])))
        if tree.data == "truth":
            return n.Truth(self.expr(tree.children[0]))
        return n.Truth(self.expr(tree))  # a value in parentheses

    def expr(self, node: Tree[Token] | Token | None) -> n.Expr:
        assert isinstance(node, Tree)
        kind, kids, pos = node.data, node.children, _pos(node)
        token = cast(Token, kids[0]) if kids else None
        if kind == "string":
            return n.Literal(unquote(cast(Token, token)), pos)
        if kind == "integer":
            return n.Literal(int(str(token)), pos)
        if kind == "float":
            return n.Literal(float(str(token)), pos)
        if kind == "variable":
            self.read.add(str(token))
            return n.Variable(str(token), pos)
        if kind == "new_uid":
            return n.NewUID(pos)
        if kind == "tagpath":
            return n.TagRef(self.tagpath(node), pos)
        if kind == "call":
            return self.call(node)
        raise AssertionError(f"unhandled value {kind}")  # pragma: no cover

    def call(self, tree: Tree[Token]) -> n.Call:
        name_token = cast(Token, tree.children[0])
        name, pos = str(name_token), _pos(name_token)
        args = tuple(self.expr(k) for k in tree.children[1:] if k is not None)
        if name in REFUSED:
            raise ScriptError(f"{name} is not supported: {REFUSED[name]}", *_at(pos))
        function = FUNCTIONS.get(name)
        if function is None:
            raise ScriptError(f"unknown function {name}", *_at(pos))
        high = function.max_args
        if len(args) < function.min_args or (high is not None and len(args) > high):
            wanted = (
                str(function.min_args)
                if high == function.min_args
                else (f"at least {function.min_args}" if high is None else f"{function.min_args} to {high}")
            )
            raise ScriptError(f"{name} takes {wanted} arguments, not {len(args)}", *_at(pos))
        paths: dict[int, n.TagPath] = {}
        for index, arg in enumerate(args):
            if -1 not in function.path_args and index not in function.path_args:
                continue
            if isinstance(arg, n.TagRef):
                paths[index] = arg.path
            elif isinstance(arg, n.Literal) and isinstance(arg.value, str):
                paths[index] = compile_tagpath(arg.value, arg.pos)
            else:
                raise ScriptError(f"argument {index + 1} of {name} must be a tag path", *_at(arg.pos))
        return n.Call(name, args, pos, paths)

    def tagpath(self, tree: Tree[Token], assigned: bool = False) -> n.TagPath:
        steps = []
        for kid in tree.children:
            kid = cast(Tree[Token], kid)
            token = cast(Token, kid.children[0])
            if kid.data == "depth":
                steps.append(n.Step(depth=str(token)))
                continue
            try:
                pattern = parse_tag(str(token))
            except TagError as err:
                raise ScriptError(str(err), *_at(_pos(token))) from None
            item = cast(Token | None, kid.children[1])
            number = int(str(item)) if item is not None and item.type == "INTEGER" else None
            if number is not None and number < 0:
                raise ScriptError(f"item number {number} is negative", *_at(_pos(cast(Token, item))))
            steps.append(n.Step(pattern=pattern, item=number))
        path = n.TagPath(tuple(steps))
        last = steps[-1]
        if last.depth is not None:
            raise ScriptError("a tag path must end with a tag, not a sequence wildcard", *_at(_pos(tree)))
        if last.item is not None:
            raise ScriptError("an item number must be followed by /(gggg,eeee)", *_at(_pos(tree)))
        if assigned and path.creatable:
            self._check_known(last.pattern, tree)
        return path

    def _check_known(self, pattern: n.TagPattern | None, tree: Tree[Token]) -> None:
        assert pattern is not None
        if pattern.creator is not None or int(pattern.group, 16) % 2:
            return
        try:
            dictionary_VR(int(pattern.group + pattern.element, 16))
        except KeyError:
            raise ScriptError(f"{pattern} is not in the DICOM dictionary", *_at(_pos(tree))) from None
