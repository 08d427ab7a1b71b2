"""Constraint transforms that are not elementwise (simplex, ordered, positive_ordered,
corr_cholesky, cov): the set is hit, the bijection round-trips, the log-Jacobian equals
log|det| of the autodiff Jacobian over the free coordinates, NumPyro's transforms agree
where they are the same bijection, and a density moved to the unconstrained space through
the transform samples the right moments (a short NumPyro NUTS run, independent of pplc's).

Tolerances: round trips lose a few ulps times the conditioning of the inverse (for cov, the
condition number of the matrix, which Cholesky inherits); log-Jacobians are sums of O(K^2)
terms of size O(|u|), so 1e-8 leaves orders of magnitude to spare; moments are checked to
5 MCSE with the ESS estimated from the draws.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pplc.runtime.transforms import VECTOR_KINDS, transform_for

EPS = np.finfo(np.float64).eps

# id, kind, constrained event shape
CASES = [
    ("simplex-1", "simplex", (1,)),
    ("simplex-2", "simplex", (2,)),
    ("simplex-5", "simplex", (5,)),
    ("ordered-1", "ordered", (1,)),
    ("ordered-5", "ordered", (5,)),
    ("positive_ordered-5", "positive_ordered", (5,)),
    ("corr_cholesky-2", "corr_cholesky", (2, 2)),
    ("corr_cholesky-4", "corr_cholesky", (4, 4)),
    ("cov-1", "cov", (1, 1)),
    ("cov-3", "cov", (3, 3)),
]
CASE_PARAMS = [pytest.param(*c[1:], id=c[0]) for c in CASES]
BATCH = (3,)

# The widest spread of u (standard deviation; 50 events) at which forward's value must
# still be in the set in float64. Exact arithmetic puts it there for every u, but:
# ordered steps exp(u_k) vanish next to |x| once exp(u_k) < eps |x| (|u| ~ 18 with 5
# entries); cov's Cholesky needs cond(x) < 1/eps, and cond(x) >= exp(2 (max u_kk - min u_kk)).
WIDE_SCALE = {"simplex": 30.0, "ordered": 4.0, "positive_ordered": 4.0,
              "corr_cholesky": 30.0, "cov": 3.0}


def _u(kind, event_shape, batch=BATCH, scale=1.0, seed=0):
    shape = transform_for(kind).unconstrained_shape(batch + event_shape)
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal(shape))


def _assert_in_set(kind, x):
    """x (a batch of events) lies in the constrained set, to rounding."""
    x = np.asarray(x)
    assert np.all(np.isfinite(x))
    if kind == "simplex":
        assert np.all(x >= 0)
        np.testing.assert_allclose(x.sum(-1), 1.0, rtol=0, atol=x.shape[-1] * 4 * EPS)
    elif kind in ("ordered", "positive_ordered"):
        assert np.all(np.diff(x, axis=-1) > 0)
        if kind == "positive_ordered":
            assert np.all(x > 0)
    elif kind == "corr_cholesky":
        k = x.shape[-1]
        assert np.all(x[..., np.triu_indices(k, 1)[0], np.triu_indices(k, 1)[1]] == 0)
        assert np.all(np.diagonal(x, axis1=-2, axis2=-1) > 0)
        np.testing.assert_allclose(np.sum(x ** 2, axis=-1), 1.0, rtol=0, atol=k * 4 * EPS)
    elif kind == "cov":
        np.testing.assert_array_equal(x, np.swapaxes(x, -2, -1))
        np.linalg.cholesky(x)  # raises LinAlgError unless positive definite
    else:
        raise AssertionError(kind)


def _free_coordinates(kind, x):
    """The coordinates of x that the unconstrained vector determines freely."""
    if kind == "simplex":
        return x[..., :-1]
    if kind in ("ordered", "positive_ordered"):
        return x
    k = x.shape[-1]
    rows, cols = np.tril_indices(k, -1 if kind == "corr_cholesky" else 0)
    return x[..., rows, cols]


def _sample_constrained(kind, event_shape, seed=1):
    """Points of the set drawn independently of the transform."""
    rng = np.random.default_rng(seed)
    k = event_shape[-1]
    if kind == "simplex":
        return jnp.asarray(rng.dirichlet(np.full(k, 0.7), size=BATCH))
    if kind == "ordered":
        return jnp.asarray(np.sort(5 * rng.standard_normal(BATCH + (k,)), axis=-1))
    if kind == "positive_ordered":
        return jnp.asarray(np.sort(rng.exponential(2.0, BATCH + (k,)), axis=-1))
    w = rng.standard_normal(BATCH + (k, k + 2))
    cov = w @ np.swapaxes(w, -2, -1)
    if kind == "cov":
        return jnp.asarray(cov)
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    return jnp.asarray(np.linalg.cholesky(cov / sd[..., :, None] / sd[..., None, :]))


# --- API ---------------------------------------------------------------------------------

def test_unconstrained_shapes_and_event_ranks():
    expect = {"simplex": ((2, 5), (2, 4), 1), "ordered": ((2, 5), (2, 5), 1),
              "positive_ordered": ((5,), (5,), 1), "corr_cholesky": ((2, 3, 4, 4), (2, 3, 6), 2),
              "cov": ((4, 4), (10,), 2)}
    assert set(expect) == set(VECTOR_KINDS)
    for kind, (shape, u_shape, ndim) in expect.items():
        t = transform_for(kind)
        assert t.unconstrained_shape(shape) == u_shape
        assert t.event_ndim == ndim
        # the shape forward gives, traced without compiling (run eagerly, each of its
        # operations compiled an XLA program: 42 in all)
        assert jax.eval_shape(t.forward, jax.ShapeDtypeStruct(u_shape, jnp.float64)).shape \
            == shape


def test_elementwise_kinds_keep_their_defaults():
    t = transform_for("interval", 0.0, 1.0)
    assert t.event_ndim == 0 and t.unconstrained_shape((2, 3)) == (2, 3)
    assert float(t.forward(0.0)) == 0.5 and float(t.log_abs_det_jacobian(0.0)) == -2 * np.log(2)


@pytest.mark.parametrize("kind", VECTOR_KINDS)
def test_vector_kinds_take_no_bounds(kind):
    with pytest.raises(ValueError):
        transform_for(kind, lower=0.0)


@pytest.mark.parametrize("kind, n", [("corr_cholesky", 4), ("cov", 5)])
def test_non_triangular_length_is_rejected(kind, n):
    with pytest.raises(ValueError):
        transform_for(kind).forward(jnp.zeros(n))


def test_zero_maps_to_the_centre():
    """u = 0 is the uniform simplex (the log(K - k) offset) and the identity matrices."""
    np.testing.assert_allclose(transform_for("simplex").forward(jnp.zeros(4)), np.full(5, 0.2),
                               rtol=4 * EPS)
    np.testing.assert_array_equal(transform_for("corr_cholesky").forward(jnp.zeros(6)), np.eye(4))
    np.testing.assert_array_equal(transform_for("cov").forward(jnp.zeros(6)), np.eye(3))


# --- set, bijection ----------------------------------------------------------------------
#
# Most tests below run the transforms jitted, as pplc's log density runs them: one XLA
# program per kind and shape (_forward_and_gradient, _compiled_at_points), shared by the
# tests that read the same points. Run eagerly, every operation compiled its own program
# for each new shape (some 950 programs in these tests: benchmarks/suite_time.md).
# test_batch_is_event_by_event_and_jit_agrees keeps the eager path checked against jit.


@functools.lru_cache(maxsize=None)
def _forward_and_gradient(kind):
    """forward(u), log|det J(u)| and the gradient HMC takes of their sums: one jitted
    function per kind, which jit compiles once per shape."""
    t = transform_for(kind)

    def run(u):
        grad = jax.grad(lambda v: jnp.sum(t.log_abs_det_jacobian(v)) + jnp.sum(t.forward(v)))
        return t.forward(u), t.log_abs_det_jacobian(u), grad(u)
    return jax.jit(run)


@pytest.mark.parametrize("kind, event_shape", CASE_PARAMS)
@pytest.mark.parametrize("scale", [0.1, 1.0, "wide"])
def test_forward_lands_in_set(kind, event_shape, scale):
    scale = WIDE_SCALE[kind] if scale == "wide" else scale
    u = _u(kind, event_shape, batch=(50,), scale=scale)
    x, ladj, _ = _forward_and_gradient(kind)(u)
    _assert_in_set(kind, x)
    assert np.all(np.isfinite(ladj))


@pytest.mark.parametrize("kind, event_shape", CASE_PARAMS)
def test_gradients_are_finite_over_wide_range(kind, event_shape):
    """HMC differentiates log p(forward(u)) + log|J(u)|; both terms' gradients stay finite."""
    u = _u(kind, event_shape, batch=(50,), scale=WIDE_SCALE[kind])
    _, _, grad = _forward_and_gradient(kind)(u)
    assert grad.shape == u.shape
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize("kind, event_shape", CASE_PARAMS)
def test_inverse_undoes_forward(kind, event_shape):
    u = _u(kind, event_shape)
    x, back, _, _ = _compiled_at_points(kind, u.shape)(u)
    # Recovering u costs eps times the inverse's conditioning: O(1) except for cov, where
    # Cholesky's relative error is eps cond(x).
    cond = np.linalg.cond(np.asarray(x))[..., None] if kind == "cov" else 1.0
    tol = 32 * EPS * cond * (1 + np.abs(u))
    assert np.all(np.abs(back - u) <= tol)


