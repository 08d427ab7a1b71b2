"""Deterministic recurrences: a windowed scan for fixed lags, the whole array otherwise.

`h[t] = f(h[t - 1], h[t - 2], ...)` is lowered to a `lax.scan` that carries only the last
max-lag rows (O(T) per gradient); a read at a non-constant offset (`h[t // 2]`) carries the
whole array. Both must give the same values and gradients as a plain NumPy loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pplc
from dataclasses import replace

from pplc.backends.recurrence import Scan

TWO_LAGS = """\
data T: int
data K: int
a ~ Normal(0.5, 0.1)
b ~ Normal(-0.2, 0.1)
e: real[T, K] ~ Normal(0, 1)
for k in range(K):
    h[0, k] = e[0, k]
    h[1, k] = e[1, k] + a * h[0, k]
for t in range(2, T):
    for k in range(K):
        h[t, k] = a * h[t - 1, k] + b * h[t - 2, k] + e[t, k]
s ~ Normal(sum(h), 1)
"""

HALVING = """\
data T: int
c ~ Normal(0.5, 0.1)
e: real[T] ~ Normal(0, 1)
h[0] = e[0]
for t in range(1, T):
    h[t] = c * h[t // 2] + e[t]
s ~ Normal(sum(h), 1)
"""


def _numpy_two_lags(a, b, e):
    h = np.zeros_like(e)
    h[0] = e[0]
    h[1] = e[1] + a * h[0]
    for t in range(2, len(e)):
        h[t] = a * h[t - 1] + b * h[t - 2] + e[t]
    return h


def _values(model, params) -> dict:
    """model.constrain(model.unconstrain(params)) jitted, as the sampler computes values:
    one XLA program, where eagerly each operation of the recursion compiled its own."""
    return jax.jit(lambda params: model.constrain(model.unconstrain(params)))(params)


def _scans(model) -> dict:
    return dict(model.lowered.plan.scans)


def _with_scan(lowered, key, scan):
    """The lowered model with one piece's evaluation order replaced (a plan built by hand)."""
    plan = lowered.plan
    return replace(lowered, plan=replace(plan, scans={**plan.scans, key: scan}))


def _scan_carries(fn, u) -> list[tuple]:
    """The carry shapes of the scans in fn's traced program."""
    jaxpr = jax.make_jaxpr(fn)(u)
    shapes = []
    for eqn in jaxpr.jaxpr.eqns:
        if eqn.primitive.name == "scan":
            count = eqn.params["num_carry"]
            carried = eqn.params["jaxpr"].in_avals[eqn.params["num_consts"]:][:count]
            shapes += [tuple(a.shape) for a in carried]
    return shapes


def test_fixed_lags_use_the_window():
    model = pplc.compile(TWO_LAGS).condition({"T": 30, "K": 3, "s": 1.0})
    assert _scans(model) == {("h", 1): Scan(plate=None),   # reads only h[0, k]: at once
                             ("h", 2): Scan(plate=0, axis=0, lags=(1, 2))}
    rng = np.random.default_rng(0)
    e = rng.normal(size=(30, 3))
    values = _values(model, {"a": 0.4, "b": -0.3, "e": e})
    np.testing.assert_allclose(values["h"], _numpy_two_lags(0.4, -0.3, e), rtol=1e-12)


def test_every_strategy_gives_the_same_value_and_gradient():
    """The same recursion evaluated three ways, each plan built explicitly: a window of the
    last two rows, the whole array carried over the scan of t, and one element per step
    in dependency order. Their traced programs differ (asserted on the scans' carries)."""
    data = {"T": 40, "K": 2, "s": 3.0}
    model = pplc.compile(TWO_LAGS).condition(data)
    lowered, key = model.lowered, ("h", 2)
    order = np.array([(t, k) for t in range(2, 40) for k in range(2)])
    plans = {"window": _with_scan(lowered, key, Scan(plate=0, axis=0, lags=(1, 2))),
             "whole": _with_scan(lowered, key, Scan(plate=0)),
             "ordered": _with_scan(lowered, key, Scan(plate=None, order=order))}
    runtime = lowered.runtime_data()
    densities = {name: (lambda u, lm=lm: lm.log_density(u, runtime))
                 for name, lm in plans.items()}
    u0 = jnp.zeros(lowered.dim)
    assert (2, 2) in _scan_carries(densities["window"], u0)        # two rows of K
    assert (40, 2) in _scan_carries(densities["whole"], u0)        # the whole array
    assert (40, 2) in _scan_carries(densities["ordered"], u0)
    assert (2, 2) not in _scan_carries(densities["ordered"], u0)
    u = jnp.asarray(np.random.default_rng(1).uniform(-2, 2, (4, lowered.dim)))
    # Each strategy's value and gradient at the 4 points as one jitted program, as the
    # sampler runs a log density (run eagerly, each operation of the three scans and
    # their gradients compiled its own XLA program: 167).
    value_and_grad = {name: jax.jit(jax.vmap(jax.value_and_grad(f)))
                      for name, f in densities.items()}
    reference_value, reference_grad = value_and_grad["window"](u)
    for name in ("whole", "ordered"):
        value, grad = value_and_grad[name](u)
        np.testing.assert_allclose(value, reference_value, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(grad, reference_grad, rtol=1e-10, atol=1e-12,
                                   err_msg=name)


# ------------------------------------------------------------ recursions at any loop depth

COUNTS_T_INSIDE = """\
data J: int
data T: int
data y: int[J, T]
a ~ Normal(0, 1)
for j in range(J):
    c[0, j] = 5 + j
    for t in range(1, T):
        c[t, j] = c[t - 1, j] + y[j, t - 1]
s ~ Normal(a + sum(c), 1)
"""

COUNTS_T_OUTSIDE = """\
data J: int
data T: int
data y: int[J, T]
a ~ Normal(0, 1)
for j in range(J):
    c[0, j] = 5 + j
for t in range(1, T):
    for j in range(J):
        c[t, j] = c[t - 1, j] + y[j, t - 1]
s ~ Normal(a + sum(c), 1)
"""

# The recursion along the second axis (posteriordb's dogs writes its counts this way).
AVOID_SECOND_AXIS = """\
data J: int
data T: int
data y: int[J, T]
a ~ Normal(0, 1)
for j in range(J):
    n[j, 0] = 0
    for t in range(1, T):
        n[j, t] = n[j, t - 1] + 1 - y[j, t - 1]
s ~ Normal(a + sum(n), 1)
"""


def _numpy_counts(y):
    J, T = y.shape
    c = np.zeros((T, J), int)
    for j in range(J):
        c[0, j] = 5 + j
        for t in range(1, T):
            c[t, j] = c[t - 1, j] + y[j, t - 1]
    return c


def test_recursion_in_an_inner_loop_is_computed_not_read_as_zeros():
    """The silent wrong answer of issue 12: with the recursive loop inside another, every
    computed element read as 0 (c[:, 0] = 5 6 1 0 1 instead of 5 6 7 7 8)."""
    y = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]])
    model = pplc.compile(COUNTS_T_INSIDE).condition({"J": 2, "T": 5, "y": y, "s": 1.0})
    c = _values(model, {"a": 0.0})["c"]
    np.testing.assert_array_equal(np.asarray(c)[:, 0], [5, 6, 7, 7, 8])
    np.testing.assert_array_equal(c, _numpy_counts(y))


