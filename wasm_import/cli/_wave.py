"""WAVE, the WebAssembly Value Encoding: WIT-typed values as text, and back.

WAVE is the notation of `wasmtime run --invoke 'f(1, "x")'` and of the `wasm-wave` crate
(bytecodealliance/wasm-tools, crates/wasm-wave/README.md is the specification):

    bool       true, false              list       [1, 2, 3]
    integers   42, -7                   tuple      (1, "a")
    floats     -1.5, 6.0e23, nan, inf   record     {x: 1, y: 2}     (`{:}` when empty)
    char       'c', '\\u{1f680}'         variant    circle(2.0), unit-square
    string     "a\\tb", multi-line \"\"\"   enum       red, %ok (a keyword needs `%`)
    option     some(3), none, 3         flags      {read, write}, {}
    result     ok(1), err("e"), ok, 1

Parsing is *typed*: `parse(text, wit_type)` reads a value of one WIT type (from our WIT
model) and returns the same Python value the bindings use for it (the dataclass of a
record, the case class of a variant, an `Enum`/`Flag` member, `bytes` for `list<u8>`,
an `array.array` for a list of numbers,
`Some` for a nested option, `Ok`/`Err` for a result...). `to_wave(value, wit_type)` is the
inverse. `parse_call` reads `name(arg, ...)`, asking the caller for the parameter types
once it knows the name.

A mistake raises `WaveError`, a `ValueError` whose message is one line, followed by the
offending line of text and a caret under the column where the mistake is.

The module has three parts: the lexer (text -> tokens), the typed parser (tokens ->
Python values) and the printer (Python values -> text).
"""

from __future__ import annotations

import array
import dataclasses
import math
import re
import struct
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, NoReturn, Optional, Sequence, Tuple

from ..wit import _model as w
from ..types._names import snake
from ..types._pytypes import array_code, class_for, is_option, variant_classes, wit_type_name
from .._values import Err, Ok, Some

__all__ = ["WaveError", "Call", "parse", "parse_call", "to_wave"]

KEYWORDS = frozenset({"true", "false", "some", "none", "ok", "err", "inf", "nan"})

_INT_RANGES: Dict[w.Primitive, Tuple[int, int]] = {
    w.Primitive.U8: (0, 2**8 - 1), w.Primitive.U16: (0, 2**16 - 1),
    w.Primitive.U32: (0, 2**32 - 1), w.Primitive.U64: (0, 2**64 - 1),
    w.Primitive.S8: (-2**7, 2**7 - 1), w.Primitive.S16: (-2**15, 2**15 - 1),
    w.Primitive.S32: (-2**31, 2**31 - 1), w.Primitive.S64: (-2**63, 2**63 - 1),
}
_FLOATS = (w.Primitive.F32, w.Primitive.F64)


class WaveError(ValueError):
    """A mistake in WAVE text, at `offset` (0-based, in the whole text).

    `line` and `column` (both 1-based) locate it for people; `str(error)` is the one-line
    message, the text's line, and a caret under the column.
    """

    def __init__(self, message: str, text: str, offset: int) -> None:
        offset = max(0, min(offset, len(text)))
        self.message = message
        self.text = text
        self.offset = offset
        line_start = text.rfind("\n", 0, offset) + 1
        line_end = text.find("\n", offset)
        self.line = text.count("\n", 0, offset) + 1
        self.column = offset - line_start + 1
        self.source_line = text[line_start:line_end if line_end >= 0 else len(text)]
        caret = " " * (self.column - 1) + "^"
        shown = _SURROGATE_RE.sub("\ufffd", self.source_line)  # printable, columns kept
        super().__init__(f"{message} (column {self.column})\n  {shown}\n  {caret}")


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


# -- the lexer ----------------------------------------------------------------------------------

class Token(NamedTuple):
    kind: str  # one of the keys of _TOKEN_PATTERNS, or "end"
    text: str
    start: int
    end: int


