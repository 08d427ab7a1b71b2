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
import pplc.backends.lower as lower

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


def test_fixed_lags_use_the_window():
    model = pplc.compile(TWO_LAGS).condition({"T": 30, "K": 3, "s": 1.0})
    variable = model.graph["h"]
    piece = variable.pieces[-1]
    info = model.lowered.pieces[("h", len(variable.pieces) - 1)]
    assert lower._fixed_lags("h", piece, info.ranges, (30, 3)) == {1, 2}
    rng = np.random.default_rng(0)
    e = rng.normal(size=(30, 3))
    values = model.constrain(model.unconstrain({"a": 0.4, "b": -0.3, "e": e}))
    np.testing.assert_allclose(values["h"], _numpy_two_lags(0.4, -0.3, e), rtol=1e-12)


def test_window_and_whole_array_agree_in_value_and_gradient(monkeypatch):
    data = {"T": 40, "K": 2, "s": 3.0}
    windowed = pplc.compile(TWO_LAGS).condition(data)
    monkeypatch.setattr(lower, "_fixed_lags", lambda *args: set())
    whole = pplc.compile(TWO_LAGS).condition(data)
    u = jnp.asarray(np.random.default_rng(1).uniform(-2, 2, (4, windowed.dim)))
    for f, g in [(windowed.unconstrained_log_density, whole.unconstrained_log_density)]:
        np.testing.assert_allclose(jax.vmap(f)(u), jax.vmap(g)(u), rtol=1e-12)
        np.testing.assert_allclose(jax.vmap(jax.grad(f))(u), jax.vmap(jax.grad(g))(u),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("T", [2, 17])
def test_non_constant_offsets_carry_the_whole_array(T):
    model = pplc.compile(HALVING).condition({"T": T, "s": 0.0})
    piece = model.graph["h"].pieces[-1]
    info = model.lowered.pieces[("h", 1)]
    assert lower._fixed_lags("h", piece, info.ranges, (T,)) == set()
    e = np.random.default_rng(2).normal(size=T)
    expected = e.copy()
    for t in range(1, T):
        expected[t] = 0.7 * expected[t // 2] + e[t]
    values = model.constrain(model.unconstrain({"c": 0.7, "e": e}))
    np.testing.assert_allclose(values["h"], expected, rtol=1e-12)
