"""DicomEdit 6's grammar (XNAT's ANTLR grammar, DE6Parser/DE6Lexer, restated for lark's LALR parser)
and the translation of lark's errors into a `ScriptError` with line, column and a plain reason.

Statements end at a newline; ``//`` starts a comment. A tag is one token, ``(gggg,eeee)`` or
``(gggg,{creator}ee)``, with the hex-digit wildcards ``X``/``x`` (any), ``@`` (even), ``#`` (odd);
`tagpaths.parse_tag` reads its inside. ``else``/``elseif`` may start the line after a block's
``}``: their tokens swallow the newlines before them, so LALR needs no look-ahead past a newline.
"""

from __future__ import annotations

import re
from functools import cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from xnatd.errors import ScriptError

TAG_PATTERN = r"\(\s*[0-9A-Fa-fXx@#]{4}\s*,\s*(\{[^}\n]*\})?\s*[0-9A-Fa-fXx@#]{2,4}\s*\)"

GRAMMAR = (
    r"""
start: _NL? (_statement _NL)* _statement?

_statement: version | _action | conditional | if_block | describe | export

_action: assignment | assign_if_exists | deletion | initialization | perform | echo
       | remove_all | reject

version: "version" STRING
assignment: tagpath ":=" value
assign_if_exists: tagpath "?=" value
deletion: "-" tagpath
initialization: ID ":=" value
perform: call
echo: "echo" [value ("," value)*]
remove_all: "removeAllPrivateTags"
reject: "reject" ["[" [value] "]"]
describe: "describe" ID (STRING | DESCRIBE_FLAG)
export: "export" ID STRING

conditional: condition "?" _action [":" _action]
if_block: "if" condition _NL? block elseif* [else_]
elseif: ELSEIF condition _NL? block
else_: ELSE _NL? block
block: "{" _NL? (_statement _NL)* _statement? "}"

?condition: comparison | negation | truth | "(" condition ")"
comparison: value COMPARE value
negation: "!" condition
truth: value

?value: STRING -> string
      | INTEGER -> integer
      | FLOAT -> float
      | tagpath
      | call
      | "new" "UID" -> new_uid
      | ID -> variable

call: ID "[" [value ("," value)*] "]"

tagpath: _step ("/" _step)*
_step: element | depth
depth: DEPTH
element: TAG ["[" (INTEGER | ITEM_ALL) "]"]

COMPARE: "=" | "!=" | "~" | "!~"
DESCRIBE_FLAG.2: "hidden" | "const" | "immutable"
DEPTH: "*" | "+" | "."
ITEM_ALL: "%"
TAG: /"""
    + TAG_PATTERN
    + r"""/
ELSEIF.3: /(?:[ \t]*(?:\/\/[^\n]*)?\r?\n)*[ \t]*else[ \t]*if(?![A-Za-z0-9_])/
ELSE.2: /(?:[ \t]*(?:\/\/[^\n]*)?\r?\n)*[ \t]*else(?![A-Za-z0-9_])/
ID: /[A-Za-z_][A-Za-z0-9_]*/
INTEGER: /-?[0-9]+/
FLOAT: /-?[0-9]+\.[0-9]+/
STRING: /"(\\.|[^"\\\n])*"/
COMMENT: /\/\/[^\n]*/
_NL: /((\/\/[^\n]*)?\r?\n[ \t]*)+/

%ignore /[ \t]+/
%ignore COMMENT
"""
)

# What a reader calls each token lark may expect.
_TOKEN_NAMES = {
    "_NL": "end of line",
    "$END": "end of script",
    "TAG": "a tag such as (0010,0010)",
    "ID": "a name",
    "STRING": 'a quoted string such as "text"',
    "INTEGER": "a number",
    "FLOAT": "a number",
    "COMPARE": "=, !=, ~ or !~",
    "DEPTH": "*, + or .",
    "ITEM_ALL": "%",
    "ELSE": "else",
    "ELSEIF": "elseif",
    "DESCRIBE_FLAG": "hidden, const or immutable",
}


@cache
def _parser(start: str) -> Lark:
    return Lark(
        GRAMMAR,
        parser="lalr",
        lexer="contextual",
        start=start,
        propagate_positions=True,
        maybe_placeholders=True,
    )