@pytest.mark.parametrize("source", [COUNTS_T_INSIDE, COUNTS_T_OUTSIDE, AVOID_SECOND_AXIS],
                         ids=["t-inside", "t-outside", "second-axis"])
def test_recursions_over_any_axis_and_loop_order_match_numpy(source):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (6, 30))
    model = pplc.compile(source).condition({"J": 6, "T": 30, "y": y, "s": 1.0})
    values = _values(model, {"a": 0.0})
    if "n[j, t]" in source:
        expected = np.zeros((6, 30), int)
        for j in range(6):
            for t in range(1, 30):
                expected[j, t] = expected[j, t - 1] + 1 - y[j, t - 1]
        np.testing.assert_array_equal(values["n"], expected)
    else:
        np.testing.assert_array_equal(values["c"], _numpy_counts(y))
    # Each is scanned over t with a window of one slice, whichever axis t writes.
    (scan,) = _scans(model).values()
    assert scan.lags == (1,) and model.graph[next(iter(_scans(model)))[0]] \
        .pieces[1].plates[scan.plate].index == "t"


DOGS = """\
data J: int
data T: int
data y: int[J, T]
beta0 ~ Normal(0, 2)
beta1 ~ Normal(0, 2)
beta2 ~ Normal(0, 2)
for j in range(J):
    n_avoid[j, 0] = 0
    n_shock[j, 0] = 0
    for t in range(1, T):
        n_avoid[j, t] = n_avoid[j, t - 1] + 1 - y[j, t - 1]
        n_shock[j, t] = n_shock[j, t - 1] + y[j, t - 1]
    for t in range(T):
        y[j, t] ~ Bernoulli(logits=beta0 + beta1 * n_avoid[j, t] + beta2 * n_shock[j, t])
"""


