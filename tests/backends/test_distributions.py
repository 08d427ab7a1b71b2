"""The JAX distributions against NumPyro and SciPy, from one table of cases (numpyro's
`test_distributions.py` style): one parametrized test per property.

Tolerances. Oracle comparisons use rtol 1e-6 with atol 1e-9: both sides are float64, so
correct formulas agree to ~1e-13 (lgamma and betaln differ in the last digits between
libraries), while any wrong constant or parameterization is off by far more than 1e-6;
atol covers log densities near 0 (e.g. log(1 - 1e-20)), where relative error means nothing.
Sampling checks use 5 standard errors at a fixed seed (STYLE.md: tolerances from the MCSE).
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

from pplc.backends import distributions as D
from pplc.errors import InternalError
from pplc.frontend import library

RTOL, ATOL = 1e-6, 1e-9
NUM_DRAWS = 20_000
VALUE_SHAPE = (4, 3)  # values broadcast against parameters of shape (3,)


@dataclass(frozen=True)
class Case:
    name: str
    params: dict[str, np.ndarray]
    values: Callable[[np.random.Generator, dict], np.ndarray]  # valid values, VALUE_SHAPE
    outside: tuple[float, ...] = ()  # values outside the support for every parameter entry

    @property
    def id(self) -> str:
        return f"{self.name}-{'-'.join(self.params)}"

    @property
    def discrete(self) -> bool:
        return library.DISTRIBUTIONS[self.name].discrete


def _a(*xs):
    return np.array(xs, dtype=float)


def _reals(scale):
    return lambda rng, p: scale * rng.normal(size=VALUE_SHAPE)


def _positives(scale):
    return lambda rng, p: scale * rng.exponential(size=VALUE_SHAPE)


def _counts(high):
    return lambda rng, p: rng.integers(0, high + 1, size=VALUE_SHAPE)


def _binomial_counts(rng, p):
    n = np.broadcast_to(p["total_count"], VALUE_SHAPE).astype(int)
    return rng.integers(0, n + 1)


CASES = [
    Case("Normal", dict(loc=_a(-1, 0, 2.5), scale=_a(0.5, 1, 3)), _reals(4)),
    Case("HalfNormal", dict(scale=_a(0.5, 1, 3)), _positives(2), outside=(-0.1, -5)),
    Case("HalfCauchy", dict(scale=_a(0.5, 1, 3)), _positives(3), outside=(-1e-3,)),
    Case("Cauchy", dict(loc=_a(-1, 0, 2.5), scale=_a(0.5, 1, 3)), _reals(5)),
    Case("StudentT", dict(df=_a(1, 2.5, 30), loc=_a(-1, 0, 2), scale=_a(0.5, 1, 2)),
         _reals(4)),
    Case("LogNormal", dict(loc=_a(-1, 0, 1), scale=_a(0.25, 0.5, 1)), _positives(2),
         outside=(0.0, -1.0)),
    Case("Exponential", dict(rate=_a(0.5, 1, 4)), _positives(1), outside=(-1e-3,)),
    Case("Gamma", dict(concentration=_a(0.5, 1, 5), rate=_a(0.5, 2, 1)), _positives(2),
         outside=(-1.0,)),
    Case("Beta", dict(concentration1=_a(0.5, 2, 1), concentration0=_a(0.7, 3, 1)),
         lambda rng, p: rng.uniform(0.01, 0.99, size=VALUE_SHAPE), outside=(-0.1, 1.1)),
    Case("Uniform", dict(low=_a(-1, 0, 2), high=_a(1, 3, 5)),
         lambda rng, p: p["low"] + (p["high"] - p["low"]) * rng.uniform(size=VALUE_SHAPE),
         outside=(-1.5, 5.5)),
    Case("Poisson", dict(rate=_a(0.5, 3, 20)), _counts(30), outside=(-1, 1.5)),
    Case("Poisson", dict(log_rate=_a(-1, 1, 3)), _counts(30), outside=(-1, 2.5)),
    Case("Bernoulli", dict(probs=_a(0.1, 0.5, 0.9)), _counts(1), outside=(-1, 0.5, 2)),
    Case("Bernoulli", dict(logits=_a(-3, 0, 2)), _counts(1), outside=(-1, 0.5, 2)),
    Case("Binomial", dict(total_count=_a(1, 5, 20), probs=_a(0.2, 0.5, 0.9)),
         _binomial_counts, outside=(-1, 2.5, 21)),
    Case("Binomial", dict(total_count=_a(1, 5, 20), logits=_a(-2, 0, 3)),
         _binomial_counts, outside=(-1, 0.5, 21)),
]
CASE_PARAMS = [pytest.param(c, id=c.id) for c in CASES]


def _canonical(params: dict) -> dict:
    """probs for logits, rate for log_rate: the one form both oracles accept."""
    p = dict(params)
    if "logits" in p:
        p["probs"] = special.expit(p.pop("logits"))
    if "log_rate" in p:
        p["rate"] = np.exp(p.pop("log_rate"))
    return p


def _numpyro(case: Case):
    params = dict(case.params)
    if "log_rate" in params:  # NumPyro's Poisson has no log_rate form
        params = {"rate": np.exp(params["log_rate"])}
    return getattr(npd, case.name)(**params)


def _scipy(case: Case):
    p = _canonical(case.params)
    makers = {
        "Normal": lambda: stats.norm(p["loc"], p["scale"]),
        "HalfNormal": lambda: stats.halfnorm(scale=p["scale"]),
        "HalfCauchy": lambda: stats.halfcauchy(scale=p["scale"]),
        "Cauchy": lambda: stats.cauchy(p["loc"], p["scale"]),
        "StudentT": lambda: stats.t(p["df"], p["loc"], p["scale"]),
        "LogNormal": lambda: stats.lognorm(s=p["scale"], scale=np.exp(p["loc"])),
        "Exponential": lambda: stats.expon(scale=1 / p["rate"]),
        "Gamma": lambda: stats.gamma(p["concentration"], scale=1 / p["rate"]),
        "Beta": lambda: stats.beta(p["concentration1"], p["concentration0"]),
        "Uniform": lambda: stats.uniform(p["low"], p["high"] - p["low"]),
        "Poisson": lambda: stats.poisson(p["rate"]),
        "Bernoulli": lambda: stats.bernoulli(p["probs"]),
        "Binomial": lambda: stats.binom(p["total_count"], p["probs"]),
    }
    return makers[case.name]()


def _scipy_log_prob(case: Case, value):
    frozen = _scipy(case)
    return frozen.logpmf(value) if case.discrete else frozen.logpdf(value)


def _values(case: Case, seed: int = 0) -> np.ndarray:
    return case.values(np.random.default_rng(seed), case.params)


def _log_prob(case: Case, jit: bool):
    lp = D.get(case.name).log_prob
    return jax.jit(lambda v, p: lp(v, **p)) if jit else (lambda v, p: lp(v, **p))


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("case", CASE_PARAMS)
def test_log_prob_matches_numpyro(case, jit):
    value = _values(case)
    actual = _log_prob(case, jit)(value, case.params)
    expected = _numpyro(case).log_prob(value)
    assert actual.shape == VALUE_SHAPE
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_log_prob_matches_scipy(case):
    value = _values(case, seed=1)
    actual = D.get(case.name).log_prob(value, **case.params)
    np.testing.assert_allclose(actual, _scipy_log_prob(case, value), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_gradients_are_finite(case):
    value = jnp.asarray(_values(case, seed=2), dtype=float)
    lp = D.get(case.name).log_prob

    def total(value, params):
        return jnp.sum(lp(value, **params))

    argnums = (1,) if case.discrete else (0, 1)  # counts are not differentiable
    grads = jax.grad(total, argnums=argnums)(value, {k: jnp.asarray(v)
                                                     for k, v in case.params.items()})
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(leaf))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES if c.outside])
def test_outside_support_is_minus_inf(case):
    lp = D.get(case.name).log_prob
    params = {k: jnp.asarray(v) for k, v in case.params.items()}
    for bad in case.outside:
        assert np.all(lp(bad, **params) == -np.inf), bad
        # The masked branch must not leak NaN into parameter gradients (double-where).
        grads = jax.grad(lambda p: jnp.sum(lp(bad, **p)))(params)
        for leaf in jax.tree_util.tree_leaves(grads):
            assert np.all(np.isfinite(leaf)), bad


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_samples_match_moments_and_quantiles(case):
    """Mean where the variance is finite, variance where the kurtosis is, and (continuous)
    the empirical CDF at the 10/50/90% quantiles: the last needs no moments, so it also
    covers Cauchy, HalfCauchy and StudentT with df <= 2."""
    draws = D.get(case.name).sample(jax.random.key(0), (NUM_DRAWS, 3), **case.params)
    assert draws.shape == (NUM_DRAWS, 3)
    # Every draw lies in the support, which is exactly where log_prob is finite.
    assert np.all(np.isfinite(D.get(case.name).log_prob(draws, **case.params)))
    draws = np.asarray(draws)
    frozen = _scipy(case)
    mean, var, kurt = (np.broadcast_to(m, (3,)) for m in frozen.stats(moments="mvk"))
    n = NUM_DRAWS

    has_var = np.isfinite(var)
    se_mean = np.sqrt(var / n)
    assert np.all(np.abs(draws.mean(0) - mean)[has_var] < 5 * se_mean[has_var])

    has_kurt = np.isfinite(kurt)
    # SE of the sample variance: var * sqrt((excess kurtosis + 2) / n); plus its O(1/n)
    # term, which is all there is for a Bernoulli(1/2) (excess kurtosis -2).
    se_var = var * np.sqrt(np.maximum(kurt + 2, 0) / n) + 5 * var / n
    assert np.all(np.abs(draws.var(0) - var)[has_kurt] < 5 * se_var[has_kurt])

    if case.discrete:
        assert np.issubdtype(draws.dtype, np.integer)
    else:
        q = np.array([0.1, 0.5, 0.9])[:, None]
        ecdf = (draws[:, None, :] <= frozen.ppf(q)[None]).mean(0)
        assert np.all(np.abs(ecdf - q) < 5 * np.sqrt(q * (1 - q) / n))


def test_discrete_draws_are_int64():
    key = jax.random.key(1)
    for name, params in [("Bernoulli", dict(probs=0.3)), ("Bernoulli", dict(logits=0.3)),
                         ("Poisson", dict(rate=2.0)), ("Poisson", dict(log_rate=0.5)),
                         ("Binomial", dict(total_count=7, probs=0.4))]:
        draws = D.get(name).sample(key, (100,), **params)
        assert draws.dtype == jnp.int64, (name, params)
    bern = D.get("Bernoulli").sample(key, (100,), probs=0.5)
    assert set(np.unique(bern)) <= {0, 1}


def test_sample_shape_broadcasts_with_params():
    normal = D.get("Normal")
    key = jax.random.key(2)
    assert normal.sample(key, (5, 3), loc=jnp.zeros(3), scale=1.0).shape == (5, 3)
    assert normal.sample(key, (), loc=0.0, scale=1.0).shape == ()
    # The parameters' own shape is kept even when `shape` is smaller.
    assert normal.sample(key, (), loc=jnp.zeros(3), scale=1.0).shape == (3,)


# Extreme but valid parameters and values on the support's edge: finite log density and
# finite gradients, and (where NumPyro is itself exact there) its value.
HARD = [
    ("Bernoulli", dict(probs=0.0), 0, 0.0),
    ("Bernoulli", dict(probs=1.0), 1, 0.0),
    ("Bernoulli", dict(logits=50.0), 1, -special.log1p(np.exp(-50.0))),
    ("Bernoulli", dict(logits=50.0), 0, -50.0 - special.log1p(np.exp(-50.0))),
    ("Bernoulli", dict(logits=-800.0), 0, 0.0),
    ("Bernoulli", dict(logits=-800.0), 1, -800.0),
    ("Binomial", dict(total_count=10.0, probs=0.0), 0, 0.0),
    ("Binomial", dict(total_count=10.0, logits=40.0), 10, 10 * -special.log1p(np.exp(-40.0))),
    ("Binomial", dict(total_count=10.0, logits=-700.0), 0, 0.0),
    ("Poisson", dict(rate=0.0), 0, 0.0),
    ("Poisson", dict(log_rate=-700.0), 0, -np.exp(-700.0)),
    ("Poisson", dict(log_rate=50.0), 5, 5 * 50.0 - np.exp(50.0) - special.gammaln(6.0)),
    ("Gamma", dict(concentration=1e-3, rate=1.0), 1e-5, None),
    ("Gamma", dict(concentration=1.0, rate=2.0), 0.0, np.log(2.0)),
    ("Beta", dict(concentration1=1e-3, concentration0=1e-3), 1e-10, None),
    ("Beta", dict(concentration1=1.0, concentration0=1.0), 0.0, 0.0),
    ("Beta", dict(concentration1=1.0, concentration0=3.0), 1.0 - 1e-12, None),
    ("HalfNormal", dict(scale=2.0), 0.0, np.log(2.0) + stats.norm(0, 2).logpdf(0.0)),
    ("Exponential", dict(rate=3.0), 0.0, np.log(3.0)),
    ("StudentT", dict(df=1e-3, loc=0.0, scale=1.0), 1e3, None),
    ("StudentT", dict(df=1e6, loc=0.0, scale=1.0), 0.5, None),
    ("Uniform", dict(low=0.0, high=1e-300), 0.0, -np.log(1e-300)),
]


@pytest.mark.parametrize("name, params, value, expected", HARD,
                         ids=[f"{h[0]}-{h[1]}-{h[2]}" for h in HARD])
def test_hard_cases_are_finite(name, params, value, expected):
    dist = D.get(name)
    params = {k: jnp.asarray(v) for k, v in params.items()}
    lp = dist.log_prob(value, **params)
    assert np.isfinite(lp)
    if expected is None:  # no closed form at hand: NumPyro is accurate enough here
        expected = getattr(npd, name)(**params).log_prob(value)
        np.testing.assert_allclose(lp, expected, rtol=RTOL, atol=ATOL)
    else:
        np.testing.assert_allclose(lp, expected, rtol=1e-12, atol=1e-300)
    grads = jax.grad(lambda p: dist.log_prob(value, **p))(params)
    assert all(np.isfinite(g) for g in grads.values()), grads
    if not dist.info.discrete and value != 0.0:
        assert np.isfinite(jax.grad(lambda v: dist.log_prob(v, **params))(float(value)))


def test_every_catalogue_signature_is_implemented_and_tested():
    assert set(D.DISTRIBUTIONS) == set(library.DISTRIBUTIONS)
    for name, info in library.DISTRIBUTIONS.items():
        assert D.get(name).info is info
    tested = {(c.name, tuple(c.params)) for c in CASES}
    wanted = {(name, sig) for name, info in library.DISTRIBUTIONS.items()
              for sig in info.signatures}
    assert tested == wanted


def test_wrong_parameters_are_an_internal_error():
    with pytest.raises(InternalError):
        D.get("Bernoulli").log_prob(1, probs=0.5, logits=0.0)
    with pytest.raises(InternalError):
        D.get("Normal").sample(jax.random.key(0), (), loc=0.0)
    with pytest.raises(InternalError):
        D.get("Dirichlet")


def test_support_bounds():
    assert D.support_bounds("Normal", dict(loc=0.0, scale=1.0)) == (None, None)
    low, high = D.support_bounds("Uniform", dict(low=jnp.array([0.0, 1.0]), high=3.0))
    np.testing.assert_array_equal(low, [0.0, 1.0])
    assert float(high) == 3.0
    info = library.DISTRIBUTIONS["Binomial"]
    lower, upper = D.support_bounds(info, dict(total_count=7, logits=0.0))
    assert (float(lower), float(upper)) == (0.0, 7.0)
    # Traced bounds flow through (b ~ Uniform(0, 1 - a)).
    grad = jax.grad(lambda a: D.support_bounds("Uniform", dict(low=0.0, high=1 - a))[1])(0.2)
    assert float(grad) == -1.0