def parse_tree(text: str, start: str = "start") -> Tree[Token]:
    """The parse tree of ``text``, or a `ScriptError` saying where and why it does not parse."""
    try:
        return _parser(start).parse(text)
    except UnexpectedInput as err:
        raise _script_error(err, text) from None


def _script_error(err: UnexpectedInput, text: str) -> ScriptError:
    line, column = _position(err, text)
    if isinstance(err, UnexpectedCharacters):
        index = err.pos_in_stream or 0
        char = text[index] if index < len(text) else ""
        reason = f"unexpected character {char!r}"
        if char == '"':
            reason = "a string is not closed before the end of the line"
        elif char == "(":
            reason = _BAD_TAG
        return ScriptError(reason + _expected(err.allowed), line, column)
    if isinstance(err, UnexpectedToken):
        token = err.token
        bad_tag = _bad_tag(text, line, column)
        if bad_tag is not None:
            return ScriptError(_BAD_TAG, line, bad_tag)
        if token.type == "$END":
            line, column = _line_col(text, len(text))
            unclosed = " (a block is not closed with })" if "RBRACE" in err.expected else ""
            return ScriptError("the script ends too early" + unclosed, line, column)
        return ScriptError(f"unexpected {_describe_token(token)}" + _expected(err.expected), line, column)
    if isinstance(err, UnexpectedEOF):
        return ScriptError("the script ends too early" + _expected(set(err.expected)), line, column)
    return ScriptError(str(err), line, column)  # pragma: no cover - lark has no other kind


_BAD_TAG = "a tag must be (gggg,eeee) or (gggg,{creator}ee) with hex digits or X, @, #"
_TAG_LIKE = re.compile(r"\(\s*[0-9A-Za-z@#]{1,6}\s*,[^)\n]*\)")
_TAG_TOKEN = re.compile(TAG_PATTERN)


def _bad_tag(text: str, line: int, column: int) -> int | None:
    """The column of a tag-like ``(....,....)`` before the error that is no tag: the lexer read it
    as a parenthesis and numbers, so the parser's complaint would be about a comma."""
    lines = text.split("\n")
    if not 0 < line <= len(lines):
        return None
    for match in _TAG_LIKE.finditer(lines[line - 1]):
        if match.start() < column and not _TAG_TOKEN.fullmatch(match[0]):
            return match.start() + 1
    return None


def _position(err: UnexpectedInput, text: str) -> tuple[int, int]:
    if isinstance(err, UnexpectedToken) and err.token.type in ("ELSE", "ELSEIF", "_NL"):
        # Those tokens start with the newlines before them; point at their first visible character.
        token = err.token
        start = token.start_pos or 0
        offset = len(token) - len(str(token).lstrip()) if token.type != "_NL" else 0
        return _line_col(text, start + offset)
    line = getattr(err, "line", None)
    column = getattr(err, "column", None)
    if isinstance(line, int) and isinstance(column, int) and line > 0:
        return line, column
    return _line_col(text, len(text))


def _line_col(text: str, index: int) -> tuple[int, int]:
    before = text[:index]
    line = before.count("\n") + 1
    return line, index - (before.rfind("\n") + 1) + 1


def _describe_token(token: Token) -> str:
    if token.type == "_NL":
        return "end of line"
    if token.type in ("ELSE", "ELSEIF"):
        return f"'{str(token).strip()}'"
    return f"'{token}'"


def _expected(names: set[str] | frozenset[str] | None) -> str:
    if not names:
        return ""
    readable = sorted({_TOKEN_NAMES.get(name, _literal(name)) for name in names})
    if len(readable) > 8:
        return ""
    return "; expected " + (
        readable[0] if len(readable) == 1 else ", ".join(readable[:-1]) + " or " + readable[-1]
    )


def _literal(name: str) -> str:
    """lark names anonymous tokens after their text (``LSQB``, ``COLON``...); show the text."""
    symbols = {
        "LSQB": "[",
        "RSQB": "]",
        "LBRACE": "{",
        "RBRACE": "}",
        "LPAR": "(",
        "RPAR": ")",
        "COMMA": ",",
        "COLON": ":",
        "QMARK": "?",
        "BANG": "!",
        "SLASH": "/",
        "MINUS": "-",
        "__ANON_0": ":=",
        "__ANON_1": "?=",
    }
    if name in symbols:
        return symbols[name]
    return name.lower()