_LABEL = r"%?(?:[a-z][a-z0-9]*|[A-Z][A-Z0-9]*)(?:-(?:[a-z0-9]+|[A-Z0-9]+))*"
_ESCAPE = r"""\\(?:['"tnr\\]|u\{[0-9a-fA-F]{1,6}\})"""
_TOKEN_PATTERNS = {
    "skip": r"[ \t\r\n]+|//[^\n]*",
    "multiline": r'"""',  # finished by hand: see _multiline_end
    "number": r"-inf\b|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?",
    "label": _LABEL,
    "char": rf"'(?:[^\\'\n]|{_ESCAPE})'",
    "string": rf'"(?:[^\\"\n]|{_ESCAPE})*"',
    "punct": r"[{}()\[\]:,]",
}
_ESCAPE_RE = re.compile(_ESCAPE)
_TOKEN_RE = re.compile("|".join(f"(?P<{k}>{p})" for k, p in _TOKEN_PATTERNS.items()))


def _tokens(text: str, start: int = 0) -> Iterator[Token]:
    pos = start
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise _bad_token(text, pos)
        kind = m.lastgroup
        assert kind is not None
        end = m.end()
        if kind == "multiline":
            end = _multiline_end(text, pos)
        if kind != "skip":
            yield Token(kind, text[pos:end], pos, end)
        pos = end
    yield Token("end", "", len(text), len(text))


def _bad_token(text: str, pos: int) -> WaveError:
    """Say what is wrong with the text at `pos`, where no token matches."""
    quote = text[pos]
    if quote not in "'\"":
        return WaveError(f"unexpected character {quote!r}", text, pos)
    i = pos + 1
    while i < len(text) and text[i] not in (quote, "\n"):
        if text[i] == "\\":
            escape = _ESCAPE_RE.match(text, i)
            if escape is None:
                return WaveError("bad escape: use \\' \\\" \\\\ \\t \\n \\r or \\u{hex}", text, i)
            i = escape.end()
        else:
            i += 1
    if quote == "'":
        return WaveError("a char is one character or escape between single quotes, like 'a' or '\\n'",
                         text, pos)
    return WaveError("unterminated string (a line break inside \"...\" must be written \\n)", text, pos)


def _multiline_end(text: str, start: int) -> int:
    end = text.find('"""', start + 3)
    if end < 0:
        raise WaveError('unterminated multi-line string (no closing """)', text, start)
    return end + 3


