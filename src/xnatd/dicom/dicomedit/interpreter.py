"""Running a compiled script on one dataset, statement after statement, top to bottom (DicomEdit
scripts are interpreted in order: a later statement sees what an earlier one wrote)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from xnatd.dicom.dicomedit import nodes as n
from xnatd.dicom.dicomedit import uids
from xnatd.dicom.dicomedit.compiler import Script
from xnatd.dicom.dicomedit.editing import EditError, Editor
from xnatd.dicom.dicomedit.functions import FUNCTIONS, Arg, FunctionError
from xnatd.dicom.dicomedit.values import Change, Value, as_text
from xnatd.errors import ScriptError


@dataclass
class Outcome:
    """What a script did: the dataset (edited in place), each attribute it changed, what it echoed."""

    dataset: Dataset
    changes: list[Change] = field(default_factory=list)
    echoes: list[str] = field(default_factory=list)


@dataclass
class Rejected(Outcome):
    """The script refused the object (``reject``); nothing of it may be stored."""

    reason: str = ""


class _Rejection(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class _Run:
    def __init__(self, dataset: Dataset, variables: Mapping[str, str]) -> None:
        self.editor = Editor(dataset)
        self.variables: dict[str, Value] = dict(variables)
        self.echoes: list[str] = []

    def block(self, statements: tuple[n.Statement, ...]) -> None:
        for statement in statements:
            try:
                self.statement(statement)
            except (EditError, FunctionError) as err:
                raise ScriptError(str(err), statement.pos.line, statement.pos.column) from None

    def statement(self, s: n.Statement) -> None:
        if isinstance(s, n.Assign):
            value = self.value(s.value)
            if value is not None or not s.only_if_exists:
                self.editor.assign(s.path, as_text(value), only_if_exists=s.only_if_exists)
        elif isinstance(s, n.Delete):
            self.editor.delete(s.path)
        elif isinstance(s, n.Initialize):
            self.variables[s.name] = self.value(s.value)
        elif isinstance(s, n.Perform):
            self.value(s.call)
        elif isinstance(s, n.Echo):
            self.echoes.append("" if s.value is None else as_text(self.value(s.value)))
        elif isinstance(s, n.RemoveAllPrivateTags):
            self.editor.remove_private([])
        elif isinstance(s, n.Reject):
            reason = as_text(self.value(s.reason)) if s.reason is not None else ""
            raise _Rejection(reason or f"rejected by the anonymization script (line {s.pos.line})")
        elif isinstance(s, n.Conditional):
            for condition, statements in s.branches:
                if self.holds(condition):
                    self.block(statements)
                    return
            self.block(s.otherwise)
        # version, describe and export change nothing in the dataset.

    def holds(self, condition: n.Condition) -> bool:
        if isinstance(condition, n.Not):
            return not self.holds(condition.condition)
        if isinstance(condition, n.Truth):
            value = self.value(condition.value)
            return value is True or (isinstance(value, str) and value.strip().lower() == "true")
        left, right = self.value(condition.left), self.value(condition.right)
        if condition.op in ("=", "!="):
            equal = left is not None and as_text(left) == as_text(right)
            return equal if condition.op == "=" else not equal
        try:
            matched = left is not None and re.fullmatch(as_text(right), as_text(left)) is not None
        except re.error as err:
            raise FunctionError(f"{as_text(right)!r} is not a regular expression: {err}") from None
        return matched if condition.op == "~" else not matched

    def value(self, expr: n.Expr) -> Value:
        if isinstance(expr, n.Literal):
            return expr.value
        if isinstance(expr, n.Variable):
            return self.variables.get(expr.name)
        if isinstance(expr, n.TagRef):
            return self.editor.read(expr.path)
        if isinstance(expr, n.NewUID):
            return uids.new_uid()
        args = [
            Arg(
                self.value(arg), expr.tagpath_args.get(index, arg.path if isinstance(arg, n.TagRef) else None)
            )
            for index, arg in enumerate(expr.args)
        ]
        return FUNCTIONS[expr.name].impl(self.editor, args)


def apply(script: Script, dataset: Dataset, variables: Mapping[str, str] | None = None) -> Outcome:
    """Run ``script`` on ``dataset`` (edited in place) with XNAT's variables (``project``,
    ``subject``, ``session``, ``modality``...). A ``reject`` answers `Rejected`; a statement the
    dataset cannot take raises `ScriptError` at that statement's line and column."""
    run = _Run(dataset, variables or {})
    try:
        run.block(script.statements)
    except _Rejection as rejection:
        return Rejected(dataset, run.editor.changes, run.echoes, rejection.reason)
    return Outcome(dataset, run.editor.changes, run.echoes)
