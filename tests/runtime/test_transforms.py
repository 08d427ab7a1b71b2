"""Constraint transforms: bijection, range, log-Jacobian against autodiff and finite
differences, differentiability in traced bounds (one table of cases, one test per property).

Tolerances come from conditioning, not guesses: recovering u from x = forward(u) loses
|dx| / |dx/du| where |dx| is a few ulps of the largest magnitude involved (x or a bound),
so near a bound, where dx/du is tiny, u is only as good as that ratio allows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pplc.runtime import distributions as D
from pplc.runtime.transforms import transform_for
from pplc.frontend import library

EPS = np.finfo(np.float64).eps
U = jnp.linspace(-30.0, 30.0, 121)[:, None]  # broadcasts against bounds of shape (3,)

# id, kind, lower, upper
CASES = [
    ("real", "real", None, None),
    ("positive", "positive", None, None),
    ("unit", "unit", None, None),
    ("interval-none", "interval", None, None),
    ("interval-lower", "interval", -2.0, None),
    ("interval-upper", "interval", None, 3.0),
    ("interval-both", "interval", 1.0, 4.0),
    ("interval-lower-array", "interval", jnp.array([0.0, -5.0, 10.0]), None),
    ("interval-upper-array", "interval", None, jnp.array([0.0, -5.0, 10.0])),
    ("interval-both-array", "interval", jnp.array([-1.0, 0.0, 100.0]),
     jnp.array([1.0, 1e-3, 101.0])),
    ("interval-infinite-lower", "interval", -np.inf, 3.0),
]
CASE_PARAMS = [pytest.param(*c[1:], id=c[0]) for c in CASES]


def _bounds(kind, lower, upper):
    """The support's bounds as numbers (kinds other than interval have fixed ones)."""
    return {"positive": (0.0, None), "unit": (0.0, 1.0)}.get(kind, (lower, upper))


def _scale(x, lower, upper):
    """The magnitude whose ulps limit x's accuracy: |x|, the finite bounds, or 1."""
    scale = jnp.maximum(jnp.abs(x), 1.0)
    for bound in (lower, upper):
        if bound is not None and np.all(np.isfinite(bound)):
            scale = jnp.maximum(scale, jnp.abs(bound))
    return scale


@pytest.mark.parametrize("kind, lower, upper", CASE_PARAMS)
def test_forward_lands_strictly_inside(kind, lower, upper):
    x = transform_for(kind, lower, upper).forward(U)
    lo, hi = _bounds(kind, lower, upper)
    assert np.all(np.isfinite(x))
    if lo is not None:
        assert np.all(x > lo)
    if hi is not None:
        assert np.all(x < hi)


@pytest.mark.parametrize("kind, lower, upper", CASE_PARAMS)
def test_inverse_undoes_forward(kind, lower, upper):
    t = transform_for(kind, lower, upper)
    x = t.forward(U)
    jacobian = jnp.exp(t.log_abs_det_jacobian(U))
    tol = 8 * EPS * (_scale(x, *_bounds(kind, lower, upper)) / jacobian + jnp.abs(U) + 1)
    assert np.all(np.abs(t.inverse(x) - U) <= tol)


@pytest.mark.parametrize("kind, lower, upper", CASE_PARAMS)
def test_log_jacobian_matches_autodiff(kind, lower, upper):
    """forward is elementwise, so a JVP with tangent 1 is the Jacobian's diagonal."""
    t = transform_for(kind, lower, upper)
    x, dx_du = jax.jvp(t.forward, (U,), (jnp.ones_like(U),))
    ladj = t.log_abs_det_jacobian(U)
    assert ladj.shape == x.shape
    np.testing.assert_allclose(ladj, np.log(np.abs(dx_du)), rtol=1e-12, atol=1e-12)


def test_log_jacobian_matches_finite_differences():
    """Central differences with h = 1e-5: truncation h^2 f'''/f' ~ 1e-10 and rounding
    eps |x| / h ~ 1e-11, relative to the derivative, so 1e-7 leaves a wide margin."""
    t = transform_for("interval", jnp.array([-1.0, 2.0]), jnp.array([3.0, 2.5]))
    u = jnp.linspace(-3.0, 3.0, 13)[:, None]
    h = 1e-5
    fd = (t.forward(u + h) - t.forward(u - h)) / (2 * h)
    np.testing.assert_allclose(np.exp(t.log_abs_det_jacobian(u)), np.abs(fd), rtol=1e-7)


def _finite(bound) -> bool:
    return bound is not None and bool(np.all(np.isfinite(bound)))


@pytest.mark.parametrize("kind, lower, upper", [pytest.param(*c[1:], id=c[0]) for c in CASES
                                                if _finite(c[2]) or _finite(c[3])])
