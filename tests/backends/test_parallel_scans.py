"""Recurrences by their algebraic form (backends/scan_forms.py): linear and log-semiring
matrix recurrences can run from coefficients computed for every step at once, sequentially
or as a parallel prefix scan; every other recurrence keeps the general per-step scan. (The
plan runs the log-semiring form sequentially and keeps the general scan for a linear one,
as measured; the tests set the others in the plan by hand.)

Each form is checked against the general scan that evaluates the piece's expression per
step (the plan built by hand with `form=""`): the log density and its gradient agree to
1e-10 relative in float64, though the parallel scan sums in another order. A recurrence
that is not of either form must be classified as such: a wrong classification would give
a wrong density, so the values of those models are checked against NumPy too.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pplc
from benchmarks.scans import HMM   # the model of the 416-step benchmark
from pplc.backends import scan_forms

ROOT = Path(__file__).resolve().parents[2]
CONFORMANCE = ROOT.parent / "shared" / "conformance"


# Three states, the emission first and the transition column read through a slice.
HMM3 = """\
data T: int
data y: real[T]
mu: ordered[3] ~ Normal(0, 3)
G: simplex[3, 3] ~ Dirichlet(ones(3))
for k in range(3):
    alpha[0, k] = -0.5 * (y[0] - mu[k]) ** 2
for t in range(1, T):
    for k in range(3):
        alpha[t, k] = -0.5 * (y[t] - mu[k]) ** 2 + logsumexp(log(G[0:3, k]) + alpha[t - 1, :])
factor logsumexp(alpha[T - 1])
"""

AR_ROWS = """\
data T: int
data K: int
a: real[K] ~ Normal(0.5, 0.2)
e: real[T, K] ~ Normal(0, 1)
for k in range(K):
    x[0, k] = e[0, k]
for t in range(1, T):
    for k in range(K):
        x[t, k] = e[t, k] - (x[t - 1, k] * a[k]) / 2 + 0.1
s ~ Normal(sum(x), 1)
"""


def _with_form(model, key, **fields):
    """The lowered model with one recurrence's strategy replaced (a plan built by hand)."""
    lowered = model.lowered
    plan = lowered.plan
    scan = replace(plan.scans[key], **fields)
    return replace(lowered, plan=replace(plan, scans={**plan.scans, key: scan}))


def _value_and_grad(lowered, u):
    data = lowered.runtime_data()
    f = jax.jit(jax.vmap(jax.value_and_grad(lambda x: lowered.log_density(x, data))))
    return f(u)


def _sv():
    source = (ROOT / "examples" / "stochastic_volatility" / "model_noncentered.ppl").read_text()
    return pplc.compile(source).condition(
        str(ROOT / "examples" / "stochastic_volatility" / "data.json"))


def _hmm(source, T=416, seed=0):
    rng = np.random.default_rng(seed)
    z = np.cumsum(rng.random(T) < 0.1) % 2
    y = np.where(z == 0, -1.0, 1.0) + rng.normal(0, 0.7, T)
    return pplc.compile(source).condition({"T": T, "y": y.tolist()})


