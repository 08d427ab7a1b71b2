"""Data files in JSON, parsed with the position of every value, so that a mistake in the
data is reported at its line and column as a mistake in the model is.

Python's json module is used for the values, with hooks that refuse what it would accept
silently (a duplicate key, where the last would win; an integer beyond 64 bits; nesting
beyond MAX_DATA_DEPTH); a small tokenizer finds the positions (`value_span`, `key_span`)
only when a diagnostic needs them. Checking the values against the model's declarations is
the binding's job (backends/data.py).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from pplc.errors import Source, Span, error

# Files that are not JSON, by their first bytes: what the user gave instead.
_NOT_JSON = [(b"PK\x03\x04", "a zip archive (a NumPy .npz file?)"),
             (b"\x93NUMPY", "a NumPy .npy file"),
             (b"\x89HDF\r\n\x1a\n", "an HDF5 file (netCDF-4, .nc or .h5)"),
             (b"CDF\x01", "a netCDF file"), (b"CDF\x02", "a netCDF file"),
             (b"\x1f\x8b", "a gzip-compressed file")]


# The most nested a data value may be: NumPy arrays have at most 64 axes.
MAX_DATA_DEPTH = 32


INT64_RANGE = (-2 ** 63, 2 ** 63 - 1)


def load_json(path: str | Path) -> tuple[dict, Source]:
    """Read a data file; syntax errors are reported as DATA.json:LINE:COL: error: ..."""
    from pplc.frontend.text import decode, normalize

    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise error(f"cannot read data file '{path}': it is a folder") from None
    except OSError as exc:
        raise error(f"cannot read data file '{path}': {exc.strerror or exc}") from None
    for magic, what in _NOT_JSON:
        if data.startswith(magic):
            raise error(f"'{path}' is {what}, not JSON", Source(str(path), ""),
                        hint="pplc reads data as a JSON object of name -> value (numbers, "
                             "nested lists, null for a missing entry)")
    return parse_json(normalize(decode(data, str(path), what="data")), str(path))


class _JsonRefusal(Exception):
    """Raised inside json.loads' hooks; located afterwards by scanning the text."""


class _DuplicateKey(_JsonRefusal):
    pass


class _TooLarge(_JsonRefusal):
    pass


def _json_object(pairs: list) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _json_int(text: str) -> int:
    # Python's int() refuses more than 4,300 digits; beyond 19 none fits in 64 bits.
    if len(text.lstrip("-")) > 19 or not INT64_RANGE[0] <= int(text) <= INT64_RANGE[1]:
        raise _TooLarge(text)
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _TooLarge(text)
    return value


def parse_json(text: str, path: str = "<data>") -> tuple[dict, Source]:
    """JSON text -> a dict, refusing what a JSON reader would take silently: a key given
    twice (json keeps the last), an integer beyond 64 bits (NumPy would wrap it), a number
    beyond a 64-bit float (it would become infinite). Each is located in the file."""
    source = Source(path, text)
    try:
        raw = json.loads(text, parse_constant=_json_constant, parse_int=_json_int,
                         parse_float=_json_float, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON: {exc.msg}", source, Span.point(exc.lineno, exc.colno)) \
            from None
    except _DuplicateKey:
        key, first, second = _first_duplicate(text)
        raise error(f"key \"{key}\" is given twice in the data file (first at line "
                    f"{first.line}, column {first.column})", source, second,
                    hint="a JSON reader would silently keep only the last value; remove one "
                         "of the two") from None
    except _TooLarge as exc:
        literal = exc.args[0]
        span = _literal_span(text, literal)
        if any(c in literal for c in ".eE"):
            message = f"the number {shorten(literal)} is too large for a 64-bit float"
            hint = "the largest is about 1.8e308"
        else:
            message = f"the integer {shorten(literal)} does not fit in 64 bits"
            hint = ("pplc's integers are 64-bit (-2**63 to 2**63 - 1); if it is a real "
                    "number, write it with an exponent, such as 1.5e25")
        raise error(message, source, span, hint=hint) from None
    except RecursionError:
        raise error(f"the data file nests arrays or objects more than {MAX_DATA_DEPTH} "
                    "levels deep", source, _too_deep(text),
                    hint="a data value is a number or an array of at most "
                         f"{MAX_DATA_DEPTH} dimensions") from None
    if not isinstance(raw, dict):
        raise error("the data file must hold a JSON object of name -> value", source,
                    Span.point(1, 1))
    return raw, source


def _json_constant(name: str) -> float:
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


def shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:20] + "..." + text[-10:]


