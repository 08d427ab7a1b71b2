"""Streamed minibatch ADVI refuses a value computed from the whole of a streamed array.

`ybar = mean(y)` is data-only (computed once, like Stan's transformed data); streamed, the
arrays are never whole in memory, and it used to be computed on the first batch only (a
prior centred on the first rows' mean: a silent wrong answer). Now refused at its line.
"""

import numpy as np
import pytest

import pplc
from pplc.errors import PplcError
from pplc.inference.minibatch import fit_streaming

MODEL = """data N: int
data x: real[N]
data y: int[N]
ybar = mean(y)
a ~ Normal(10 * ybar, 1)
b ~ Normal(0, 1)
for n in range(N):
    y[n] ~ Bernoulli(logits=a + b * x[n])
"""


def _mapped(tmp_path, y):
    x = np.random.default_rng(0).normal(size=y.size)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    return {"N": y.size, "x": np.load(tmp_path / "x.npy", mmap_mode="r"),
            "y": np.load(tmp_path / "y.npy", mmap_mode="r")}


def test_a_summary_of_a_streamed_array_is_refused_at_its_line(tmp_path):
    y = np.zeros(4000, np.int64)
    y[2000:] = 1            # the first batch's mean (0) is not the whole's (0.5)
    with pytest.raises(PplcError) as refused:
        fit_streaming(pplc.compile(MODEL), _mapped(tmp_path, y), 100, seed=0)
    text = str(refused.value)
    assert ":4:1: error: batch_size: 'ybar' is computed from the whole of y" in text
    assert "ybar = mean(y)" in text and "hint:" in text


def test_the_same_model_without_the_summary_is_streamed(tmp_path):
    y = (np.random.default_rng(1).uniform(size=4000) < 0.5).astype(np.int64)
    source = MODEL.replace("ybar = mean(y)\n", "").replace("10 * ybar", "0")
    result, _ = fit_streaming(pplc.compile(source), _mapped(tmp_path, y), 100, seed=0,
                              max_iterations=200)
    assert np.all(np.isfinite(result.draws))
