"""Reads along loops (backends/rows.py, row_views.py): `y[n]`, `X[n, k]`, `X[n]` over the
whole of their axis are the arrays mapped with the loop, not gathers at an iota.

Exactness: the log density and gradient with the plan's rows equal those of the literal
gathers (the same plan with no rows) on every example and conformance model, and equal a
hand-written whole-array model where there is one. Both sums add the same float64 terms;
the order of the additions can differ, so 1e-12 relative (rounding is ~1e-16 per term).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jax
import numpy as np
import pytest

import pplc

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT.parent / "shared" / "conformance"
FOLDERS = sorted(p.parent for p in (ROOT / "examples").glob("*/model.ppl")
                 if (p.parent / "data.json").exists()) + \
    sorted(p.parent for p in CONFORMANCE.glob("*/model.ppl") if (p.parent / "data.json").exists())

HEAD = """
data N: int
data K: int
data G: int
data g: int(lower=0, upper=G - 1)[N]
data x: real[N]
data X: real[N, K]
data y: real[N]
data Z: real[N, K]
alpha ~ Normal(0, 1)
beta: real[K] ~ Normal(0, 1)
sigma ~ HalfNormal(1)
"""

PAIRS = {   # loop form -> the same model over whole arrays
    "rows": ("for n in range(N):\n    y[n] ~ Normal(alpha + X[n] @ beta, sigma)\n",
             "y ~ Normal(alpha + X @ beta, sigma)\n"),
    "elements": ("for n in range(N):\n    for k in range(K):\n"
                 "        Z[n, k] ~ Normal(beta[k] + X[n, k], sigma)\n",
                 "Z ~ Normal(beta + X, sigma)\n"),
    "transposed loops": ("for k in range(K):\n    for n in range(N):\n"
                         "        Z[n, k] ~ Normal(beta[k] + X[n, k], sigma)\n",
                         "Z ~ Normal(beta + X, sigma)\n"),
    "deterministic": ("for n in range(N):\n    mu[n] = alpha + beta[0] * x[n]\n"
                      "y ~ Normal(mu, sigma)\n",
                      "y ~ Normal(alpha + beta[0] * x, sigma)\n"),
}
OTHERS = {   # loop forms with no whole-array twin: checked against the literal gathers
    "part of the axis": "for n in range(2, N - 1):\n    y[n] ~ Normal(alpha * x[n], sigma)\n",
    "data-dependent index": "for n in range(N):\n    y[n] ~ Normal(X[n, g[n] % K] + x[n], sigma)\n",
    "earlier row": "for n in range(1, N):\n    y[n] ~ Normal(alpha * y[n - 1] + x[n], sigma)\n",
    "diagonal": "for k in range(K):\n    Z[k, k] ~ Normal(beta[k], sigma)\n",
}


def data(n: int = 37, k: int = 4, groups: int = 5) -> dict:
    rng = np.random.default_rng(3)
    return {"N": n, "K": k, "G": groups, "g": rng.integers(0, groups, n),
            "x": rng.normal(size=n), "X": rng.normal(size=(n, k)), "y": rng.normal(size=n),
            "Z": rng.normal(size=(n, k))}


def gathers(conditioned):
    """The same conditioned model lowered with literal gathers (no rows in its plan)."""
    lowered = conditioned.lowered
    return replace(lowered, plan=replace(lowered.plan, rows={}))


def value_and_grad(lowered, u, data):
    return jax.jit(jax.value_and_grad(lowered.log_density))(u, data)


def assert_close(a, b):
    (va, ga), (vb, gb) = a, b
    assert abs(float(va - vb)) <= 1e-12 * abs(float(vb)), (va, vb)
    assert np.max(np.abs(ga - gb)) <= 1e-12 * max(np.max(np.abs(gb)), 1.0), (ga, gb)


def test_the_plan_reads_rows_along_loops_and_says_so():
    model = pplc.compile(HEAD + PAIRS["rows"][0] + OTHERS["part of the axis"]
                         .replace("y[n] ~", "Z[n, 0] ~")).condition(data())
    rows = model.lowered.plan.rows
    by_piece = {name: [r.text() for r in reads] for (name, _), reads in rows.items()}
    assert by_piece["y"] == ["y[n]", "X[n]"]
    assert by_piece["Z"] == ["Z[n]", "x[n]"]
    (z_row,) = [r for r in rows[("Z", 0)] if r.array == "Z"]
    assert z_row.mapped == ((0, 0, "n", 2, 36),)   # a static slice of rows 2..35
    from pplc.backends.plan import format_plan
    text = format_plan(pplc.compile(HEAD + PAIRS["rows"][0]).condition(data()).lowered)
    assert "one vectorized operation; y[n], X[n] read along the loops" in text


def test_a_data_dependent_index_stays_a_gather():
    model = pplc.compile(HEAD + OTHERS["data-dependent index"]).condition(data())
    (reads,) = model.lowered.plan.rows.values()
    # X[n, g[n] % K]: the row X[n] along the loop, then a gather at g[n] % K in it
    assert [r.text() for r in reads] == ["y[n]", "X[n]", "g[n]", "x[n]"]


@pytest.mark.parametrize("name", list(PAIRS))
def test_loop_forms_equal_their_whole_array_twins(name):
    loop, whole = PAIRS[name]
    d = data()
    a = pplc.compile(HEAD + loop).condition(d)
    b = pplc.compile(HEAD + whole).condition(d)
    assert a.lowered.plan.rows, "nothing read along the loops: the test checks nothing"
    u = np.random.default_rng(0).normal(size=a.dim)
    assert_close(value_and_grad(a.lowered, u, a.data), value_and_grad(b.lowered, u, b.data))
    assert_close(value_and_grad(a.lowered, u, a.data),
                 value_and_grad(gathers(a), u, a.data))


@pytest.mark.parametrize("name", list(OTHERS))
def test_other_loops_equal_the_literal_gathers(name):
    a = pplc.compile(HEAD + OTHERS[name]).condition(data())
    assert a.lowered.plan.rows
    u = np.random.default_rng(0).normal(size=a.dim)
    assert_close(value_and_grad(a.lowered, u, a.data), value_and_grad(gathers(a), u, a.data))


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_examples_and_conformance_models_equal_the_literal_gathers(folder):
    conditioned = pplc.compile(folder / "model.ppl").condition(
        json.loads((folder / "data.json").read_text()))
    if not conditioned.lowered.plan.rows:
        pytest.skip("no read along a loop")
    u = np.random.default_rng(1).normal(size=conditioned.dim) * 0.3
    assert_close(value_and_grad(conditioned.lowered, u, conditioned.data),
                 value_and_grad(gathers(conditioned), u, conditioned.data))


def test_the_compiled_gradient_of_a_row_loop_has_no_gather_or_scatter():
    model = pplc.compile(HEAD + PAIRS["rows"][0]).condition(data())
    u = np.zeros(model.dim)
    text = jax.jit(jax.value_and_grad(model.lowered.log_density)).lower(
        u, model.data).compile().as_text()
    assert "gather(" not in text and "scatter(" not in text
    old = jax.jit(jax.value_and_grad(gathers(model).log_density)).lower(
        u, model.data).compile().as_text()
    assert "gather(" in old   # the literal lowering did gather: the check can fail
