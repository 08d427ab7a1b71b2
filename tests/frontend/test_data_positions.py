"""Positions of values in a JSON data file (frontend/data_json.py), for diagnostics that point
at the offending number rather than at its key (issue 15)."""

from __future__ import annotations

import pytest

from pplc.frontend.data_json import key_span, parse_json, value_span
from pplc.errors import PplcError, Source

TEXT = '''{
  "note": "a \\"y\\": [9, 9] inside a string, with [brackets], {braces}: and, commas",
  "N": 3,
  "y": [0.5,
        -1.5e-3, 2],
  "X": [[1, 2], [3, Infinity]],
  "z\\u00e9": [null, NaN]
}'''


def _at(span) -> str:
    line = TEXT.split("\n")[span.line - 1]
    return line[span.column - 1:span.end_column - 1]


def test_values_are_found_by_their_path_whatever_strings_hold():
    source = Source("d.json", TEXT)
    assert _at(value_span(source, "y", (1,))) == "-1.5e-3"
    assert value_span(source, "y", (1,)).line == 5
    assert _at(value_span(source, "X", (1, 1))) == "Infinity"
    assert _at(value_span(source, "N")) == "3"
    assert _at(value_span(source, "zé", (1,))) == "NaN"
    assert _at(key_span(source, "y")) == '"y"'
    assert key_span(source, "y").line == 4  # not the "y" inside the note


def test_an_index_past_the_file_falls_back_to_the_key():
    source = Source("d.json", TEXT)
    assert _at(value_span(source, "y", (7,))) == '"y"'
    assert value_span(None, "y", (0,)) is None


@pytest.mark.parametrize("text,where,message", [
    ('{"a": 1,\n "b": {"c": 1, "c": 2}}', (2, 16), 'key "c" is given twice'),
    ('{"a": 1, "b": [{"a": 1}], "a": 2}', (1, 27), 'key "a" is given twice'),
    ('{"a": 12345678901234567890}', (1, 7), "does not fit in 64 bits"),
    ('{"a": -9223372036854775809}', (1, 7), "does not fit in 64 bits"),
    ('{"a": [1e309]}', (1, 8), "too large for a 64-bit float"),
])
def test_what_a_json_reader_would_take_silently_is_refused_at_its_place(text, where, message):
    with pytest.raises(PplcError) as info:
        parse_json(text, "d.json")
    diagnostic = info.value.diagnostics[0]
    assert (diagnostic.span.line, diagnostic.span.column) == where
    assert message in diagnostic.message


def test_keys_of_different_objects_may_repeat_and_64_bit_bounds_are_accepted():
    raw, _ = parse_json('{"a": {"k": 1}, "b": {"k": 2}, "c": [9223372036854775807, '
                        '-9223372036854775808]}')
    assert raw["c"] == [2 ** 63 - 1, -2 ** 63]


def test_data_given_as_a_dict_are_refused_at_the_statement_with_the_same_message():
    import numpy as np

    import pplc

    model = pplc.compile("data N: int\ndata y: real[N]\nmu ~ Normal(0, 1)\n"
                         "y ~ Normal(mu, 1)\n")
    with pytest.raises(PplcError) as info:
        model.condition({"N": 2, "y": np.array([1.0, np.inf])})
    diagnostic = info.value.diagnostics[0]
    assert diagnostic.message == "observed y[1] = Infinity is not finite"
    assert diagnostic.span.line == 4
    with pytest.raises(PplcError) as info:
        model.condition({"N": 2, "y": [1.0, True]})
    assert "data 'y[1]' is true, not a number" in str(info.value)
    with pytest.raises(PplcError) as info:
        model.condition({"N": 2 ** 64, "y": [1.0, 2.0]})
    assert "does not fit in 64 bits" in str(info.value)
    # A NumPy boolean array says what it holds: 0 and 1.
    model.condition({"N": 2, "y": np.array([True, False])})