def test_gradients_in_bounds_are_finite(kind, lower, upper):
    def total(lower, upper):
        t = transform_for(kind, lower, upper)
        x = t.forward(U)
        return jnp.sum(x + t.log_abs_det_jacobian(U)) + jnp.sum(t.inverse(x))

    # Finite bounds become arrays to differentiate; None and -inf stay Python values.
    args = [jnp.asarray(b, dtype=float) if _finite(b) else b for b in (lower, upper)]
    for i, bound in enumerate((lower, upper)):
        if _finite(bound):
            assert np.all(np.isfinite(jax.grad(total, argnums=i)(*args)))


def test_bound_depending_on_another_variable():
    """b ~ Uniform(0, 1 - a): x = (1 - a) sigmoid(u), so dx/da = -sigmoid(u), and the
    log-Jacobian log(1 - a) + ... has d/da = -1 / (1 - a)."""
    u = jnp.array([-3.0, 0.0, 2.0, 35.0])

    def forward(a):
        return transform_for("interval", 0.0, 1.0 - a).forward(u)

    def ladj(a):
        return transform_for("interval", 0.0, 1.0 - a).log_abs_det_jacobian(u)

    a = 0.3
    np.testing.assert_allclose(jax.jacfwd(forward)(a), -jax.nn.sigmoid(u), rtol=1e-12)
    np.testing.assert_allclose(jax.jacfwd(ladj)(a), np.full(4, -1 / (1 - a)), rtol=1e-12)


def test_interval_keeps_precision_near_upper_bound():
    """On (-1, 0) at u = 40 the naive lower + w sigmoid(u) is -1 + 1 = 0, exactly the upper
    bound; measuring from the nearer bound gives x = -sigmoid(-40) ~ -4e-18, still inside."""
    x = transform_for("interval", -1.0, 0.0).forward(40.0)
    assert x < 0.0
    np.testing.assert_allclose(-x, jax.nn.sigmoid(-40.0), rtol=1e-15)


@settings(deadline=None, max_examples=50)
@given(lower=st.floats(-1e3, 1e3), width=st.floats(1e-3, 1e3),
       t=st.floats(1e-3, 1 - 1e-3), side=st.sampled_from(["both", "lower", "upper"]))
def test_round_trip_from_constrained_side(lower, width, t, side):
    """forward(inverse(x)) = x; x's error is a few ulps of the largest magnitude involved."""
    upper = lower + width
    x = lower + width * t
    bounds = {"both": (lower, upper), "lower": (lower, None), "upper": (None, upper)}[side]
    tr = transform_for("interval", *bounds)
    back = tr.forward(tr.inverse(jnp.asarray(x)))
    scale = max(abs(x), abs(lower), abs(upper), 1.0)
    assert abs(float(back) - x) <= 16 * EPS * scale


@pytest.mark.parametrize("name", [n for n, i in library.DISTRIBUTIONS.items()
                                  if not i.discrete and getattr(i, "event_ndim", 0) == 0
                                  and not getattr(i, "wrapper", False)])
def test_support_transform_lands_where_log_prob_is_finite(name):
    """distributions.support_bounds + transform_for cover each continuous scalar support
    (event supports: the next test)."""
    info = library.DISTRIBUTIONS[name]
    params = {p: 2.0 for p in info.signatures[0]}
    params.update({"low": -1.0, "high": 2.5} if name == "Uniform" else {})
    t = transform_for(info.support.kind, *D.support_bounds(info, params))
    x = t.forward(jnp.linspace(-20.0, 20.0, 41))
    assert np.all(np.isfinite(D.get(name).log_prob(x, **params)))


@pytest.mark.parametrize("name, params", [
    ("Dirichlet", {"concentration": jnp.array([0.5, 2.0, 3.0])}),
    ("LKJCholesky", {"dim": 3, "concentration": 2.0}),
])
def test_event_support_transform_lands_where_log_prob_is_finite(name, params):
    """The transform of an event support (simplex, corr_cholesky) maps u, batched, to values
    where the distribution's log_prob is finite."""
    if name not in library.DISTRIBUTIONS:
        pytest.skip(f"{name} is not in the library")
    info = library.DISTRIBUTIONS[name]
    t = transform_for(info.support.kind)
    event = (3,) if t.event_ndim == 1 else (3, 3)
    u = jnp.asarray(np.random.default_rng(0).normal(scale=3.0, size=t.unconstrained_shape(
        (5,) + event)))
    # jitted, as a log density runs them: one program (eagerly, each operation of the
    # transform and the density compiled its own: 100 for the two cases, 3.0 CPU-s)
    x, log_prob = jax.jit(lambda u: (t.forward(u), D.get(name).log_prob(t.forward(u),
                                                                        **params)))(u)
    assert x.shape == (5,) + event
    assert np.all(np.isfinite(log_prob))


@pytest.mark.parametrize("kind", ["nonnegative_int", "boolean", "int_interval", "matrix"])
def test_no_transform_for_discrete_or_unknown_kinds(kind):
    with pytest.raises(ValueError):
        transform_for(kind)


def test_bounds_only_for_interval():
    with pytest.raises(ValueError):
        transform_for("positive", lower=1.0)