CASES = {
    "hmm-2-states": (lambda: _hmm(HMM, T=50), ("alpha", 1), scan_forms.SEMIRING),
    "hmm-3-states": (lambda: _hmm(HMM3, T=40, seed=1), ("alpha", 1), scan_forms.SEMIRING),
    "sv-noncentered": (_sv, ("h", 1), scan_forms.LINEAR),
    "ar-rows": (lambda: pplc.compile(AR_ROWS).condition({"T": 80, "K": 3, "s": 1.0}),
                ("x", 1), scan_forms.LINEAR),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_form_gives_the_general_scans_density_and_gradient(case):
    """Sequential and parallel runs of the form against the general per-step scan, at
    random points: 1e-10 relative (float64 rounding differs only by the order of sums)."""
    make, key, form = CASES[case]
    model = make()
    scan = model.lowered.plan.scans[key]
    piece = model.graph[key[0]].pieces[key[1]]
    assert scan_forms.form_of(key[0], piece, scan.axis, scan.lags) == form
    # The plan runs the log-semiring form, and keeps the general scan for a linear one
    # (scan_forms.strategy: measured faster there).
    assert scan.form == (form if form == scan_forms.SEMIRING else "")
    u = jnp.asarray(np.random.default_rng(2).uniform(-1.5, 1.5, (3, model.dim)))
    reference_value, reference_grad = _value_and_grad(_with_form(model, key, form=""), u)
    assert np.all(np.isfinite(reference_value))
    for parallel in (False, True):
        value, grad = _value_and_grad(_with_form(model, key, form=form, parallel=parallel), u)
        np.testing.assert_allclose(value, reference_value, rtol=1e-10)
        scale = np.max(np.abs(reference_grad), axis=1, keepdims=True)
        np.testing.assert_allclose(grad / scale, reference_grad / scale, rtol=1e-10,
                                   atol=1e-10)


NOT_LINEAR = {
    "quadratic": ("h[t] = a * h[t - 1] * h[t - 1] + e[t]",
                  lambda a, h, e: a * h * h + e),
    "reciprocal": ("h[t] = a / (1 + h[t - 1] ** 2) + e[t]",
                   lambda a, h, e: a / (1 + h ** 2) + e),
    "exp": ("h[t] = exp(a * h[t - 1]) / 3 + e[t]", lambda a, h, e: np.exp(a * h) / 3 + e),
    "through-a-call": ("h[t] = tanh(h[t - 1]) * a + e[t]", lambda a, h, e: np.tanh(h) * a + e),
    "read-in-coefficient": ("h[t] = (a + h[t - 1]) * h[t - 1] + e[t]",
                            lambda a, h, e: (a + h) * h + e),
}


@pytest.mark.parametrize("case", list(NOT_LINEAR))
def test_a_recurrence_of_no_associative_form_stays_sequential(case):
    """Nonlinear first-order recurrences: the plan keeps the general per-step scan, and the
    values are those of a NumPy loop."""
    statement, step = NOT_LINEAR[case]
    source = ("data T: int\na ~ Normal(0.3, 0.1)\ne: real[T] ~ Normal(0, 1)\nh[0] = e[0]\n"
              f"for t in range(1, T):\n    {statement}\ns ~ Normal(sum(h), 1)\n")
    model = pplc.compile(source).condition({"T": 12, "s": 0.0})
    scan = model.lowered.plan.scans[("h", 1)]
    assert scan.form == "" and not scan.parallel
    assert scan_forms.form_of("h", model.graph["h"].pieces[1], scan.axis, scan.lags) == ""
    e = np.random.default_rng(3).normal(0, 0.3, 12)
    expected = e.copy()
    for t in range(1, 12):
        expected[t] = step(0.3, expected[t - 1], e[t])
    values = model.constrain(model.unconstrain({"a": 0.3, "e": e}))
    np.testing.assert_allclose(values["h"], expected, rtol=1e-12)


NOT_SEMIRING = [
    "alpha[t, k] = logsumexp(alpha[t - 1] * c[:, k]) + d[t, k]",
    "alpha[t, k] = logsumexp(alpha[t - 1] + c[:, k]) * d[t, k]",
    "alpha[t, k] = logsumexp(alpha[t - 1] + c[:, k] + alpha[t - 1, k]) + d[t, k]",
    "alpha[t, k] = logsumexp(c[:, k] - alpha[t - 1]) + d[t, k]",
    "alpha[t, k] = -logsumexp(alpha[t - 1] + c[:, k]) + d[t, k]",
    "alpha[t, k] = logsumexp(alpha[t - 1, 0:1] + c[0:1, k]) + d[t, k]",
    "alpha[t, k] = sum(alpha[t - 1] + c[:, k]) + d[t, k]",
]


@pytest.mark.parametrize("statement", NOT_SEMIRING)
def test_near_misses_of_the_forward_algorithm_are_not_log_semiring(statement):
    from scipy.special import logsumexp

    source = ("data T: int\ndata c: real[2, 2]\ndata d: real[T, 2]\nb ~ Normal(0, 1)\n"
              "for k in range(2):\n    alpha[0, k] = d[0, k]\n"
              f"for t in range(1, T):\n    for k in range(2):\n        {statement}\n"
              "s ~ Normal(b + sum(alpha), 1)\n")
    rng = np.random.default_rng(4)
    c, d = rng.normal(0, 0.3, (2, 2)), rng.normal(0, 0.3, (6, 2))
    model = pplc.compile(source).condition({"T": 6, "c": c, "d": d, "s": 0.0})
    scan = model.lowered.plan.scans[("alpha", 1)]
    assert scan.form != scan_forms.SEMIRING
    steps = {0: lambda p, k, t: logsumexp(p * c[:, k]) + d[t, k],
             1: lambda p, k, t: logsumexp(p + c[:, k]) * d[t, k],
             2: lambda p, k, t: logsumexp(p + c[:, k] + p[k]) + d[t, k],
             3: lambda p, k, t: logsumexp(c[:, k] - p) + d[t, k],
             4: lambda p, k, t: -logsumexp(p + c[:, k]) + d[t, k],
             5: lambda p, k, t: logsumexp(p[0:1] + c[0:1, k]) + d[t, k],
             6: lambda p, k, t: np.sum(p + c[:, k]) + d[t, k]}[NOT_SEMIRING.index(statement)]
    expected = d.copy()
    for t in range(1, 6):
        expected[t] = [steps(expected[t - 1], k, t) for k in range(2)]
    values = model.constrain(model.unconstrain({"b": 0.0}))
    np.testing.assert_allclose(values["alpha"], expected, rtol=1e-12)


def test_garch_stays_a_general_sequential_scan():
    """posteriordb's garch11: sigma[t] = sqrt(... + beta1 * sigma[t - 1] ** 2) is not
    linear in sigma (it is in sigma ** 2, which the model does not carry)."""
    folder = CONFORMANCE / "garch-garch11"
    model = pplc.compile((folder / "model.ppl").read_text()).condition(str(folder / "data.json"))
    ((name, i), scan), = model.lowered.plan.scans.items()
    assert scan.form == "" and not scan.parallel
    assert scan_forms.form_of(name, model.graph[name].pieces[i], scan.axis, scan.lags) == ""


def test_an_integer_linear_recurrence_stays_exact():
    """Counts c[t, j] = c[t - 1, j] + y[j, t - 1] are linear (coefficient 1) in int64: the
    same integers sequentially and in parallel."""
    source = ("data J: int\ndata T: int\ndata y: int[J, T]\na ~ Normal(0, 1)\n"
              "for j in range(J):\n    c[0, j] = 5 + j\nfor t in range(1, T):\n"
              "    for j in range(J):\n        c[t, j] = c[t - 1, j] + y[j, t - 1]\n"
              "s ~ Normal(a + sum(c), 1)\n")
    y = np.random.default_rng(5).integers(0, 3, (4, 30))
    model = pplc.compile(source).condition({"J": 4, "T": 30, "y": y, "s": 1.0})
    expected = np.zeros((30, 4), int)
    expected[0] = 5 + np.arange(4)
    for t in range(1, 30):
        expected[t] = expected[t - 1] + y[:, t - 1]
    for parallel in (False, True):
        lowered = _with_form(model, ("c", 1), form=scan_forms.LINEAR, parallel=parallel)
        runtime = lowered.runtime_data()   # jitted: one program (eagerly ~20 per form)
        values = jax.jit(lambda u: lowered.constrain(u, runtime))(jnp.zeros(lowered.dim))
        np.testing.assert_array_equal(values["c"], expected)


def test_an_integer_array_is_truncated_at_every_step_as_the_general_scan_does():
    """c[0] = 4 makes c an int array: each step's value is truncated (4, 3, 2, 2, 2), so
    the coefficient 0.5 must not be cast to int (it would give 4, 1, 1, 1, 1), and a
    parallel run, which cannot truncate per step, is computed sequentially."""
    source = ("data T: int\nc[0] = 4\nfor t in range(1, T):\n    c[t] = c[t - 1] * 0.5 + 1\n"
              "s ~ Normal(sum(c), 1)\n")
    model = pplc.compile(source).condition({"T": 5})
    for parallel in (False, True):
        lowered = _with_form(model, ("c", 1), form=scan_forms.LINEAR, parallel=parallel)
        values = lowered.constrain(jnp.zeros(lowered.dim), lowered.runtime_data())
        np.testing.assert_array_equal(values["c"], [4, 3, 2, 2, 2])


def test_the_plan_shows_the_form_and_the_method():
    from pplc.backends.plan import loop_notes

    model = _hmm(HMM, T=8)
    (note,) = [n.message for n in loop_notes(model.lowered) if n.message.startswith("alpha")
               and "range(1, T)" in n.message]
    assert note.endswith("log-semiring matrix product recurrence, its coefficients computed "
                         "for every step at once, then a sequential scan")
    lowered = _with_form(model, ("alpha", 1), parallel=True)
    (note,) = [n.message for n in loop_notes(lowered) if "range(1, T)" in n.message]
    assert note.endswith("then a parallel prefix scan")
    lowered = _with_form(model, ("alpha", 1), form="", unroll=4)
    (note,) = [n.message for n in loop_notes(lowered) if "range(1, T)" in n.message]
    assert note.endswith("(lags 1), unrolled x4")


SWAPPED = """\
data T: int
data J: int
data K: int
data w: real[J, K]
a ~ Normal(0.5, 0.1)
e: real[T, J, K] ~ Normal(0, 1)
for j in range(J):
    for k in range(K):
        x[0, j, k] = e[0, j, k]
for k in range(K):
    for j in range(J):
        for t in range(1, T):
            x[t, j, k] = a * w[j, k] * x[t - 1, j, k] + e[t, j, k]
s ~ Normal(sum(x), 1)
"""


@pytest.mark.parametrize("parallel", [False, True], ids=["sequential", "parallel"])
def test_a_built_module_runs_the_form_the_plan_holds(parallel):
    """pplc build writes the form's parts and scan (codegen/recursions.py): the module's
    values equal NumPy's for a recurrence whose loops write the axes in another order
    than they nest, and its density equals the compiler's."""
    from pplc.backends.codegen import DISABLED_PASSES, generate_module

    rng = np.random.default_rng(6)
    w = rng.uniform(0.5, 1.5, (2, 3))
    data = {"T": 7, "J": 2, "K": 3, "w": w, "s": 0.5}
    model = pplc.compile(SWAPPED).condition(data, disabled_passes=DISABLED_PASSES)
    lowered = _with_form(model, ("x", 1), form=scan_forms.LINEAR, parallel=parallel)
    text = generate_module(model.graph, model.unoptimized_graph, lowered=lowered,
                           model_path="swapped.ppl", version="test")
    assert bool(re.search(r"linear_recurrence\(\s*x,(.|\n)*?True,\s*1\)", text)) == parallel
    namespace = {"__name__": "built"}
    exec(compile(text, "<built>", "exec"), namespace)
    e = rng.normal(size=(7, 2, 3))
    expected = e.copy()
    for t in range(1, 7):
        expected[t] = 0.4 * w * expected[t - 1] + e[t]
    # jitted, one program per function (eagerly, each operation compiled its own: 130)
    u = jax.jit(model.unconstrain)({"a": 0.4, "e": e})
    built_values = jax.jit(lambda u: namespace["constrain"](u, data))(u)
    np.testing.assert_allclose(built_values["x"], expected, rtol=1e-12)
    runtime = lowered.runtime_data()
    values = jax.jit(lambda u: lowered.constrain(u, runtime))(u)
    np.testing.assert_allclose(values["x"], expected, rtol=1e-12)
    np.testing.assert_allclose(
        jax.jit(lambda u: namespace["unconstrained_log_density"](u, data))(u),
        jax.jit(model.unconstrained_log_density)(u), rtol=1e-10)
