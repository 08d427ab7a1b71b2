"""Hostile model files through the real command line (issue 15).

Each file is checked with `python -m pplc.cli check FILE` in a fresh process: a mistake
exits with status 1 and one short paragraph on stderr (a location or the file's name, the
message, the source line and caret, a hint), never a traceback and never an "internal
error"; what Python accepts (a byte-order mark, CRLF or CR line endings) is accepted.
"""

from __future__ import annotations

import codecs
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pplc.errors import PplcError
from pplc.frontend.parser import parse

ROOT = Path(__file__).resolve().parents[2]
MODEL = "data N: int\nmu ~ Normal(0, 1)\nfor i in range(N):\n    x[i] ~ Normal(mu, 1)\n"


def _check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pplc.cli", "check", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def _refused(path: Path, message: str, where: str | None = None) -> list[str]:
    """Status 1 and one paragraph whose first line holds `message` (at `where`, LINE:COL)."""
    done = _check(path)
    assert done.returncode == 1, done.stdout + done.stderr
    text = done.stderr
    assert "Traceback" not in text + done.stdout and "internal error" not in text, text
    lines = text.rstrip("\n").split("\n")
    assert len(lines) <= 5 and all(line.strip() for line in lines), text  # one paragraph
    head = lines[0]
    prefix = f"{path}:{where}: error: " if where else f"{path}: error: "
    assert head.startswith(prefix) and message in head, text
    return lines


def _accepted(path: Path) -> set[str]:
    """Status 0; the words of what `check` printed (it lists the model's variables)."""
    done = _check(path)
    assert done.returncode == 0, done.stderr
    return set(re.findall(r"\w+", done.stdout))


# ---------------------------------------------------------------- encodings and line endings


def test_a_binary_file_is_refused_as_not_text(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_bytes(bytes(range(256)))
    lines = _refused(path, "is not a text file")
    assert "UTF-8" in lines[-1]


def test_a_latin1_file_is_refused_at_its_first_bad_byte_saying_utf8_was_expected(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_bytes("# prior for the café data\nmu ~ Normal(0, 1)\n".encode("latin-1"))
    lines = _refused(path, "the model file is not UTF-8 text: byte 0xe9", where="1:20")
    assert "Latin-1" in lines[-1] and "save the file as UTF-8" in lines[-1]


def test_a_utf16_file_is_refused(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_bytes(MODEL.encode("utf-16"))
    _refused(path, "is UTF-16 text, not UTF-8")


def test_a_utf8_byte_order_mark_is_accepted_as_python_accepts_it(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_bytes(codecs.BOM_UTF8 + MODEL.encode())
    assert {"mu", "x"} <= _accepted(path)


@pytest.mark.parametrize("ending", ["\r\n", "\r"], ids=["crlf", "cr"])
def test_windows_and_old_mac_line_endings_are_accepted(tmp_path, ending):
    path = tmp_path / "model.ppl"
    path.write_bytes(MODEL.replace("\n", ending).encode())
    assert {"mu", "x"} <= _accepted(path)


def test_an_error_in_a_crlf_file_is_located_and_shown_without_carriage_returns(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_bytes(MODEL.replace("Normal(mu", "Normal(muu").replace("\n", "\r\n").encode())
    lines = _refused(path, "unknown name 'muu'", where="4:19")
    assert lines[1] == "        x[i] ~ Normal(muu, 1)"


def test_a_line_break_only_python_sees_does_not_shift_the_shown_line():
    """U+2028 in a comment is no line break for the parser, so none for the renderer."""
    with pytest.raises(PplcError) as info:
        parse("mu ~ Normal(0, 1)  # a\u2028comment\nx = mu $\n", "m.ppl")
    assert info.value.render().splitlines()[1] == "    x = mu $"


# ---------------------------------------------------------------- indentation and names


def test_tabs_mixed_with_spaces_in_one_block_are_refused_like_pythons_taberror(tmp_path):
    path = tmp_path / "model.ppl"
    # A tab is 8 columns for lark's indenter: without the check this block silently parses.
    path.write_text("data N: int\nfor i in range(N):\n\tx[i] ~ Normal(0, 1)\n"
                    "        y[i] ~ Normal(0, 1)\n")
    lines = _refused(path, "inconsistent use of tabs and spaces in indentation", where="4:1")
    assert "8 spaces" in lines[-1] and "1 tab" in lines[-1]


def test_a_block_indented_with_tabs_only_is_accepted(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_text(MODEL.replace("    ", "\t"))
    _accepted(path)


def test_a_non_ascii_name_gets_a_hint_with_an_ascii_spelling(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_text("μ ~ Normal(0, 1)\nx ~ Normal(μ, 1)\n")
    lines = _refused(path, "unexpected character 'μ'", where="1:1")
    assert "ASCII" in lines[-1] and "write 'mu' for 'μ'" in lines[-1]


def test_non_ascii_text_in_comments_is_fine(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_text("# σ ≥ 0, café, 日本語\n" + MODEL)
    _accepted(path)


# ---------------------------------------------------------------- size and depth


def test_five_thousand_nested_parentheses_are_read(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_text("mu ~ Normal(0, 1)\nx = " + "(" * 5000 + "mu" + ")" * 5000 + "\n")
    assert "x" in _accepted(path)


def test_a_five_thousand_term_sum_is_refused_as_nested_too_deeply(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_text("mu ~ Normal(0, 1)\nx = " + " + ".join(["mu"] * 5000) + "\n")
    lines = _refused(path, "expression nested too deeply", where="2:5")
    assert "sum([a, b, c, ...])" in lines[-1]
    assert len(lines[1]) < 300  # the 25,000-character line is shown cut around the caret


def test_five_thousand_nested_lists_are_refused_as_nested_too_deeply(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_text("x = " + "[" * 5000 + "1" + "]" * 5000 + "\n")
    _refused(path, "expression nested too deeply", where="1:205")  # the 201st '['


def test_two_thousand_chained_defs_are_refused_at_the_def_that_is_too_deep(tmp_path):
    path = tmp_path / "model.ppl"
    defs = "def f0(x):\n    return x\n" + "".join(
        f"def f{i}(x):\n    return f{i - 1}(x)\n" for i in range(1, 2000))
    path.write_text(defs + "mu ~ Normal(f1999(0), 1)\n")
    lines = _refused(path, "def 'f200' nests too deeply", where="401:5")
    assert "f200 -> f199 -> f198 -> ... -> f1 -> f0" in lines[-1]


def test_a_model_of_twenty_thousand_statements_is_checked(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_text("mu ~ Normal(0, 1)\n" + "".join(f"x{i} ~ Normal(mu, 1)\n"
                                                     for i in range(20000)))
    assert "x19999" in _accepted(path)