@pytest.mark.parametrize("kind, event_shape", CASE_PARAMS)
def test_forward_undoes_inverse(kind, event_shape):
    t = transform_for(kind)
    x = _sample_constrained(kind, event_shape)
    scale = np.max(np.abs(np.asarray(x)), axis=tuple(range(1, x.ndim)), keepdims=True)
    back = jax.jit(lambda x: t.forward(t.inverse(x)))(x)
    assert np.all(np.abs(back - x) <= 32 * EPS * (1 + scale))


@pytest.mark.parametrize("kind, event_shape", CASE_PARAMS)
def test_batch_is_event_by_event_and_jit_agrees(kind, event_shape):
    t = transform_for(kind)
    u = _u(kind, event_shape, batch=(2, 3))
    x, ladj = t.forward(u), t.log_abs_det_jacobian(u)
    assert x.shape == (2, 3) + event_shape and ladj.shape == (2, 3)
    for i in np.ndindex(2, 3):
        np.testing.assert_array_equal(x[i], t.forward(u[i]))
        np.testing.assert_allclose(ladj[i], t.log_abs_det_jacobian(u[i]), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(jax.jit(t.forward)(u), x, rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(jax.jit(t.log_abs_det_jacobian)(u), ladj, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(jax.jit(t.inverse)(x), t.inverse(x), rtol=1e-12, atol=1e-12)


# --- log-Jacobian ------------------------------------------------------------------------

@pytest.mark.parametrize("kind, event_shape", CASE_PARAMS)
@pytest.mark.parametrize("scale", [0.3, 2.0])
def test_log_jacobian_matches_autodiff_determinant(kind, event_shape, scale):
    """log|det J| equals that of u -> free coordinates of forward(u), J from jax.jacfwd
    per event."""
    u = _u(kind, event_shape, scale=scale, seed=2)
    _, _, ladj, jac = _compiled_at_points(kind, u.shape)(u)
    for i in range(BATCH[0]):
        if u.shape[-1]:
            assert jac[i].shape == (u.shape[-1],) * 2
            np.testing.assert_allclose(ladj[i], np.linalg.slogdet(np.asarray(jac[i]))[1],
                                       rtol=0, atol=1e-8)
        else:   # simplex-1: no free coordinate; J is 0 x 0, of determinant 1
            assert ladj[i] == 0


@functools.lru_cache(maxsize=None)
def _compiled_at_points(kind, u_shape):
    """forward, inverse of forward, log|det J| and autodiff's Jacobian of u -> free
    coordinates (one per event), as one jitted program per kind and shape. Hypothesis
    draws 30 points over some 25 (kind, size) pairs; run eagerly, every operation of
    forward, inverse and jacfwd compiled its own XLA program for each new shape (544
    programs, a quarter of this file's CPU time: benchmarks/suite_time.md). Jitted, the
    same properties are checked at the same points with one program per pair; pplc runs
    the transforms under jit too, and test_batch_is_event_by_event_and_jit_agrees keeps
    the eager path checked against the jitted one. The parametrized tests of the
    inverse, the log-Jacobian and NumPyro's transforms read the same program at their
    batch of 3 events."""
    t = transform_for(kind)

    def free(v):
        return _free_coordinates(kind, t.forward(v))

    def at(u):
        x = t.forward(u)
        jac = jax.vmap(jax.jacfwd(free))(u) if u_shape[-1] else jnp.zeros(u_shape[:1])
        return x, t.inverse(x), t.log_abs_det_jacobian(u), jac
    return jax.jit(at)


@settings(deadline=None, max_examples=30)
@given(data=st.data(), kind=st.sampled_from(VECTOR_KINDS), k=st.integers(1, 5))
def test_properties_at_random_points(data, kind, k):
    """forward lands in the set, inverse undoes it, and log|det J| is autodiff's (all
    computed by one jitted program per kind and size: _compiled_at_points)."""
    if kind == "cov":
        k = min(k, 4)
    t = transform_for(kind)
    event = (k, k) if kind in ("corr_cholesky", "cov") else (k,)
    bound = 3.0 if kind == "cov" else 8.0  # see WIDE_SCALE
    u = data.draw(hnp.arrays(np.float64, t.unconstrained_shape((2,) + event),
                             elements=st.floats(-bound, bound)))
    x, back, ladj, jac = _compiled_at_points(kind, u.shape)(jnp.asarray(u))
    _assert_in_set(kind, x)
    # |du| ~ eps |x| / |dx/du|: at |u| = 8 tanh and the stick pieces flatten by ~e^-16, so
    # the inverse keeps about half the digits; cov is limited by cond(x) instead.
    cond = np.linalg.cond(np.asarray(x))[..., None] if kind == "cov" else np.exp(2 * bound)
    assert np.all(np.abs(back - u) <= 64 * EPS * cond * (1 + np.abs(u)))
    for i in range(2):
        if u.shape[-1]:
            assert jac[i].shape == (u.shape[-1],) * 2
            np.testing.assert_allclose(ladj[i], np.linalg.slogdet(np.asarray(jac[i]))[1],
                                       rtol=0, atol=1e-8)
        else:
            assert ladj[i] == 0


# --- NumPyro, where the bijection is the same --------------------------------------------

def _numpyro_transform(kind):
    from numpyro.distributions import constraints
    from numpyro.distributions.transforms import biject_to
    constraint = {"simplex": constraints.simplex, "ordered": constraints.ordered_vector,
                  "corr_cholesky": constraints.corr_cholesky,
                  "cov": constraints.positive_definite}[kind]
    return biject_to(constraint)


def _to_numpyro_order(kind, u):
    """NumPyro's positive_definite takes the strictly-lower entries first, the diagonal last;
    pplc (as Stan) goes row by row with the diagonal in place."""
    if kind != "cov":
        return u
    k = (int(np.sqrt(8 * u.shape[-1] + 1)) - 1) // 2  # u.shape[-1] = K(K+1)/2
    rows, cols = np.tril_indices(k)
    order = np.concatenate([np.flatnonzero(rows != cols), np.flatnonzero(rows == cols)])
    return u[..., order]


@pytest.mark.parametrize("kind, event_shape", [pytest.param(*c[1:], id=c[0]) for c in CASES
                                               if c[1] != "positive_ordered"])
def test_matches_numpyro(kind, event_shape):
    """positive_ordered is left out: NumPyro's is exp(ordered(u)), not Stan's cumsum(exp u)."""
    ref = _numpyro_transform(kind)
    u = _u(kind, event_shape, scale=1.5, seed=3)
    u_ref = _to_numpyro_order(kind, u)
    x, back, ladj, _ = _compiled_at_points(kind, u.shape)(u)   # pplc's, jitted
    x_ref, ladj_ref, back_ref = jax.jit(     # NumPyro's, jitted too: one program
        lambda v: (ref(v), ref.log_abs_det_jacobian(v, ref(v)), ref.inv(ref(v))))(u_ref)
    np.testing.assert_allclose(x, x_ref, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ladj, ladj_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(back, u, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(_to_numpyro_order(kind, back), back_ref, rtol=1e-9, atol=1e-10)


def test_positive_ordered_is_stans():
    """x = cumsum(exp(u)), written out for one vector."""
    u = np.array([-1.0, 0.5, 2.0, -3.0])
    x = np.cumsum(np.exp(u))
    t = transform_for("positive_ordered")
    np.testing.assert_allclose(t.forward(jnp.asarray(u)), x, rtol=1e-15)
    np.testing.assert_allclose(t.log_abs_det_jacobian(jnp.asarray(u)), u.sum(), rtol=1e-15)


# --- precision at the edges --------------------------------------------------------------

def test_simplex_small_pieces_keep_relative_precision():
    """At u = -40 a piece is ~e^-40 of the stick: computed in log space it is exact to a few
    ulps relative, and the inverse, which never forms 1 - sum, recovers u."""
    t = transform_for("simplex")
    u = jnp.array([-40.0, 3.0, -40.0])
    x = t.forward(u)
    v = np.asarray(u) - np.log([3.0, 2.0, 1.0])
    z = 1 / (1 + np.exp(-v))
    stick = np.concatenate([[1.0], np.cumprod(1 - z)])
    np.testing.assert_allclose(x, np.append(z * stick[:-1], stick[-1]), rtol=1e-14)
    np.testing.assert_allclose(t.inverse(x), u, rtol=1e-14)


def test_corr_cholesky_inverse_near_unit_correlation():
    """|u| = 15: tanh(u) is 1 - 2e-13, where arctanh(z) keeps ~3 digits; asinh of the ratio
    to the row's tail does not lose any."""
    t = transform_for("corr_cholesky")
    u = jnp.array([15.0, -15.0, 15.0])
    np.testing.assert_allclose(t.inverse(t.forward(u)), u, rtol=1e-13)


# --- densities through the transform -----------------------------------------------------

def _nuts_draws(kind, log_density, u_size, seed, num_samples=2000):
    """Draws of x = forward(u), u from NUTS on log p(forward(u)) + log|J(u)|."""
    from numpyro.infer import MCMC, NUTS
    t = transform_for(kind)

    @jax.jit   # one program: NumPyro's initialization calls it eagerly, op by op
    def potential(u):   # (the LKJ test: 153 programs -> 29)
        return -(log_density(t.forward(u)) + t.log_abs_det_jacobian(u))

    mcmc = MCMC(NUTS(potential_fn=potential), num_warmup=500, num_samples=num_samples,
                progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), init_params=jnp.zeros(u_size))
    return jax.jit(t.forward)(mcmc.get_samples())


def _assert_mean(draws, truth, n_mcse=5.0):
    """|mean - truth| < n_mcse MCSE, the ESS estimated from the single chain."""
    from numpyro.diagnostics import effective_sample_size
    draws = np.asarray(draws)
    ess = effective_sample_size(draws[None])
    mcse = draws.std(axis=0) / np.sqrt(ess)
    assert np.all(np.abs(draws.mean(axis=0) - truth) < n_mcse * mcse), \
        (draws.mean(axis=0), truth, mcse)


@pytest.mark.slow  # 6-12 s on a shared 2-core machine
def test_dirichlet_through_simplex():
    """Dirichlet(alpha): E[x] = alpha / sum(alpha), E[x^2] = a(a+1) / (s(s+1))."""
    import numpyro.distributions as dist
    alpha = jnp.array([1.0, 2.0, 3.0, 4.0])
    x = _nuts_draws("simplex", dist.Dirichlet(alpha).log_prob, 3, seed=0)
    s = alpha.sum()
    _assert_mean(x, alpha / s)
    _assert_mean(x ** 2, alpha * (alpha + 1) / (s * (s + 1)))


@pytest.mark.slow  # 6-12 s on a shared 2-core machine
def test_lkj_through_corr_cholesky():
    """LKJ(eta) in K dimensions: each correlation r_ij is 2 Beta(b, b) - 1 with
    b = eta - 1 + K/2, so E[r] = 0 and Var[r] = 1 / (2b + 1) (= 1/6 for K = 3, eta = 2)."""
    import numpyro.distributions as dist
    k, eta = 3, 2.0
    L = _nuts_draws("corr_cholesky", dist.LKJCholesky(k, eta).log_prob, 3, seed=1)
    r = (L @ jnp.swapaxes(L, -2, -1))[:, [1, 2, 2], [0, 0, 1]]
    b = eta - 1 + k / 2
    _assert_mean(r, 0.0)
    _assert_mean(r ** 2, 1 / (2 * b + 1))


def test_exponential_order_statistics_through_positive_ordered():
    """n iid Exponential(1) sorted: the density is n! exp(-sum x) on increasing x, and
    E[x_(k)] = sum_{j<=k} 1 / (n - j + 1) (Renyi)."""
    n = 3
    x = _nuts_draws("positive_ordered", lambda x: -jnp.sum(x), n, seed=2)
    _assert_mean(x, np.cumsum(1.0 / np.arange(n, 0, -1)))


def test_normal_order_statistics_through_ordered():
    """3 iid N(0, 1) sorted: E[max] = 3 / (2 sqrt(pi)), E[median] = 0, E[min] = -E[max]."""
    x = _nuts_draws("ordered", lambda x: -0.5 * jnp.sum(x ** 2), 3, seed=3)
    m = 3 / (2 * np.sqrt(np.pi))
    _assert_mean(x, np.array([-m, 0.0, m]))


def test_wishart_through_cov():
    """Wishart(nu, I) in K = 2: density |X|^((nu-K-1)/2) exp(-tr X / 2), E[X] = nu I,
    Var[X_01] = nu."""
    nu, k = 5.0, 2

    def log_density(x):
        return 0.5 * (nu - k - 1) * jnp.linalg.slogdet(x)[1] - 0.5 * jnp.trace(x)

    x = _nuts_draws("cov", log_density, 3, seed=4)
    _assert_mean(x.reshape(-1, 4), (nu * np.eye(k)).ravel())
    _assert_mean(x[:, 0, 1] ** 2, nu)
