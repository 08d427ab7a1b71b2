"""Mutated valid models either compile or fail with a located diagnostic, never a traceback.

Valid models (examples/*/model.ppl and ../shared/conformance/*/model.ppl) are cut into crude
tokens (words, single punctuation characters, runs of white space) and mutated once: a token
deleted, duplicated, swapped with its neighbour, a character of `()[]:=~,.@*+-` inserted, or a
line's indentation changed. Property: `pplc.compile` (then `.condition` with the model's data,
for mutants that compile) succeeds or raises `PplcError`, each of whose diagnostics renders
as `FILE:LINE:COL: error: ...` or, for file-level problems, `FILE: error: ...`. Any other
exception fails the test. Derandomized, so CI sees the same 300 mutants every run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pplc
from pplc.errors import PplcError, clip_line

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT.parent / "shared" / "conformance"

_TOKEN = re.compile(r"[ \t]+|\n|\w+|[^\w\s]")
_INSERTABLE = "()[]:=~,.@*+-"
_LOCATED = re.compile(r"^\S.*:\d+:\d+: error: \S")
_FILE_LEVEL = re.compile(r"^(\S.*: )?error: \S")


def _seeds(folder: Path) -> list[tuple[str, str, Path | None]]:
    seeds = []
    for model in sorted(folder.glob("*/model.ppl")):
        data = model.with_name("data.json")
        seeds.append((f"{folder.name}/{model.parent.name}", model.read_text(),
                      data if data.exists() else None))
    return seeds


EXAMPLES = _seeds(ROOT / "examples")
CONFORMING = _seeds(CONFORMANCE) if CONFORMANCE.is_dir() else []
SEEDS = EXAMPLES + CONFORMING


def tokenize(text: str) -> list[str]:
    tokens = _TOKEN.findall(text)
    assert "".join(tokens) == text
    return tokens


@st.composite
def mutants(draw) -> tuple[str, str, Path | None, str]:
    """(seed name, mutated text, data path, description of the mutation)."""
    name, text, data = draw(st.sampled_from(SEEDS))
    tokens = tokenize(text)
    # Mutate the model's statements more than its comments and blank space.
    solid = [i for i, t in enumerate(tokens) if not t.isspace()]
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "indent"]))
    if kind == "indent":
        lines = text.split("\n")
        row = draw(st.integers(0, len(lines) - 1))
        indent = draw(st.sampled_from(["", " ", "  ", "    ", "        ", "\t", "     "]))
        lines[row] = indent + lines[row].lstrip(" \t")
        return name, "\n".join(lines), data, f"indent line {row + 1} by {indent!r}"
    i = draw(st.sampled_from(solid))
    if kind == "delete":
        new = tokens[:i] + tokens[i + 1:]
    elif kind == "duplicate":
        new = tokens[:i + 1] + [tokens[i]] + tokens[i + 1:]
    elif kind == "swap":
        j = min(i + 1, len(tokens) - 1)
        new = list(tokens)
        new[i], new[j] = new[j], new[i]
    else:
        char = draw(st.sampled_from(_INSERTABLE))
        after = draw(st.booleans())
        new = tokens[:i + after] + [char] + tokens[i + after:]
    return name, "".join(new), data, f"{kind} token {i} ({tokens[i]!r})"


def _assert_located(err: PplcError) -> None:
    assert err.diagnostics, "PplcError without diagnostics"
    for diagnostic in err.diagnostics:
        head = diagnostic.render().splitlines()[0]
        assert _LOCATED.match(head) or _FILE_LEVEL.match(head), err.render()
        assert "Traceback" not in diagnostic.render(), err.render()


def test_seeds_are_valid():
    """The property is only interesting if the unmutated models compile and condition."""
    assert EXAMPLES, "no examples/*/model.ppl found"
    for name, text, data in SEEDS:
        model = pplc.compile(text)
        if data is not None:
            model.condition(data)


@pytest.mark.skipif(not CONFORMING, reason=f"{CONFORMANCE} is absent: fuzzing examples only")
def test_conformance_seeds_present():
    assert len(CONFORMING) >= 5


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(mutants())
def test_mutated_models_fail_only_with_diagnostics(case):
    name, text, data, how = case
    try:
        model = pplc.compile(text)
    except PplcError as err:
        _assert_located(err)
        return
    if data is None:
        return
    try:
        model.condition(data)
    except PplcError as err:
        _assert_located(err)


# Characters a hostile or mis-saved file brings: a tab, carriage returns, a byte-order mark
# in the middle, form feed, a line separator, non-ASCII letters and look-alike operators.
_HOSTILE = ["\t", "\r", "\r\n", "\ufeff", "\x0c", "\u2028", "\u00a0", "μ", "é", "×", "^",
            "−", "“", "\x00", "@", "#", "\\"]


@st.composite
def hostile_mutants(draw) -> tuple[str, str]:
    """(seed name, the seed's text with a hostile character inserted at a random place)."""
    name, text, _ = draw(st.sampled_from(SEEDS))
    at = draw(st.integers(0, len(text)))
    return name, text[:at] + draw(st.sampled_from(_HOSTILE)) + text[at:]


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(hostile_mutants())
def test_hostile_characters_fail_only_with_diagnostics(case):
    """...and the line shown under a diagnostic is the line it names, counted as Python
    counts lines (universal newlines: LF, CRLF, CR; a leading byte-order mark skipped)."""
    name, text = case
    try:
        pplc.compile(text)
    except PplcError as err:
        _assert_located(err)
        lines = re.split(r"\r\n|\r|\n", text[1:] if text.startswith("\ufeff") else text)
        for diagnostic in err.diagnostics:
            if diagnostic.span is None:
                continue
            line, column = diagnostic.span.line, diagnostic.span.column
            expected = lines[line - 1] if line <= len(lines) else ""
            shown, _, _ = clip_line(expected.expandtabs(1), column, 1)
            assert diagnostic.render().split("\n")[1] == "    " + shown, err.render()
