"""Distributions with an event shape (Dirichlet, Multinomial, MultivariateNormal,
LKJCholesky) or a category axis on a parameter (Categorical, OrderedLogistic), against
NumPyro and SciPy from one table of cases, as in test_distributions.py.

Tolerances: oracle comparisons rtol 1e-6 / atol 1e-9 as in test_distributions.py; sample
moments within 5 standard errors at a fixed seed, each standard error derived in a comment
from the distribution's known variance (STYLE.md: tolerances from the MCSE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as npd
import pytest
from scipy import special, stats

from pplc.runtime import distributions as D
from pplc.frontend import library

RTOL, ATOL = 1e-6, 1e-9
NUM_DRAWS = 20_000


def _spd(rng, k, batch=()):
    a = rng.normal(size=batch + (k, k))
    return a @ np.swapaxes(a, -1, -2) + k * np.eye(k)


def _lkj_values(dim, batch, seed):
    """Cholesky factors of random correlation matrices."""
    rng = np.random.default_rng(seed)
    cov = _spd(rng, dim, batch)
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    return np.linalg.cholesky(cov / sd[..., :, None] / sd[..., None, :])


RNG = np.random.default_rng(0)
PROBS = RNG.dirichlet(np.ones(4), size=3)  # batch (3,), K = 4
CUTPOINTS = np.array([-1.5, 0.0, 0.7, 2.0])
COV = _spd(RNG, 3, (2,))
TRIL = np.linalg.cholesky(_spd(RNG, 3))


@dataclass(frozen=True)
class Case:
    name: str
    params: dict
    values: Callable[[np.random.Generator], np.ndarray]  # valid values
    batch: tuple  # of log_prob(values)
    numpyro: Callable[[], object]
    scipy: Callable[[np.ndarray], np.ndarray] | None = None  # value -> log density
    outside: tuple = ()  # invalid values (each one event)

    @property
    def id(self):
        return f"{self.name}-{'-'.join(self.params)}"


def _scipy_rows(logpdf, event_ndim=1):
    """A SciPy logpdf over one event, mapped over the leading axes of value and params."""
    def run(value, *params):
        shape = value.shape[:value.ndim - event_ndim]
        params = [np.broadcast_to(p, shape + np.shape(p)[len(np.shape(p)) - k:])
                  for p, k in params]
        out = np.empty(shape)
        for idx in np.ndindex(*shape):
            out[idx] = logpdf(value[idx], *(p[idx] for p in params))
        return out
    return run


CASES = [
    Case("Categorical", dict(probs=PROBS), lambda r: r.integers(0, 4, size=(5, 3)), (5, 3),
         lambda: npd.Categorical(probs=PROBS), outside=(-1, 4, 1.5)),
    Case("Categorical", dict(logits=np.log(PROBS) + 0.3), lambda r: r.integers(0, 4, size=(5, 3)),
         (5, 3), lambda: npd.Categorical(logits=np.log(PROBS) + 0.3), outside=(-1, 4, 0.5)),
    Case("OrderedLogistic", dict(predictor=np.array([-2.0, 0.3, 3.0]), cutpoints=CUTPOINTS),
         lambda r: r.integers(0, 5, size=(5, 3)), (5, 3),
         lambda: npd.OrderedLogistic(np.array([-2.0, 0.3, 3.0]), CUTPOINTS),
         outside=(-1, 5, 2.5)),
    Case("Dirichlet", dict(concentration=np.array([[0.5, 1.0, 2.0], [3.0, 1.0, 0.7]])),
         lambda r: r.dirichlet([1.0, 2.0, 1.5], size=(4, 2)), (4, 2),
         lambda: npd.Dirichlet(np.array([[0.5, 1.0, 2.0], [3.0, 1.0, 0.7]])),
         lambda v, c: _scipy_rows(lambda x, a: stats.dirichlet.logpdf(x, a))(v, (c, 1)),
         outside=((0.5, 0.6, -0.1), (0.3, 0.3, 0.3))),
    Case("Multinomial", dict(total_count=np.array([5.0, 12.0, 7.0]), probs=PROBS[:, :3]
                             / PROBS[:, :3].sum(-1, keepdims=True)),
         lambda r: np.stack([r.multinomial(n, p, size=4) for n, p in
                             zip([5, 12, 7], PROBS[:, :3] / PROBS[:, :3].sum(-1, keepdims=True))],
                            axis=1).astype(float), (4, 3),
         lambda: npd.Multinomial(np.array([5.0, 12.0, 7.0]),
                                 PROBS[:, :3] / PROBS[:, :3].sum(-1, keepdims=True)),
         lambda v, n, p: _scipy_rows(lambda x, n, p: stats.multinomial.logpmf(x, n, p))(
             v, (n, 0), (p, 1)),
         outside=((1.0, 1.0, 1.0), (-1.0, 3.0, 3.0), (0.5, 2.5, 2.0))),
    Case("MultivariateNormal", dict(loc=np.array([0.5, -1.0, 2.0]), cov=COV),
         lambda r: r.normal(size=(4, 2, 3)) * 2, (4, 2),
         lambda: npd.MultivariateNormal(np.array([0.5, -1.0, 2.0]), covariance_matrix=COV),
         lambda v, m, c: _scipy_rows(lambda x, m, c: stats.multivariate_normal.logpdf(x, m, c))(
             v, (m, 1), (c, 2))),
    Case("MultivariateNormal", dict(loc=np.array([[0.0, 1.0, 2.0]] * 4), scale_tril=TRIL),
         lambda r: r.normal(size=(4, 3)) * 2, (4,),
         lambda: npd.MultivariateNormal(np.array([[0.0, 1.0, 2.0]] * 4), scale_tril=TRIL),
         lambda v, m, t: _scipy_rows(lambda x, m, t: stats.multivariate_normal.logpdf(
             x, m, t @ t.T))(v, (m, 1), (t, 2))),
    Case("LKJCholesky", dict(dim=2, concentration=np.array([0.5, 1.0, 3.0])),
         lambda r: _lkj_values(2, (3,), int(r.integers(100))), (3,),
         lambda: npd.LKJCholesky(2, np.array([0.5, 1.0, 3.0])),
         outside=(((1.0, 0.0), (0.5, 0.5)), ((1.0, 0.0), (0.6, -0.8)))),
    Case("LKJCholesky", dict(dim=4, concentration=np.array([[0.7], [2.0]])),
         lambda r: _lkj_values(4, (2, 3), int(r.integers(100))), (2, 3),
         lambda: npd.LKJCholesky(4, np.array([[0.7], [2.0]])),
         outside=(np.eye(4) + np.eye(4, k=1) * 0.1,)),
]
CASE_PARAMS = [pytest.param(c, id=c.id) for c in CASES]


def _values(case, seed=0):
    return np.asarray(case.values(np.random.default_rng(seed)), dtype=float)


def test_every_multivariate_signature_is_tested():
    names = {"Categorical", "OrderedLogistic", "Dirichlet", "Multinomial",
             "MultivariateNormal", "LKJCholesky"}
    wanted = {(n, s) for n in names for s in library.DISTRIBUTIONS[n].signatures}
    assert {(c.name, tuple(c.params)) for c in CASES} == wanted


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_log_prob_matches_numpyro_and_scipy(case, jit):
    dist = D.get(case.name)
    static = {k: v for k, v in case.params.items() if k in dist.info.static_params}
    traced = {k: v for k, v in case.params.items() if k not in static}

    def lp(value, traced):
        return dist.log_prob(value, **traced, **static)

    value = _values(case)
    actual = (jax.jit(lp) if jit else lp)(value, traced)
    assert actual.shape == case.batch
    # NumPyro's Categorical indexes with the value, so it wants integers.
    oracle_value = value.astype(int) if dist.info.event_ndim == 0 else value
    np.testing.assert_allclose(actual, case.numpyro().log_prob(oracle_value), rtol=RTOL,
                               atol=ATOL)
    if case.scipy is not None:
        np.testing.assert_allclose(actual, case.scipy(value, *case.params.values()),
                                   rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_shapes_from_parameter_shapes_only(case):
    dist = D.get(case.name)
    value = _values(case)
    batch, event = dist.shapes(**case.params)
    assert len(event) == dist.info.event_ndim
    assert value.shape[value.ndim - len(event):] == event
    assert np.broadcast_shapes(value.shape[:value.ndim - len(event)], batch) == case.batch
    structs = {k: v if k in dist.info.static_params
               else jax.ShapeDtypeStruct(np.shape(v), jnp.float64)
               for k, v in case.params.items()}
    assert dist.shapes(**structs) == (batch, event)
    traced = {k: v for k, v in case.params.items() if k not in dist.info.static_params}
    static = {k: v for k, v in case.params.items() if k in dist.info.static_params}
    jax.jit(lambda p: jnp.zeros(dist.shapes(**p, **static)[0] + dist.shapes(
        **p, **static)[1]))(traced)


def test_shapes_examples():
    f64 = jnp.float64
    sds = jax.ShapeDtypeStruct
    assert D.get("Dirichlet").shapes(concentration=sds((5, 3), f64)) == ((5,), (3,))
    assert D.get("Categorical").shapes(logits=sds((2, 6), f64)) == ((2,), ())
    assert D.get("OrderedLogistic").shapes(predictor=sds((7,), f64),
                                           cutpoints=sds((4,), f64)) == ((7,), ())
    assert D.get("Multinomial").shapes(total_count=sds((2, 1), f64),
                                       probs=sds((3, 4), f64)) == ((2, 3), (4,))
    assert D.get("MultivariateNormal").shapes(loc=0.0, cov=sds((5, 3, 3), f64)) == \
        ((5,), (3,))
    assert D.get("MultivariateNormal").shapes(loc=sds((2, 1, 3), f64),
                                              scale_tril=sds((4, 3, 3), f64)) == ((2, 4), (3,))
    assert D.get("LKJCholesky").shapes(dim=3, concentration=1.0) == ((), (3, 3))
    assert D.get("Normal").shapes(loc=sds((2, 1), f64), scale=sds((5,), f64)) == ((2, 5), ())


# The support and gradient tests run jitted, as pplc's log density does: one XLA program per
# case (and shape of the bad value), where eagerly each operation compiled its own (394
# programs: 12.1 CPU-s, 4.4 jitted). The eager path stays checked against jit by
# test_log_prob_matches_numpyro_and_scipy.


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.outside])
def test_outside_support_is_minus_inf(case):
    dist = D.get(case.name)
    params = {k: v if k in dist.info.static_params else jnp.asarray(v)
              for k, v in case.params.items()}
    traced = {k: v for k, v in params.items() if k not in dist.info.static_params}
    static = {k: v for k, v in params.items() if k in dist.info.static_params}

    @jax.jit
    def value_and_grads(bad, traced):
        grads = jax.grad(lambda p: jnp.sum(dist.log_prob(bad, **p, **static)))(traced)
        return dist.log_prob(bad, **traced, **static), grads

    for bad in case.outside:
        bad = jnp.asarray(bad, dtype=float)
        value, grads = value_and_grads(bad, traced)
        assert np.all(value == -np.inf), bad
        for leaf in jax.tree_util.tree_leaves(grads):
            assert np.all(np.isfinite(leaf)), bad


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_gradients_are_finite(case):
    dist = D.get(case.name)
    static = {k: v for k, v in case.params.items() if k in dist.info.static_params}
    traced = {k: jnp.asarray(v) for k, v in case.params.items() if k not in static}
    # Counts are not differentiable, and neither are matrices of total_count.
    traced.pop("total_count", None)
    rest = {k: v for k, v in case.params.items() if k not in traced and k not in static}
    value = jnp.asarray(_values(case, seed=1))
    argnums = (1,) if dist.info.discrete else (0, 1)
    grads = jax.jit(jax.grad(lambda v, p: jnp.sum(dist.log_prob(v, **p, **rest, **static)),
                             argnums=argnums))(value, traced)
    assert len(grads) == len(argnums)
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(leaf))


def test_categorical_and_ordered_logistic_support_bounds():
    lower, upper = D.support_bounds("Categorical", dict(probs=jnp.ones((2, 5)) / 5))
    assert (float(lower), float(upper)) == (0.0, 4.0)
    lower, upper = D.support_bounds("OrderedLogistic", dict(predictor=0.0,
                                                            cutpoints=jnp.arange(3.0)))
    assert (float(lower), float(upper)) == (0.0, 3.0)
    assert library.DISTRIBUTIONS["Categorical"].event_ndim == 0
    for name, kind in [("Dirichlet", "simplex"), ("LKJCholesky", "corr_cholesky"),
                       ("MultivariateNormal", "real"),
                       ("Multinomial", "nonnegative_int_vector")]:
        assert library.DISTRIBUTIONS[name].support.kind == kind
        assert kind in library.SUPPORT_KINDS


def test_ordered_logistic_far_tails_are_accurate():
    # P(Y = 0) = sigmoid(c_0 - eta) and P(Y = K) = sigmoid(eta - c_{K-1}), no cancellation.
    lp = D.get("OrderedLogistic").log_prob
    cut = jnp.array([-1.0, 1.0])
    assert np.isclose(lp(2, predictor=-60.0, cutpoints=cut), -61.0, rtol=1e-10)
    assert np.isclose(lp(0, predictor=60.0, cutpoints=cut), -61.0, rtol=1e-10)
    middle = lp(1, predictor=60.0, cutpoints=cut)
    expected = np.log(special.expit(-59.0) - special.expit(-61.0))
    assert np.isclose(middle, expected, rtol=1e-10)


# ---------------------------------------------------------------------------------------
# Sampling


def _within(mean, truth, se, k=5.0):
    assert np.all(np.abs(mean - truth) < k * se), (mean, truth, se)


def test_categorical_and_ordered_logistic_frequencies():
    key = jax.random.key(0)
    predictor = np.array([-2.0, 0.3, 3.0])
    for name, params, probs in [
            ("Categorical", dict(probs=PROBS), PROBS),
            ("Categorical", dict(logits=np.log(PROBS) + 1.0), PROBS),
            ("OrderedLogistic", dict(predictor=predictor, cutpoints=CUTPOINTS),
             np.asarray(npd.OrderedLogistic(predictor, CUTPOINTS).probs))]:
        draws = np.asarray(D.get(name).sample(key, (NUM_DRAWS, 3), **params))
        assert draws.shape == (NUM_DRAWS, 3) and draws.dtype == np.int64
        freq = (draws[..., None] == np.arange(probs.shape[-1])).mean(0)
        # each frequency is a binomial proportion: SE sqrt(p (1 - p) / n)
        _within(freq, probs, np.sqrt(probs * (1 - probs) / NUM_DRAWS) + 1e-12)


def test_dirichlet_sample_moments():
    alpha = np.array([[0.5, 1.0, 2.0], [3.0, 1.0, 0.7]])
    draws = np.asarray(D.get("Dirichlet").sample(jax.random.key(1), (NUM_DRAWS, 2, 3),
                                                 concentration=alpha))
    assert draws.shape == (NUM_DRAWS, 2, 3)
    np.testing.assert_allclose(draws.sum(-1), 1.0, atol=1e-12)
    a0 = alpha.sum(-1, keepdims=True)
    mean = alpha / a0
    var = mean * (1 - mean) / (a0 + 1)  # Var(X_i) = m_i (1 - m_i) / (a0 + 1)
    _within(draws.mean(0), mean, np.sqrt(var / NUM_DRAWS))
    # A () shape gives one draw of the parameters' batch + event shape (traced for its
    # shape: drawing it compiled the gamma sampler again for the new shape, ~1 CPU-s).
    one = jax.eval_shape(lambda: D.get("Dirichlet").sample(jax.random.key(1), (),
                                                           concentration=alpha))
    assert one.shape == (2, 3)


def test_multinomial_sample_moments():
    n, p = np.array([5.0, 12.0, 7.0]), PROBS
    draws = np.asarray(D.get("Multinomial").sample(jax.random.key(2), (NUM_DRAWS, 3, 4),
                                                   total_count=n, probs=p))
    assert draws.dtype == np.int64
    np.testing.assert_array_equal(draws.sum(-1), np.broadcast_to(n, (NUM_DRAWS, 3)))
    var = n[:, None] * p * (1 - p)  # Var(X_i) = n p_i (1 - p_i)
    _within(draws.mean(0), n[:, None] * p, np.sqrt(var / NUM_DRAWS))


@pytest.mark.parametrize("form", ["cov", "scale_tril"])
def test_mvn_sample_moments(form):
    loc = np.array([0.5, -1.0, 2.0])
    cov = COV[1]
    matrix = {"cov": cov, "scale_tril": np.linalg.cholesky(cov)}[form]
    draws = np.asarray(D.get("MultivariateNormal").sample(
        jax.random.key(3), (NUM_DRAWS, 3), **{"loc": loc, form: matrix}))
    var = np.diag(cov)
    _within(draws.mean(0), loc, np.sqrt(var / NUM_DRAWS))  # SE of a mean: sd / sqrt(n)
    # SE of a sample covariance of normals: sqrt((s_ii s_jj + s_ij^2) / n)
    se_cov = np.sqrt((np.outer(var, var) + cov ** 2) / NUM_DRAWS)
    _within(np.cov(draws.T), cov, se_cov)


@pytest.mark.parametrize("dim, eta", [(2, 1.0), (3, 0.7), (5, 3.0)])
def test_lkj_cholesky_samples(dim, eta):
    """Draws are valid factors (finite log_prob) and each off-diagonal correlation has the
    known marginal (r + 1)/2 ~ Beta(b, b), b = eta - 1 + dim/2: mean 0, variance
    1 / (2b + 1)."""
    dist = D.get("LKJCholesky")

    # One jitted program draws, scores and multiplies (pplc draws the prior under jit);
    # eagerly, each operation on the 20,000 draws compiled its own program (31-54 per case).
    @jax.jit
    def run(eta):
        draws = dist.sample(jax.random.key(4), (NUM_DRAWS, dim, dim), dim=dim,
                            concentration=eta)
        return (draws, dist.log_prob(draws, dim=dim, concentration=eta),
                draws @ jnp.swapaxes(draws, -1, -2))

    draws, log_prob, corr = run(eta)
    assert draws.shape == (NUM_DRAWS, dim, dim)
    assert np.all(np.isfinite(log_prob))
    corr = np.asarray(corr)
    r = corr[:, np.tril_indices(dim, -1)[0], np.tril_indices(dim, -1)[1]]
    b = eta - 1 + dim / 2
    var = 1 / (2 * b + 1)
    kurt = -6 / (2 * b + 3)  # excess kurtosis of a symmetric Beta(b, b), scaled
    _within(r.mean(0), 0.0, np.sqrt(var / NUM_DRAWS))
    _within(r.var(0), var, var * np.sqrt((kurt + 2) / NUM_DRAWS) + 5 * var / NUM_DRAWS)


def test_static_dim_must_be_an_int():
    from pplc.errors import InternalError
    with pytest.raises(InternalError):
        D.get("LKJCholesky").log_prob(jnp.eye(3), dim=jnp.array(3), concentration=1.0)
