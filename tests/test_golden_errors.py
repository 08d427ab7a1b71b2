"""Golden bad models: every file in tests/golden/bad/ is a mistake with its expected diagnostic.

Each `NNN_name.ppl` starts with comment lines (they count in the line numbers)::

    # E: 9:29: unknown name 'sigmaa'        line:col in the model, then words of the message
    # E: json:2:2: unknown data name        ... or line:col in the data file NNN_name.json
    # E: -: inconsistent indentation        ... or a diagnostic with no location
    # HINT: did you mean 'sigma'?           optional: words of the `hint:` line
    # XFAIL: why pplc's diagnostic is wrong optional: the expectation is what pplc *should* say
                                            ("# XFAIL: nondeterministic: ..." is not strict)

A data file `NNN_name.json` beside the model, when present, is passed to `.condition`.
The expected words must appear in the first line of the rendered diagnostic; the rendering
must be the source line and a caret under the column, with no Python traceback.
XFAIL files record pplc bugs reported to the lead; they are strict, so a fix shows up as
XPASS: then delete the `# XFAIL:` line (and check the expectation).
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import pplc
from pplc.errors import PplcError, clip_line

BAD = Path(__file__).parent / "golden" / "bad"
ROOT = Path(__file__).resolve().parent.parent

_EXPECT = re.compile(r"# E: (?:(?P<json>json:)?(?P<line>\d+):(?P<col>\d+)|(?P<none>-)): (?P<msg>.+)")


@dataclass(frozen=True)
class Case:
    model: Path
    data: Path | None
    in_data: bool  # the diagnostic points into the data file
    line: int | None  # None: a diagnostic without a location
    column: int | None
    message: str
    hint: str | None
    xfail: str | None

    @property
    def name(self) -> str:
        return self.model.stem


def _read_case(model: Path) -> Case:
    header = []
    for text in model.read_text().splitlines():
        if not text.startswith("# "):
            break
        header.append(text)
    found = _EXPECT.fullmatch(header[0]) if header else None
    if found is None:
        raise ValueError(f"{model.name}: the first line must be '# E: LINE:COL: message'")
    hint = next((h[len("# HINT: "):] for h in header if h.startswith("# HINT: ")), None)
    xfail = next((h[len("# XFAIL: "):] for h in header if h.startswith("# XFAIL: ")), None)
    data = model.with_suffix(".json")
    located = found["none"] is None
    return Case(model, data if data.exists() else None, bool(found["json"]),
                int(found["line"]) if located else None, int(found["col"]) if located else None,
                found["msg"].strip(), hint, xfail)


CASES = [_read_case(p) for p in sorted(BAD.glob("*.ppl"))]


def _params(cases):
    # Strict, so that a fix shows as XPASS; a nondeterministic diagnostic passes only sometimes.
    return [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(
        reason=c.xfail, strict=not c.xfail.startswith("nondeterministic"))] if c.xfail else [])
        for c in cases]


def _check_rendering(case: Case, rendered: str) -> None:
    """The first diagnostic: location, message words, source line, caret, hint."""
    assert "Traceback" not in rendered, rendered
    lines = rendered.splitlines()
    head = lines[0]
    path = case.data if case.in_data else case.model
    if case.line is None:
        assert re.match(r"(\S+: )?error: ", head), rendered
    else:
        assert head.startswith(f"{path}:{case.line}:{case.column}: error: "), rendered
        source_line = path.read_text().splitlines()[case.line - 1] if path.read_text() else ""
        # A very long line is shown cut around the caret, marked with '...'.
        shown, column, _ = clip_line(source_line.expandtabs(1).rstrip("\n"), case.column, 1)
        assert lines[1] == "    " + shown, rendered
        caret = lines[2]
        assert caret.startswith("    ") and set(caret[4:].strip()) == {"^"}, rendered
        assert caret[4:].index("^") == column - 1, rendered
    assert case.message in head, rendered
    if case.hint is not None:
        # The hint belongs to the first diagnostic: it comes before any second `error:` line.
        first = re.split(r"\n(?=\S+: error: |error: )", rendered)[0]
        hints = [h for h in first.splitlines() if h.startswith("  hint: ")]
        assert hints and case.hint in hints[0], rendered


def test_corpus_is_large_and_well_formed():
    assert len(CASES) >= 80
    for case in CASES:
        if case.in_data:
            assert case.data is not None, f"{case.name}: json: location but no data file"


@pytest.mark.parametrize("case", _params(CASES))
def test_bad_model(case: Case):
    with pytest.raises(PplcError) as info:
        model = pplc.compile(case.model)
        if case.data is not None:
            model.condition(case.data)
    _check_rendering(case, info.value.render())


# A handful of files through the real command line: status 1, the same rendering on stderr.
CLI_CASES = ["syntax_missing_colon_for", "name_unknown_variable", "def_piece_overlap",
             "data_wrong_shape", "data_unknown_name", "data_json_syntax", "call_probs_and_logits"]


def _by_suffix(name: str) -> Case:
    (case,) = [c for c in CASES if c.name.split("_", 1)[1] == name]
    return case


@pytest.mark.parametrize("case", _params([_by_suffix(n) for n in CLI_CASES]))
def test_bad_model_on_the_command_line(case: Case):
    argv = [sys.executable, "-m", "pplc.cli", "check", str(case.model)]
    if case.data is not None:
        argv += ["--data", str(case.data)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    _check_rendering(case, done.stderr)
