"""Covariances of data alone factorized once (backends/factors.py, Plan.factors).

Exactness: the log density and gradient with the factors in the runtime data equal the
density's own solve (the same model and data, the factor keys left out, which makes the
lowering solve as before) to 1e-12 relative. Both compute |L^-1 (x - m)|^2 in float64;
the precision form adds the same quantity in another order, and on the 100-d Gaussian
(condition number of L: 100) measured 7e-15 relative on the value and 2e-14 on the
gradient, so 1e-12 leaves two orders of magnitude and still catches any wrong term (a
missing log-determinant is O(1)). The value is also checked against SciPy's density.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from scipy import stats

import pplc

ROOT = Path(__file__).resolve().parents[2]


def _cov(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(d, d))
    return a @ a.T / d + 0.5 * np.eye(d)


D, N = 6, 8
S = _cov(D, 0)
L = np.linalg.cholesky(S)
Y = np.random.default_rng(1).normal(size=(N, D))

LATENT = ("data D: int\ndata L: real[D, D]\n"
          "x: real[D] ~ MultivariateNormal(zeros(D), scale_tril=L)\n")
MODELS = {
    "latent, scale_tril": (LATENT, {"D": D, "L": L}),
    "observed in a loop, cov": (
        "data N: int\ndata D: int\ndata S: cov[D]\ndata y: real[N, D]\n"
        "mu: real[D] ~ Normal(0, 3)\n"
        "for n in range(N):\n    y[n] ~ MultivariateNormal(mu, cov=S)\n",
        {"N": N, "D": D, "S": S, "y": Y}),
    "whole array, cov of a data-only value": (
        "data N: int\ndata D: int\ndata S: cov[D]\ndata y: real[N, D]\n"
        "S2 = 2 * S\nmu: real[D] ~ Normal(0, 3)\n"
        "y ~ MultivariateNormal(mu, cov=S2)\n",
        {"N": N, "D": D, "S": S, "y": Y}),
    "the linear inverse problem example": (
        (ROOT / "examples/linear_inverse_problem/model.ppl").read_text(),
        json.loads((ROOT / "examples/linear_inverse_problem/data.json").read_text())),
}


def _solving(cm) -> dict:
    """The model's runtime data without the factors: the density then solves per call."""
    return {k: v for k, v in cm.data.items() if not k.startswith("@factor:")}


@pytest.mark.parametrize("name", MODELS)
def test_factorized_density_equals_the_solve(name):
    text, data = MODELS[name]
    cm = pplc.compile(text).condition(data)
    assert len(cm.lowered.plan.factors) == 1
    vg = jax.jit(jax.value_and_grad(cm.lowered.log_density))
    rng = np.random.default_rng(2)
    for _ in range(4):
        u = rng.normal(size=cm.dim)
        value, grad = vg(u, cm.data)
        ref_value, ref_grad = vg(u, _solving(cm))
        assert abs(value - ref_value) <= 1e-12 * abs(ref_value)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-12,
                                   atol=1e-12 * np.abs(ref_grad).max())


def test_value_equals_scipy_on_new_data_of_the_same_shapes():
    """Conditioning on another L factorizes it anew (the factors are data, not constants)."""
    model = pplc.compile(LATENT)
    x = np.random.default_rng(3).normal(size=D)
    for seed in (4, 5):
        chol = np.linalg.cholesky(_cov(D, seed))
        cm = model.condition({"D": D, "L": chol})
        expected = stats.multivariate_normal(np.zeros(D), chol @ chol.T).logpdf(x)
        assert abs(float(cm.lowered.log_density(x, cm.data)) - expected) <= 1e-12 * abs(expected)


def test_the_compiled_gradient_calls_no_lapack():
    """Why: a LAPACK custom call keeps XLA:CPU from compiling the sampler's loops whole."""
    cm = pplc.compile(LATENT).condition({"D": D, "L": L})
    hlo = jax.jit(jax.value_and_grad(cm.lowered.log_density)).lower(
        np.zeros(cm.dim), cm.data).compile().as_text()
    assert "custom-call" not in hlo
    solving = jax.jit(jax.value_and_grad(cm.lowered.log_density)).lower(
        np.zeros(cm.dim), _solving(cm)).compile().as_text()
    assert "lapack" in solving   # the check can fail: the solve's form has the call


@pytest.mark.parametrize("text", [
    # the matrix reads a latent
    "data D: int\ndata S: cov[D]\ntau ~ HalfNormal(1)\n"
    "x: real[D] ~ MultivariateNormal(zeros(D), cov=tau * S)\n",
    # the matrix reads the loop index: one per group
    "data N: int\ndata D: int\ndata G: int\ndata g: int(lower=0, upper=G - 1)[N]\n"
    "data Ls: real[G, D, D]\ndata y: real[N, D]\nmu: real[D] ~ Normal(0, 3)\n"
    "for n in range(N):\n    y[n] ~ MultivariateNormal(mu, scale_tril=Ls[g[n]])\n",
])
def test_a_matrix_that_is_not_data_alone_is_left_to_the_density(text):
    data = {"D": D, "S": S, "N": N, "G": 2, "g": [0, 1, 0, 1, 1, 0, 0, 1], "Ls": np.stack([L, L]),
            "y": Y}
    model = pplc.compile(text)
    cm = model.condition({k: v for k, v in data.items() if f"data {k}:" in text})
    assert not cm.lowered.plan.factors
    assert not any(k.startswith("@factor:") for k in cm.data)


def test_explain_and_the_plan_say_so(tmp_path):
    """Through the CLI's `main` in this process (the same status and output; `explain`
    and `ir` run as processes in test_plan.py and test_cli.py)."""
    from pplc.cli import main

    (tmp_path / "m.ppl").write_text(LATENT)
    (tmp_path / "d.json").write_text(json.dumps({"D": D, "L": L.tolist()}))
    said = "scale_tril=L is data: its Cholesky factor is inverted once, before sampling"
    for command in (["explain"], ["ir", "--plan"]):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*command, str(tmp_path / "m.ppl"), "--data", str(tmp_path / "d.json")])
        assert code == 0, err.getvalue()
        assert said in out.getvalue()
