"""Runs that cannot fit in memory are refused before anything is allocated, saying how
much they would need (pplc/resources.py; issue 15 item 3): a size typo, absurd chains or
draws. Without the estimate these hung at 0% CPU, were killed by the out-of-memory killer,
or ended in a MemoryError reported as a bug in pplc."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import pplc
from pplc.resources import size_text

ROOT = Path(__file__).resolve().parents[1]
EIGHT = ROOT / "examples" / "eight_schools"


def _pplc(*args):
    return subprocess.run([sys.executable, "-m", "pplc.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_absurd_chains_and_draws_are_refused_with_what_they_would_need():
    for option, value in (("--chains", 10 ** 9), ("--draws", 10 ** 12)):
        done = _pplc("sample", EIGHT / "model.ppl", "--data", EIGHT / "data.json",
                     option, value)
        assert done.returncode == 1, done.stderr
        assert "needs at least" in done.stderr and "TiB of memory" in done.stderr
        assert "is available" in done.stderr and "Traceback" not in done.stderr


def test_a_size_typo_is_refused_by_check_naming_the_size(tmp_path):
    model = tmp_path / "m.ppl"
    model.write_text("data N: int\nx: real[N] ~ Normal(0, 1)\n")
    data = tmp_path / "d.json"
    data.write_text(json.dumps({"N": 10 ** 12}))
    done = _pplc("check", model, "--data", data)
    assert done.returncode == 1, done.stdout
    assert "this model has 1000000000000 unconstrained parameters" in done.stderr
    assert "the largest is N = 1000000000000" in done.stderr


def test_the_python_api_refuses_before_allocating():
    model = pplc.compile(EIGHT / "model.ppl").condition(EIGHT / "data.json")
    with pytest.raises(pplc.PplcError, match="needs at least .* of memory"):
        model.sample(chains=2, draws=10 ** 12)
    with pytest.raises(pplc.PplcError, match="fitting and drawing 1 chain x"):
        model.fit(method="advi", draws=10 ** 13)


def test_sizes_are_written_in_binary_units():
    assert size_text(512) == "512 bytes"
    assert size_text(1536) == "1.5 KiB"
    assert size_text(3 * 1024 ** 4) == "3.0 TiB"


def test_a_dense_metric_counts_its_matrices():
    """10^6 parameters: the positions fit (about 0.4 GB), but four 10^6 x 10^6 matrices
    per chain (32 TB) do not."""
    from pplc.resources import check_run_size
    check_run_size(1, 10, 10 ** 6, 10 ** 6, {}, dense=False)
    with pytest.raises(pplc.PplcError, match="needs at least"):
        check_run_size(1, 10, 10 ** 6, 10 ** 6, {}, dense=True)
