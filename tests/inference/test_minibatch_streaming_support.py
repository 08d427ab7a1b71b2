"""Streamed minibatch ADVI (inference/minibatch.py `check_rows`) refuses an observation
outside its distribution's support in a row the first batch (the probe the model is
conditioned on) does not hold, as conditioning refuses it with the data in memory: a
located error naming the row in the whole array, before any step. Without it a Bernoulli
y = 2 far into the file only gave "skipped steps" and a fit on the other rows.

The value sits in the second block of check_rows (row CHECK_ROWS + 123), so the message
must name the row in the whole array, not in its block; the first case also puts one in
the first block, past the first batch.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pplc
from pplc.errors import PplcError
from pplc.inference.minibatch import CHECK_ROWS, fit_streaming
from benchmarks.minibatch import MODEL as LOGREG   # the model measured there

B = 100
N = CHECK_ROWS + 500
BAD = CHECK_ROWS + 123   # a row of the second block, far past the first batch


POISSON = """
data N: int
data K: int
data X: real[N, K]
data y: int[N]

alpha ~ Normal(0, 1)
beta: real[K] ~ Normal(0, 1)

y ~ Poisson(log_rate=alpha + X @ beta)
"""

# total_count read from the data: the bound differs row by row
BINOMIAL = """
data N: int
data K: int
data X: real[N, K]
data T: int[N]
data y: int[N]

alpha ~ Normal(0, 1)
beta: real[K] ~ Normal(0, 1)

y ~ Binomial(T, logits=alpha + X @ beta)
"""


def _arrays(kind, bad_row):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(N, 2))
    arrays = {"X": X}
    if kind == "bernoulli":
        y = (rng.random(N) < 0.5).astype(np.int64)
        y[bad_row] = 2
    elif kind == "poisson":
        y = rng.poisson(1.0, size=N).astype(np.int64)
        y[bad_row] = -1
    else:
        T = rng.integers(1, 6, size=N).astype(np.int64)
        y = rng.binomial(T, 0.5).astype(np.int64)
        y[bad_row] = T[bad_row] + 1   # inside the declaration, above this row's count
        arrays["T"] = T
    arrays["y"] = y
    return arrays


CASES = {"bernoulli": (LOGREG, r"y\[{row}\] = 2 is outside the support of Bernoulli"),
         "poisson": (POISSON, r"y\[{row}\] = -1 is outside the support of Poisson"),
         "binomial": (BINOMIAL, r"y\[{row}\] = \d is outside the support of Binomial "
                                r"\(integers from 0 to total_count = \d\)")}


def _line(source):
    """The line of the statement that observes y (1-based, as the file holds `source`)."""
    return next(i for i, s in enumerate(source.splitlines(), 1) if s.startswith("y ~"))


def _folder(tmp_path, kind, bad_row):
    """The arrays as NAME.npy in a folder (memory-mapped by pplc/streaming.py) and the
    sizes in a JSON file."""
    folder = tmp_path / "rows"
    folder.mkdir()
    for name, value in _arrays(kind, bad_row).items():
        np.save(folder / f"{name}.npy", value)
    sizes = tmp_path / "sizes.json"
    sizes.write_text(json.dumps({"N": N, "K": 2}))
    return folder, sizes


@pytest.mark.parametrize("kind,bad_row", [("bernoulli", BAD), ("bernoulli", 5000),
                                          ("poisson", BAD), ("binomial", BAD)])
def test_python_refuses_an_observation_outside_its_support(tmp_path, kind, bad_row):
    source, pattern = CASES[kind]
    folder, _ = _folder(tmp_path, kind, bad_row)
    data = {"N": N, "K": 2, **{p.stem: np.load(p, mmap_mode="r")
                               for p in folder.glob("*.npy")}}
    with pytest.raises(PplcError, match=pattern.format(row=bad_row)) as info:
        fit_streaming(pplc.compile(source), data, B, max_iterations=100)
    text = str(info.value)
    lo = bad_row // CHECK_ROWS * CHECK_ROWS
    assert f"in rows {lo}..{min(N, lo + CHECK_ROWS) - 1} of the streamed data" in text, text
    assert f":{_line(source)}:1: error:" in text, text   # at the observing statement


@pytest.mark.parametrize("kind", ["bernoulli", "binomial"])
def test_cli_refuses_it_before_any_step(tmp_path, kind):
    """Through `pplc fit --batch-size`: exit status 1, the error at the statement's line
    and column with its caret, no traceback, and no fit printed."""
    source, pattern = CASES[kind]
    model = tmp_path / "m.ppl"
    model.write_text(source)
    folder, sizes = _folder(tmp_path, kind, BAD)
    out = subprocess.run(
        [sys.executable, "-m", "pplc.cli", "fit", str(model), "--data", str(sizes), "--data",
         str(folder), "--method", "advi", "--batch-size", str(B), "--no-cache",
         "--max-iterations", "200"],
        cwd=Path(__file__).resolve().parents[2], text=True, capture_output=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=300)
    err = out.stderr
    assert out.returncode == 1, (out.returncode, out.stdout, err)
    assert f"m.ppl:{_line(source)}:1: error:" in err, err
    assert re.search(pattern.format(row=BAD), err), err
    assert "^" in err and "Traceback" not in err, err
    assert "beta[1]" not in out.stdout, out.stdout   # no fit was reported