DOGS_SWAPPED = """\
data J: int
data T: int
data y: int[J, T]
beta0 ~ Normal(0, 2)
beta1 ~ Normal(0, 2)
beta2 ~ Normal(0, 2)
for j in range(J):
    n_avoid[j, 0] = 0
    n_shock[j, 0] = 0
for t in range(1, T):
    for j in range(J):
        n_avoid[j, t] = n_avoid[j, t - 1] + 1 - y[j, t - 1]
        n_shock[j, t] = n_shock[j, t - 1] + y[j, t - 1]
for j in range(J):
    for t in range(T):
        y[j, t] ~ Bernoulli(logits=beta0 + beta1 * n_avoid[j, t] + beta2 * n_shock[j, t])
"""


def test_dogs_density_matches_an_independent_numpy_reference():
    """posteriordb's dogs model as its authors write it: the log density (hence the
    posterior) equals one computed with NumPy loops and scipy at random points, and equals
    the model with the loops swapped."""
    from scipy import stats

    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, (8, 12))
    data = {"J": 8, "T": 12, "y": y}
    model = pplc.compile(DOGS).condition(data)
    swapped = pplc.compile(DOGS_SWAPPED).condition(data)

    def reference(b0, b1, b2):
        avoid, shock = np.zeros((8, 12)), np.zeros((8, 12))
        for j in range(8):
            for t in range(1, 12):
                avoid[j, t] = avoid[j, t - 1] + 1 - y[j, t - 1]
                shock[j, t] = shock[j, t - 1] + y[j, t - 1]
        p = 1 / (1 + np.exp(-(b0 + b1 * avoid + b2 * shock)))
        return (stats.bernoulli.logpmf(y, p).sum()
                + sum(stats.norm.logpdf(b, 0, 2) for b in (b0, b1, b2)))

    # log_density jitted (it takes tracers), one program per model for the 5 points; run
    # eagerly, each operation of both models compiled its own XLA program (114).
    densities = {"as written": jax.jit(model.log_density),
                 "swapped": jax.jit(swapped.log_density)}
    for b in rng.normal(0, 0.5, (5, 3)):
        params = dict(zip(["beta0", "beta1", "beta2"], b))
        expected = reference(*b)
        for name, density in densities.items():
            np.testing.assert_allclose(density(params), expected, rtol=1e-10, err_msg=name)


BACKWARD = """\
data T: int
h[T - 1] = 1.0
for t in range(T - 1):
    h[t] = h[t + 1] * 2
mu ~ Normal(sum(h), 1)
"""


def test_a_backward_recursion_is_computed_in_dependency_order():
    model = pplc.compile(BACKWARD).condition({"T": 6})
    values = _values(model, {"mu": 0.0})
    np.testing.assert_array_equal(values["h"], [32, 16, 8, 4, 2, 1])
    (scan,) = _scans(model).values()
    assert scan.plate is None and scan.order[:, 0].tolist() == [4, 3, 2, 1, 0]


def test_a_cycle_among_elements_is_refused_at_the_read():
    source = "data T: int\nh[0] = 1.0\nfor t in range(1, T):\n    h[t] = h[T - t] * 2\n" \
             "mu ~ Normal(sum(h), 1)\n"
    with pytest.raises(pplc.PplcError, match="not computed yet") as info:
        pplc.compile(source).condition({"T": 4})
    assert ":4:12:" in str(info.value)