def _unescape(body: str, text: str, offset: int) -> str:
    """Decode the escapes of a char or string body that starts at `offset` in `text`."""
    out: List[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            if "\ud800" <= ch <= "\udfff":  # every call would refuse it: say so here, where it is
                raise WaveError(f"a lone surrogate (U+{ord(ch):04X}) is not a Unicode scalar value",
                                text, offset + i)
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt == "u":
            close = body.index("}", i)
            code = int(body[i + 3:close], 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise WaveError(f"\\u{{{body[i + 3:close]}}} is not a Unicode scalar value", text, offset + i)
            out.append(chr(code))
            i = close + 1
        else:
            out.append({"t": "\t", "n": "\n", "r": "\r"}.get(nxt, nxt))
            i += 2
    return "".join(out)


def _multiline_value(tok: Token, text: str) -> str:
    """The value of a `\"\"\"` string: its lines between the delimiters, dedented by the
    indentation of the closing delimiter."""
    body = tok.text[3:-3]
    if body.startswith("\r\n"):
        body = body[2:]
    elif body.startswith("\n"):
        body = body[1:]
    else:
        raise WaveError('a multi-line string must start with """ and a line break', text, tok.start)
    last_break = body.rfind("\n")
    indent = body[last_break + 1:]
    if last_break < 0 or indent.strip(" "):
        raise WaveError('the closing """ of a multi-line string must be on its own line', text, tok.end - 3)
    lines = body[:last_break].removesuffix("\r").split("\n")
    offset = tok.start + tok.text.index("\n") + 1
    decoded = []
    for raw in lines:
        line = raw.removesuffix("\r")
        if line.strip() and not line.startswith(indent):
            raise WaveError(f"this line is indented less than the closing \"\"\" ({len(indent)} spaces)",
                            text, offset)
        decoded.append(_unescape(line[len(indent):], text, offset + len(indent)))
        offset += len(raw) + 1
    return "\n".join(decoded)


# -- the typed parser ---------------------------------------------------------------------------

class _Parser:
    """Reads Python values of given WIT types from a token stream, one token of lookahead."""

    def __init__(self, text: str, start: int = 0) -> None:
        self.text = text
        self._tokens = _tokens(text, start)
        self.token = next(self._tokens)

    # ---- token helpers
    def advance(self) -> Token:
        tok = self.token
        if tok.kind != "end":
            self.token = next(self._tokens)
        return tok

    def fail(self, message: str, at: Optional[Token] = None) -> NoReturn:
        tok = at or self.token
        raise WaveError(message, self.text, tok.start)

    def is_punct(self, ch: str) -> bool:
        return self.token.kind == "punct" and self.token.text == ch

    def expect(self, ch: str, context: str = "") -> Token:
        if not self.is_punct(ch):
            where = f" {context}" if context else ""
            self.fail(f"expected '{ch}'{where}, found {_describe(self.token)}")
        return self.advance()

    def is_keyword(self, word: str) -> bool:
        return self.token.kind == "label" and self.token.text == word

    def finish(self) -> None:
        if self.token.kind != "end":
            self.fail(f"unexpected {_describe(self.token)} after the value")

    def sequence(self, close: str, item: Callable[[int], Any], what: str) -> List[Any]:
        """Comma-separated items up to `close` (the opening bracket is already read);
        a trailing comma is allowed."""
        items: List[Any] = []
        while not self.is_punct(close):
            items.append(item(len(items)))
            if self.is_punct(","):
                self.advance()
            elif not self.is_punct(close):
                self.fail(f"expected ',' or '{close}' in {what}, found {_describe(self.token)}")
        self.advance()
        return items

    # ---- values
    def value(self, ty: w.Type) -> Any:
        ty = w.unalias(ty)
        if isinstance(ty, w.Primitive):
            return self.primitive(ty)
        match ty.kind:
            case w.List() as kind:
                return self.kind_list(ty, kind)
            case w.FixedList() as kind:
                return self.kind_fixedlist(ty, kind)
            case w.Map() as kind:
                return self.kind_map(ty, kind)
            case w.Tuple() as kind:
                return self.kind_tuple(ty, kind)
            case w.Record() as kind:
                return self.kind_record(ty, kind)
            case w.Flags() as kind:
                return self.kind_flags(ty, kind)
            case w.Enum() as kind:
                return self.kind_enum(ty, kind)
            case w.Variant() as kind:
                return self.kind_variant(ty, kind)
            case w.Option() as kind:
                return self.kind_option(ty, kind)
            case w.Result() as kind:
                return self.kind_result(ty, kind)
            case w.Resource() | w.Own() | w.Borrow() | w.Future() | w.Stream() | w.Alias():
                self.fail(f"values of WIT type {wit_type_name(ty)} cannot be written in WAVE")
        raise AssertionError(f"unknown WIT type kind {ty.kind!r}")

    def primitive(self, ty: w.Primitive) -> Any:
        tok = self.token
        if ty is w.Primitive.BOOL:
            if tok.kind == "label" and tok.text in ("true", "false"):
                self.advance()
                return tok.text == "true"
            self.fail(f"expected bool (true or false), found {_describe(tok)}")
        if ty in _INT_RANGES:
            return self.integer(ty)
        if ty in _FLOATS:
            return self.floating(ty)
        if ty is w.Primitive.CHAR:
            if tok.kind != "char":
                self.fail(f"expected char (like 'a'), found {_describe(tok)}")
            self.advance()
            return _unescape(tok.text[1:-1], self.text, tok.start + 1)
        if ty is w.Primitive.STRING:
            if tok.kind == "string":
                self.advance()
                return _unescape(tok.text[1:-1], self.text, tok.start + 1)
            if tok.kind == "multiline":
                self.advance()
                return _multiline_value(tok, self.text)
            self.fail(f"expected string (like \"abc\"), found {_describe(tok)}")
        self.fail(f"values of WIT type {ty.value} cannot be written in WAVE")

    def integer(self, ty: w.Primitive) -> int:
        tok = self.token
        lo, hi = _INT_RANGES[ty]
        if tok.kind != "number" or not re.fullmatch(r"-?[0-9]+", tok.text):
            self.fail(f"expected {ty.value} (an integer in {lo}..{hi}), found {_describe(tok)}")
        value = int(tok.text)
        if not lo <= value <= hi:
            self.fail(f"{value} is out of range for {ty.value} ({lo}..{hi})")
        self.advance()
        return value

    def floating(self, ty: w.Primitive) -> float:
        tok = self.token
        if tok.kind == "label" and tok.text in ("nan", "inf"):
            self.advance()
            return math.nan if tok.text == "nan" else math.inf
        if tok.kind != "number":
            self.fail(f"expected {ty.value} (a number, nan, inf or -inf), found {_describe(tok)}")
        value = float(tok.text)
        if ty is w.Primitive.F32 and math.isfinite(value):
            try:
                value = _to_f32(value)
            except OverflowError:
                self.fail(f"{tok.text} is out of range for f32")
        elif math.isinf(value) and tok.text != "-inf":
            self.fail(f"{tok.text} is out of range for f64")
        self.advance()
        return value

    def kind_list(self, ty: w.TypeDef, kind: w.List) -> Any:
        self.expect("[", f"to start a {wit_type_name(ty)}")
        items = self.sequence("]", lambda _: self.value(kind.element), "a list")
        if w.unalias(kind.element) is w.Primitive.U8:
            return bytes(items)
        code = array_code(kind.element)
        return array.array(code, items) if code is not None else items

    def kind_fixedlist(self, ty: w.TypeDef, kind: w.FixedList) -> Any:
        start = self.token
        self.expect("[", f"to start a {wit_type_name(ty)}")
        items = self.sequence("]", lambda _: self.value(kind.element), "a list")
        if len(items) != kind.size:
            self.fail(f"expected {kind.size} items for {wit_type_name(ty)}, found {len(items)}", start)
        return items

    def kind_map(self, ty: w.TypeDef, kind: w.Map) -> Any:
        """A map is written as the list of its (key, value) pairs: `[("a", 1), ("b", 2)]`."""
        self.expect("[", f"to start a {wit_type_name(ty)} (a list of (key, value) tuples)")
        result: Dict[Any, Any] = {}

        def entry(_: int) -> None:
            start = self.expect("(", "to start a (key, value) pair")
            key = self.value(kind.key)
            self.expect(",", "between a key and its value")
            value = self.value(kind.value)
            if self.is_punct(","):
                self.advance()
            self.expect(")", "to end a (key, value) pair")
            if key in result:
                self.fail(f"duplicate map key {to_wave(key, kind.key)}", start)
            result[key] = value

        self.sequence("]", entry, "a map")
        return result

    def kind_tuple(self, ty: w.TypeDef, kind: w.Tuple) -> Any:
        start = self.expect("(", f"to start a {wit_type_name(ty)}")

        def item(i: int) -> Any:
            if i >= len(kind.types):
                self.fail(f"too many items for {wit_type_name(ty)} (it has {len(kind.types)})")
            return self.value(kind.types[i])

        items = self.sequence(")", item, "a tuple")
        if len(items) != len(kind.types):
            self.fail(f"expected {len(kind.types)} items for {wit_type_name(ty)}, found {len(items)}", start)
        return tuple(items)

    def kind_record(self, ty: w.TypeDef, kind: w.Record) -> Any:
        cls = class_for(ty)
        fields = {f.name.lstrip("%"): f for f in kind.fields}
        self.expect("{", f"to start record {wit_type_name(ty)}")
        found: Dict[str, Any] = {}
        if self.is_punct(":"):  # `{:}`, the record whose fields are all left out
            self.advance()
            if not self.is_punct("}"):
                self.fail(f"expected '}}' after '{{:', found {_describe(self.token)}")
        while not self.is_punct("}"):
            label = self.label("a field name")
            field = fields.get(label.text.lstrip("%"))
            if field is None:
                self.fail(f"record {ty.name} has no field {label.text!r} "
                          f"(its fields: {', '.join(fields)})", label)
            if field.name in found:
                self.fail(f"field {label.text!r} is given twice", label)
            self.expect(":", f"after field name {label.text!r}")
            found[field.name] = self.value(field.type)
            if self.is_punct(","):
                self.advance()
            elif not self.is_punct("}"):
                self.fail(f"expected ',' or '}}' in record {ty.name}, found {_describe(self.token)}")
        missing = [f.name for f in kind.fields if f.name not in found and not is_option(f.type)]
        if missing:
            self.fail(f"record {ty.name} lacks field{'s' * (len(missing) > 1)} {', '.join(missing)}")
        self.advance()
        return cls(*[found.get(f.name) for f in kind.fields])

    def kind_flags(self, ty: w.TypeDef, kind: w.Flags) -> Any:
        cls = class_for(ty)
        bits = {f.name.lstrip("%"): 1 << i for i, f in enumerate(kind.flags)}
        self.expect("{", f"to start flags {wit_type_name(ty)} (like {{a, b}} or {{}})")
        value = 0

        def flag(_: int) -> None:
            nonlocal value
            label = self.label("a flag name")
            bit = bits.get(label.text.lstrip("%"))
            if bit is None:
                self.fail(f"flags {ty.name} has no flag {label.text!r} (its flags: {', '.join(bits)})", label)
            if value & bit:
                self.fail(f"flag {label.text!r} is given twice", label)
            value |= bit

        self.sequence("}", flag, f"flags {ty.name}")
        return cls(value)

    def kind_enum(self, ty: w.TypeDef, kind: w.Enum) -> Any:
        members = dict(zip((c.name.lstrip("%") for c in kind.cases), _members(ty)))
        label = self.case_label(ty, members)
        return members[label]

    def kind_variant(self, ty: w.TypeDef, kind: w.Variant) -> Any:
        classes = {name.lstrip("%"): cls for name, cls, _ in variant_classes(ty).cases}
        payload_types = {c.name.lstrip("%"): c.type for c in kind.cases}
        label_tok = self.token
        label = self.case_label(ty, classes)
        return self.payload(classes[label], payload_types[label], label, f"variant {ty.name}", label_tok)

    def payload(self, cls: Any, payload_type: Optional[w.Type], case: str, what: str, at: Token) -> Any:
        """The rest of a case whose label (at token `at`) is read: `(value)` when the case
        has a payload, nothing otherwise; returns `cls(value)` or `cls()`."""
        if payload_type is None:
            if self.is_punct("("):
                self.fail(f"case {case!r} of {what} has no payload")
            return cls()
        if not self.is_punct("("):
            self.fail(f"case {case!r} of {what} needs a payload: {case}(...)", at)
        self.advance()
        value = self.value(payload_type)
        self.expect(")", f"to end the payload of {case!r}")
        return cls(value)

    def case_label(self, ty: w.TypeDef, cases: Dict[str, Any]) -> str:
        tok = self.token
        what = f"{type(ty.kind).__name__.lower()} {ty.name}"
        if tok.kind != "label":
            self.fail(f"expected a case of {what} ({', '.join(_label(c) for c in cases)}), "
                      f"found {_describe(tok)}")
        name = tok.text.lstrip("%")
        if name not in cases:
            self.fail(f"{what} has no case {tok.text!r} (its cases: {', '.join(_label(c) for c in cases)})")
        if tok.text in KEYWORDS:
            self.fail(f"{tok.text!r} is a WAVE keyword: write the case as %{tok.text}")
        self.advance()
        return name

    def kind_option(self, ty: w.TypeDef, kind: w.Option) -> Any:
        nested = is_option(kind.type)
        if self.is_keyword("none"):
            self.advance()
            return None
        if self.is_keyword("some"):
            self.advance()
            self.expect("(", "after 'some'")
            value = self.value(kind.type)
            self.expect(")", "to end 'some(...)'")
            return Some(value) if nested else value
        if _flattenable(kind.type):  # `3` for `some(3)`
            return self.value(kind.type)
        self.fail(f"expected some(...) or none for {wit_type_name(ty)}, found {_describe(self.token)}")

    def kind_result(self, ty: w.TypeDef, kind: w.Result) -> Any:
        for word, cls, payload in (("ok", Ok, kind.ok), ("err", Err, kind.err)):
            if not self.is_keyword(word):
                continue
            tok = self.advance()
            return self.payload(cls, payload, word, wit_type_name(ty), tok)
        if kind.ok is not None and _flattenable(kind.ok):  # `1` for `ok(1)`
            return Ok(self.value(kind.ok))
        self.fail(f"expected ok or err for {wit_type_name(ty)}, found {_describe(self.token)}")

    def label(self, what: str) -> Token:
        if self.token.kind != "label":
            self.fail(f"expected {what}, found {_describe(self.token)}")
        return self.advance()


def _members(ty: w.TypeDef) -> List[Any]:
    """The members of the Enum or Flag class of `ty`, in declaration order."""
    cls: Any = class_for(ty)
    return list(cls)


def _flattenable(ty: w.Type) -> bool:
    """May a `some`/`ok` payload of this type be written bare? Not when it is itself an
    option or a result (the text would be ambiguous)."""
    target = w.unalias(ty)
    return not (isinstance(target, w.TypeDef) and isinstance(target.kind, (w.Option, w.Result)))


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the text"
    text = tok.text if len(tok.text) <= 24 else tok.text[:21] + "..."
    kind = {"number": "number", "label": "name", "char": "char", "string": "string",
            "multiline": "string", "punct": ""}[tok.kind]
    return f"{kind} {text}" if kind else f"'{text}'"


def _to_f32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def parse(text: str, ty: w.Type) -> Any:
    """Read one value of WIT type `ty` from WAVE `text`, as the Python value of our mapping."""
    parser = _Parser(text)
    value = parser.value(ty)
    parser.finish()
    return value


@dataclasses.dataclass(frozen=True)
class Call:
    """A parsed call expression `name(arg, ...)`."""

    name: str
    args: Tuple[Any, ...]


_NAME_RE = re.compile(r"\s*([^\s(][^(]*?)\s*\(")


def parse_call(text: str, param_types: Callable[[str], Sequence[w.Type]]) -> Call:
    """Read `name(arg, ...)`. `param_types(name)` gives the parameter types of the function
    the name stands for (it raises `LookupError` with a message when there is none); the
    arguments are then read with those types. Trailing `none` options may be left out."""
    m = _NAME_RE.match(text)
    if m is None:
        stripped = len(text) - len(text.lstrip())
        raise WaveError("expected a call like name(arg, ...)", text, stripped if text.strip() else len(text))
    name = m.group(1)
    try:
        types = list(param_types(name))
    except LookupError as e:
        raise WaveError(str(e.args[0]) if e.args else f"no function {name!r}", text, m.start(1)) from None
    parser = _Parser(text, m.end())
    args: List[Any] = []
    while not parser.is_punct(")"):
        if len(args) >= len(types):
            parser.fail(f"too many arguments: {name} takes {len(types)}")
        args.append(parser.value(types[len(args)]))
        if parser.is_punct(","):
            parser.advance()
        elif not parser.is_punct(")"):
            parser.fail(f"expected ',' or ')' after argument {len(args)}, found {_describe(parser.token)}")
    missing = types[len(args):]
    if any(not is_option(t) for t in missing):
        parser.fail(f"missing argument{'s' * (len(missing) > 1)}: {name} takes {len(types)}, "
                    f"found {len(args)}")
    parser.advance()
    parser.finish()
    return Call(name, tuple(args) + (None,) * len(missing))


# -- the printer ----------------------------------------------------------------------------------

def to_wave(value: Any, ty: w.Type) -> str:
    """Write `value`, the Python value of a WIT type `ty`, as WAVE text.

    Raises TypeError or ValueError when `value` is not a value of `ty`."""
    out: List[str] = []
    _write(value, ty, out)
    return "".join(out)


def _write(value: Any, ty: w.Type, out: List[str]) -> None:
    ty = w.unalias(ty)
    if isinstance(ty, w.Primitive):
        out.append(_primitive_text(value, ty))
        return
    match ty.kind:
        case w.List() | w.FixedList():
            _write_list(value, ty, out)
        case w.Map():
            _write_map(value, ty, out)
        case w.Tuple():
            _write_tuple(value, ty, out)
        case w.Record():
            _write_record(value, ty, out)
        case w.Flags():
            _write_flags(value, ty, out)
        case w.Enum():
            _write_enum(value, ty, out)
        case w.Variant():
            _write_variant(value, ty, out)
        case w.Option():
            _write_option(value, ty, out)
        case w.Result():
            _write_result(value, ty, out)
        case w.Own() | w.Borrow():  # WAVE has no notation for resources yet
            out.append(f"<{wit_type_name(ty)}>")
        case w.Resource() | w.Future() | w.Stream() | w.Alias():
            raise TypeError(f"values of WIT type {wit_type_name(ty)} cannot be written in WAVE")
        case kind:
            raise AssertionError(f"unknown WIT type kind {kind!r}")


def _wrong(expected: str, value: Any) -> TypeError:
    return TypeError(f"expected {expected}, got {type(value).__name__} {value!r}")


def _primitive_text(value: Any, ty: w.Primitive) -> str:
    if ty is w.Primitive.BOOL:
        if not isinstance(value, bool):
            raise _wrong("bool", value)
        return "true" if value else "false"
    if ty in _INT_RANGES:
        lo, hi = _INT_RANGES[ty]
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong(ty.value, value)
        if not lo <= value <= hi:
            raise ValueError(f"{value} is out of range for {ty.value}")
        return str(value)
    if ty in _FLOATS:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _wrong(ty.value, value)
        return _float_text(float(value), ty)
    if ty is w.Primitive.CHAR:
        if not isinstance(value, str) or len(value) != 1:
            raise _wrong("char (a one-character str)", value)
        return "'" + _escape(value, "'") + "'"
    if ty is w.Primitive.STRING:
        if not isinstance(value, str):
            raise _wrong("string", value)
        return '"' + _escape(value, '"') + '"'
    raise TypeError(f"values of WIT type {ty.value} cannot be written in WAVE")


def _float_text(value: float, ty: w.Primitive) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if ty is w.Primitive.F32:
        exact = _to_f32(value)
        for digits in range(1, 10):  # the shortest decimal that reads back as the same f32
            candidate = float(f"{exact:.{digits}g}")
            if _to_f32(candidate) == exact:
                return repr(candidate)
    return repr(value)


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(text: str, quote: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"{text!r} holds a lone surrogate, which is not a Unicode scalar value")
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == quote:
            out.append("\\" + ch)
        elif not ch.isprintable():
            out.append(f"\\u{{{code:x}}}")
        else:
            out.append(ch)
    return "".join(out)


def _label(name: str) -> str:
    name = name.lstrip("%")
    return "%" + name if name in KEYWORDS else name


def _join(items: Sequence[Any], ty: w.Type, out: List[str]) -> None:
    for i, item in enumerate(items):
        if i:
            out.append(", ")
        _write(item, ty, out)


def _write_list(value: Any, ty: w.TypeDef, out: List[str]) -> None:
    kind = ty.kind
    assert isinstance(kind, (w.List, w.FixedList))
    is_bytes = isinstance(kind, w.List) and w.unalias(kind.element) is w.Primitive.U8
    allowed: Tuple[type, ...] = (bytes, bytearray, memoryview) if is_bytes else (list, tuple)
    if isinstance(kind, w.List) and array_code(kind.element) is not None:
        allowed = (list, tuple, array.array)
    fits = isinstance(value, allowed)  # (not narrowing `value`: `allowed` is a runtime tuple)
    if not fits:
        raise _wrong(f"{wit_type_name(ty)} ({' or '.join(t.__name__ for t in allowed)})", value)
    if isinstance(kind, w.FixedList) and len(value) != kind.size:
        raise ValueError(f"expected {kind.size} items for {wit_type_name(ty)}, got {len(value)}")
    out.append("[")
    _join(list(value), kind.element, out)
    out.append("]")


def _write_map(value: Any, ty: w.TypeDef, out: List[str]) -> None:
    kind = ty.kind
    assert isinstance(kind, w.Map)
    if not isinstance(value, dict):
        raise _wrong(f"{wit_type_name(ty)} (a dict)", value)
    out.append("[")
    for i, (key, item) in enumerate(value.items()):
        out.append(", (" if i else "(")
        _write(key, kind.key, out)
        out.append(", ")
        _write(item, kind.value, out)
        out.append(")")
    out.append("]")


def _write_tuple(value: Any, ty: w.TypeDef, out: List[str]) -> None:
    kind = ty.kind
    assert isinstance(kind, w.Tuple)
    if not isinstance(value, (tuple, list)) or len(value) != len(kind.types):
        raise _wrong(f"{wit_type_name(ty)} (a tuple of {len(kind.types)})", value)
    out.append("(")
    for i, (item, item_type) in enumerate(zip(value, kind.types)):
        out.append(", " if i else "")
        _write(item, item_type, out)
    out.append(")")


def _write_record(value: Any, ty: w.TypeDef, out: List[str]) -> None:
    kind = ty.kind
    assert isinstance(kind, w.Record)
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise _wrong(f"record {ty.name} ({class_for(ty).__name__})", value)
    entries = 0
    out.append("{")
    for field in kind.fields:
        try:
            item = getattr(value, snake(field.name))
        except AttributeError:
            raise _wrong(f"record {ty.name} with field {snake(field.name)}", value) from None
        if item is None and is_option(field.type):
            continue  # WAVE leaves `none` fields out
        out.append(", " if entries else "")
        out.append(f"{field.name.lstrip('%')}: ")
        _write(item, field.type, out)
        entries += 1
    out.append("}" if entries else ":}")


def _check_class(value: Any, ty: w.TypeDef, what: str) -> None:
    cls = class_for(ty)
    if not isinstance(value, cls):
        raise _wrong(f"{what} {ty.name} ({cls.__name__})", value)


def _write_flags(value: Any, ty: w.TypeDef, out: List[str]) -> None:
    kind = ty.kind
    assert isinstance(kind, w.Flags)
    _check_class(value, ty, "flags")
    bits: int = getattr(value, "value")
    names = [f.name.lstrip("%") for i, f in enumerate(kind.flags) if bits & (1 << i)]
    out.append("{" + ", ".join(names) + "}")


def _write_enum(value: Any, ty: w.TypeDef, out: List[str]) -> None:
    kind = ty.kind
    assert isinstance(kind, w.Enum)
    _check_class(value, ty, "enum")
    names = {member: case.name for member, case in zip(_members(ty), kind.cases)}
    out.append(_label(names[value]))


def _write_variant(value: Any, ty: w.TypeDef, out: List[str]) -> None:
    kind = ty.kind
    assert isinstance(kind, w.Variant)
    for (name, cls, has_payload), case in zip(variant_classes(ty).cases, kind.cases):
        if type(value) is cls:
            out.append(_label(name))
            if has_payload:
                assert case.type is not None
                out.append("(")
                _write(getattr(value, "value"), case.type, out)
                out.append(")")
            return
    expected = " | ".join(cls.__name__ for _, cls, _ in variant_classes(ty).cases)
    raise _wrong(f"variant {ty.name} ({expected})", value)


def _write_option(value: Any, ty: w.TypeDef, out: List[str]) -> None:
    kind = ty.kind
    assert isinstance(kind, w.Option)
    if value is None:
        out.append("none")
        return
    if is_option(kind.type):
        if not isinstance(value, Some):
            raise _wrong(f"{wit_type_name(ty)} (None or Some(...))", value)
        value = value.value
    out.append("some(")
    _write(value, kind.type, out)
    out.append(")")


def _write_result(value: Any, ty: w.TypeDef, out: List[str]) -> None:
    kind = ty.kind
    assert isinstance(kind, w.Result)
    if isinstance(value, Ok):
        word, payload = "ok", kind.ok
    elif isinstance(value, Err):
        word, payload = "err", kind.err
    else:
        raise _wrong(f"{wit_type_name(ty)} (Ok(...) or Err(...))", value)
    out.append(word)
    if payload is None:
        if value.value is not None:
            raise _wrong(f"{wit_type_name(ty)} with no {word} payload", value.value)
        return
    out.append("(")
    _write(value.value, payload, out)
    out.append(")")