# json.loads keeps no positions, so a diagnostic about an entry scans the text again: a
# tokenizer that follows the nesting and knows the path (name, i, j, ...) of every value.
# It runs only when something is wrong, so reading correct data costs nothing more.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]|[^\s\[\]{}:,"]+')


def _offset_span(text: str, start: int, end: int) -> Span:
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    return Span(line, column, line, column + max(1, end - start))


def _json_tokens(text: str):
    """(kind, path, start, end, token) of every key ("key") and value ("value") of a valid
    JSON text, in order; a container's value is its opening bracket."""
    path: list = []
    in_object: list[bool] = []
    expect_key = False
    for match in _TOKEN.finditer(text):
        token, start = match.group(), match.start()
        first = token[0]
        if first == ",":
            if in_object[-1]:
                expect_key = True
            else:
                path[-1] += 1
        elif first == ":":
            continue
        elif first in "]}":
            in_object.pop()
            path.pop()
            expect_key = False
        elif expect_key:
            path[-1] = json.loads(token)
            expect_key = False
            yield "key", path, start, match.end(), token
        else:
            yield "value", path, start, match.end(), token
            if first in "[{":
                in_object.append(first == "{")
                path.append(0 if first == "[" else None)
                expect_key = first == "{"


def value_span(source: Source | None, name: str, index: tuple[int, ...] = ()) -> Span | None:
    """Where the value of `name[index]` stands in the data file (its number, or the key
    when the value is not found: an index past what the file holds)."""
    if source is None:
        return None
    want = [name, *(int(i) for i in index)]
    try:
        for kind, path, start, end, _ in _json_tokens(source.text):
            if kind == "value" and path == want:
                return _offset_span(source.text, start, end)
    except (IndexError, ValueError):  # not valid JSON: a dict given with a source
        return None
    return key_span(source, name)


def key_span(source: Source | None, name: str) -> Span | None:
    """Where `"name":` stands in the data file, for diagnostics about that entry."""
    if source is None:
        return None
    try:
        for kind, path, start, end, _ in _json_tokens(source.text):
            if kind == "key" and len(path) == 1 and path[0] == name:
                return _offset_span(source.text, start, end)
    except (IndexError, ValueError):
        return None
    return None


def _first_duplicate(text: str) -> tuple[str, Span, Span]:
    """The first key given twice in one object: (key, first place, second place)."""
    keys: list[dict | None] = []  # per open container: an object's keys so far, or None
    expect_key = False
    for match in _TOKEN.finditer(text):
        token, first = match.group(), match.group()[0]
        if first in "[{":
            keys.append({} if first == "{" else None)
            expect_key = first == "{"
        elif first in "]}":
            keys.pop()
            expect_key = False
        elif first == ",":
            expect_key = keys[-1] is not None
        elif expect_key:
            key, span = json.loads(token), _offset_span(text, match.start(), match.end())
            if key in keys[-1]:
                return key, keys[-1][key], span
            keys[-1][key] = span
            expect_key = False
    raise ValueError("no key is given twice")  # json.loads found one: not reached


def _literal_span(text: str, literal: str) -> Span | None:
    for kind, _, start, end, token in _json_tokens(text):
        if kind == "value" and token == literal:
            return _offset_span(text, start, end)
    return None


def _too_deep(text: str) -> Span:
    depth = 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DATA_DEPTH:
                return _offset_span(text, match.start(), match.end())
        elif token in "]}":
            depth -= 1
    return Span.point(1, 1)
