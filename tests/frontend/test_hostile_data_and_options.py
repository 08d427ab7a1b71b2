"""Hostile data files, options and output paths through the real command line (issue 15).

A mistake exits with status 1 and a located message (`FILE:LINE:COL: error: ...`, or
`error: ...` for an option), never a traceback and never an "internal error"; output paths
are checked before any work (the cases give a model file that does not exist: the output's
error must come first), and no existing file is changed.

The options, the output paths and one case of a bad data file (the .npz archive) run
`python -m pplc.cli` in a fresh process. The other data files are read by the CLI's `main`
in this process (`_check_here`): their point is the message and the status, which `main`
returns the same, and a process of its own per case paid ~1.4 CPU-s of imports (issue 16
item 7).
"""

from __future__ import annotations

import codecs
import contextlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODEL = "data N: int\ndata y: real[N]\nmu ~ Normal(0, 1)\ny ~ Normal(mu, 1)\n"


def _pplc(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pplc.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def _check_here(*args) -> subprocess.CompletedProcess:
    """`pplc check ...` through the CLI's `main` in this process, as a finished process."""
    from pplc.cli import main

    out, err = io.StringIO(), io.StringIO()
    argv = ["check", *map(str, args)]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return subprocess.CompletedProcess(["pplc", *argv], code, out.getvalue(), err.getvalue())


def _refused(done: subprocess.CompletedProcess, head: str, message: str) -> list[str]:
    """Status 1; the first line starts with `head` and holds `message`; no traceback."""
    text = done.stderr
    assert done.returncode == 1, done.stdout + text
    assert "Traceback" not in text + done.stdout and "internal error" not in text, text
    lines = text.rstrip("\n").split("\n")
    assert lines[0].startswith(head) and message in lines[0], text
    return lines


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "model.ppl"
    path.write_text(MODEL)
    return path


def _check_with(model: Path, data: bytes | str) -> tuple[Path, subprocess.CompletedProcess]:
    path = model.parent / "data.json"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path, _check_here(model, "--data", path)


# ---------------------------------------------------------------- data files


def test_an_npz_archive_given_as_data_is_named_as_such(model, tmp_path):
    """Named .json, an archive is said to be one (`.npz` data are read by their suffix:
    pplc/datafiles.py); named .npz but broken, it is refused as an archive."""
    archive = tmp_path / "data.json"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("y.npy", b"\x93NUMPY")
    lines = _refused(_pplc("check", model, "--data", archive), f"{archive}: error: ",
                     "is a zip archive (a NumPy .npz file?), not JSON")
    assert "JSON object" in lines[-1]
    broken = archive.rename(tmp_path / "data.npz")
    _refused(_pplc("check", model, "--data", broken), f"{broken}: error: ",
             "as an .npz archive")


def test_a_netcdf_file_given_as_data_is_named_as_such(model):
    path, done = _check_with(model, b"\x89HDF\r\n\x1a\n" + bytes(100))
    _refused(done, f"{path}: error: ", "is an HDF5 file (netCDF-4, .nc or .h5), not JSON")


def test_a_latin1_data_file_is_refused_at_its_first_bad_byte(model):
    path, done = _check_with(model, '{"N": 1,\n "y": [1.0]} '.encode() + "# café".encode("latin-1"))
    lines = _refused(done, f"{path}:2:19: error: ", "the data file is not UTF-8 text")
    assert "save the file as UTF-8" in lines[-1]


def test_a_utf16_data_file_is_refused(model):
    path, done = _check_with(model, '{"N": 1, "y": [1.0]}'.encode("utf-16"))
    _refused(done, f"{path}: error: ", "is UTF-16 text, not UTF-8")


def test_a_byte_order_mark_and_crlf_line_endings_are_accepted(model):
    _, done = _check_with(model, codecs.BOM_UTF8 + b'{"N": 2,\r\n "y": [1.0, 2.0]}\r\n')
    assert done.returncode == 0, done.stderr


def test_an_error_in_a_crlf_data_file_is_located_on_its_line(model):
    path, done = _check_with(model, b'{"N": 2,\r\n "y": [1.0,\r\n       Infinity]}\r\n')
    lines = _refused(done, f"{path}:3:8: error: ", "observed y[1] = Infinity is not finite")
    assert lines[1] == "           Infinity]}"  # shown without the carriage return
    assert any(line.startswith(f"{model}:4:1: note: ") for line in lines), lines


def test_json_nested_a_hundred_thousand_deep_is_refused_not_a_recursion_error(model):
    path, done = _check_with(model, '{"N": 1, "y": ' + "[" * 100_000 + "]" * 100_000 + "}")
    _refused(done, f"{path}:1:", "nests arrays or objects more than 32 levels deep")


def test_a_duplicate_key_is_refused_with_both_places(model):
    path, done = _check_with(model, '{"N": 2,\n "y": [1, 2],\n "N": 3}')
    _refused(done, f"{path}:3:2: error: ", 'key "N" is given twice in the data file '
                                           "(first at line 1, column 2)")


def test_an_integer_beyond_64_bits_is_quoted_as_written(model):
    path, done = _check_with(model, '{"N": 99999999999999999999, "y": [1]}')
    _refused(done, f"{path}:1:7: error: ", "the integer 99999999999999999999 does not fit "
                                           "in 64 bits")


def test_an_empty_list_is_a_zero_by_k_matrix(tmp_path):
    path = tmp_path / "model.ppl"
    path.write_text("data N: int\ndata K: int\ndata X: real[N, K]\nb ~ Normal(0, 1)\n")
    data = tmp_path / "data.json"
    data.write_text('{"N": 0, "K": 3, "X": []}')
    done = _check_here(path, "--data", data)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- options


@pytest.mark.parametrize("option,message", [
    (["--chains", "0"], "argument --chains: expected a number >= 1, got 0"),
    (["--draws", "-5"], "argument --draws: expected a number >= 1, got -5"),
    (["--draws", "2.5"], "argument --draws: expected a whole number, got '2.5'"),
    (["--seed", str(2 ** 64)], "argument --seed: expected a number <= 9223372036854775807"),
    (["--seed", "-1"], "argument --seed: expected a number >= 0"),
    (["--metric", "full"], "argument --metric: invalid choice: 'full'"),
])
def test_absurd_options_are_refused_in_plain_words(model, option, message):
    done = _pplc("sample", model, "--data", "d.json", *option)
    lines = _refused(done, "error: ", message)
    assert "hint: see 'pplc sample --help'" in lines[-1]


# ---------------------------------------------------------------- output paths


def _sample_into(tmp_path, *outputs) -> subprocess.CompletedProcess:
    """`pplc sample` of a model file that does not exist: an output path error must come
    before the model is even read."""
    return _pplc("sample", tmp_path / "missing.ppl", "--data", tmp_path / "missing.json",
                 "--quiet", *outputs)


def test_an_output_under_a_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("keep")
    _refused(_sample_into(tmp_path, "--summary", tmp_path / "afile" / "s.json"), "error: ",
             f"'{tmp_path / 'afile'}' is a file, not a folder")
    assert (tmp_path / "afile").read_text() == "keep"


def test_an_output_in_a_missing_folder_is_refused_before_any_work(tmp_path):
    lines = _refused(_sample_into(tmp_path, "--output", tmp_path / "no" / "draws.nc"),
                     "error: ", f"folder '{tmp_path / 'no'}' does not exist")
    assert "mkdir -p" in lines[-1]
    assert not (tmp_path / "no").exists()


def test_summary_and_output_the_same_file_is_refused(tmp_path):
    same = tmp_path / "out.json"
    lines = _refused(_sample_into(tmp_path, "--summary", same, "--output",
                                  tmp_path / "." / "out.json"),
                     "error: ", "--summary and --output are the same file")
    assert "a file of its own" in lines[-1]


def test_an_existing_output_is_left_as_it_was(tmp_path):
    existing = tmp_path / "summary.json"
    existing.write_text("{}")
    _refused(_sample_into(tmp_path, "--summary", existing), "error: ", "already exists")
    assert existing.read_text() == "{}"


def test_build_checks_its_output_folder_before_compiling(tmp_path):
    done = _pplc("build", tmp_path / "missing.ppl", "-o", tmp_path / "no" / "module.py")
    _refused(done, "error: ", "does not exist")