@pytest.mark.parametrize("T", [2, 17])
def test_non_constant_offsets_carry_the_whole_array(T):
    model = pplc.compile(HALVING).condition({"T": T, "s": 0.0})
    # T = 2: h[1] reads only h[0], so it is computed at once; else the whole array is
    # carried (no window: the offsets are not constant).
    assert _scans(model)[("h", 1)] == (Scan(plate=None) if T == 2 else Scan(plate=0))
    e = np.random.default_rng(2).normal(size=T)
    expected = e.copy()
    for t in range(1, T):
        expected[t] = 0.7 * expected[t // 2] + e[t]
    values = _values(model, {"c": 0.7, "e": e})
    np.testing.assert_allclose(values["h"], expected, rtol=1e-12)


# ------------------------------------------------------------ arrays defined jointly

ARMA11 = """\
data T: int
data y: real[T]
mu ~ Normal(0, 10)
phi ~ Normal(0, 2)
theta ~ Normal(0, 2)
sigma ~ HalfCauchy(2.5)
nu[0] = mu + phi * mu
err[0] = y[0] - nu[0]
for t in range(1, T):
    nu[t] = mu + phi * y[t - 1] + theta * err[t - 1]
    err[t] = y[t] - nu[t]
for t in range(T):
    factor -0.5 * (err[t] / sigma) ** 2 - log(sigma)
"""


def _numpy_arma(mu, phi, theta, y):
    nu, err = np.zeros_like(y), np.zeros_like(y)
    nu[0] = mu + phi * mu
    err[0] = y[0] - nu[0]
    for t in range(1, len(y)):
        nu[t] = mu + phi * y[t - 1] + theta * err[t - 1]
        err[t] = y[t] - nu[t]
    return nu, err


def test_arma_arrays_reading_each_other_are_scanned_jointly():
    """posteriordb's arma11 as Stan users write it: nu and err in one loop, each reading
    the other's elements (a cycle between the variables, none between the elements)."""
    from scipy import stats

    y = np.random.default_rng(6).normal(size=20).cumsum() * 0.3
    model = pplc.compile(ARMA11).condition({"T": 20, "y": y})
    stage = model.lowered.groups["nu"].stages[-1]
    assert stage.joint and stage.pieces == (("nu", 1), ("err", 1))
    rng = np.random.default_rng(7)
    # jitted, one program each for the 4 points (eagerly, each operation compiled its own)
    values_of = jax.jit(lambda params: model.constrain(model.unconstrain(params)))
    log_density = jax.jit(model.log_density)
    for mu, phi, theta, log_sigma in rng.normal(0, 0.5, (4, 4)):
        sigma = np.exp(log_sigma)
        params = {"mu": mu, "phi": phi, "theta": theta, "sigma": sigma}
        values = values_of(params)
        nu, err = _numpy_arma(mu, phi, theta, y)
        np.testing.assert_allclose(values["nu"], nu, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(values["err"], err, rtol=1e-12, atol=1e-12)
        expected = (stats.norm(0, sigma).logpdf(err).sum() + 20 * 0.5 * np.log(2 * np.pi)
                    + stats.norm(0, 10).logpdf(mu) + stats.norm(0, 2).logpdf([phi, theta]).sum()
                    + stats.halfcauchy(0, 2.5).logpdf(sigma))
        np.testing.assert_allclose(log_density(params), expected, rtol=1e-10)
    grad = jax.jit(jax.grad(model.unconstrained_log_density))(jnp.zeros(model.dim))
    assert np.all(np.isfinite(grad))


THREE_ARRAYS = """\
data T: int
data x: real[T]
a ~ Normal(0, 1)
p[0] = 1.0
q[0] = 0.0
r[0] = x[0]
for t in range(1, T):
    q[t] = a * p[t - 1] + r[t - 1]
    r[t] = q[t] * 0.5 + x[t]
    p[t] = r[t] - q[t - 1]
s ~ Normal(sum(p) + sum(q) + sum(r), 1)
"""


def test_three_arrays_in_one_recurrence_match_numpy():
    """Three arrays in one loop; within a step r reads q[t] and p reads r[t], so each
    step computes q, then r, then p (not the order of the names)."""
    x = np.random.default_rng(8).normal(size=9)
    model = pplc.compile(THREE_ARRAYS).condition({"T": 9, "x": x, "s": 0.5})
    values = _values(model, {"a": 0.7})
    p, q, r = np.zeros(9), np.zeros(9), np.zeros(9)
    p[0], q[0], r[0] = 1.0, 0.0, x[0]
    for t in range(1, 9):
        q[t] = 0.7 * p[t - 1] + r[t - 1]
        r[t] = q[t] * 0.5 + x[t]
        p[t] = r[t] - q[t - 1]
    for name, expected in {"p": p, "q": q, "r": r}.items():
        np.testing.assert_allclose(values[name], expected, rtol=1e-12, atol=1e-12)
    assert model.lowered.groups["p"].stages[-1].pieces == (("q", 1), ("r", 1), ("p", 1))


def test_arrays_computed_jointly_have_no_forward_prior_simulation():
    """The variables' dependencies have a cycle (one without one among their elements):
    forward simulation says so instead of drawing nothing."""
    model = pplc.compile(THREE_ARRAYS).condition({"T": 4, "x": np.zeros(4), "s": 0.5})
    with pytest.raises(pplc.PplcError, match="dependencies have a cycle"):
        model.prior_predictive(draws=2)


def test_arrays_that_read_each_other_at_the_same_step_are_refused():
    source = "data T: int\na ~ Normal(0, 1)\nu[0] = 0.0\nv[0] = 0.0\n" \
             "for t in range(1, T):\n    u[t] = v[t] + a\n    v[t] = u[t] * 2\n" \
             "s ~ Normal(sum(u) + sum(v), 1)\n"
    with pytest.raises(pplc.PplcError, match="in terms of each other's elements"):
        pplc.compile(source).condition({"T": 4, "s": 0.0})


def test_a_cycle_through_a_whole_value_is_still_refused():
    source = "a ~ Normal(0, 1)\nb = c + a\nc = b * 2\ns ~ Normal(c, 1)\n"
    with pytest.raises(pplc.PplcError, match="cycle: b -> c -> b"):
        pplc.compile(source)
