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

from pplc.runtime import distributions as D
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
    Case("HalfStudentT", dict(df=_a(1.5, 5, 30), scale=_a(0.5, 1, 2)), _positives(2),
         outside=(-1e-3, -2.0)),
    Case("Laplace", dict(loc=_a(-1, 0, 2.5), scale=_a(0.5, 1, 3)), _reals(4)),
    Case("Logistic", dict(loc=_a(-1, 0, 2.5), scale=_a(0.5, 1, 3)), _reals(4)),
    Case("InverseGamma", dict(concentration=_a(1.5, 3, 6), scale=_a(0.5, 1, 4)),
         _positives(2), outside=(0.0, -1.0)),
    Case("Weibull", dict(scale=_a(0.5, 1, 3), concentration=_a(0.7, 1.5, 4)), _positives(2),
         outside=(-1e-3,)),
    Case("ChiSquared", dict(df=_a(0.5, 3, 10)), _positives(3), outside=(-1.0,)),
    Case("NegativeBinomial", dict(mean=_a(0.5, 4, 20), concentration=_a(0.3, 2, 50)),
         _counts(40), outside=(-1, 1.5)),
    Case("BetaBinomial", dict(concentration1=_a(0.5, 2, 5), concentration0=_a(0.7, 3, 1),
                              total_count=_a(1, 5, 20)),
         _binomial_counts, outside=(-1, 2.5, 21)),
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
    if case.name == "HalfStudentT":  # no HalfStudentT in NumPyro: |StudentT(df, 0, scale)|
        return npd.FoldedDistribution(npd.StudentT(params["df"], 0.0, params["scale"]))
    if case.name == "NegativeBinomial":  # ours is NumPyro's mean parameterization
        return npd.NegativeBinomial2(params["mean"], params["concentration"])
    if case.name == "InverseGamma":  # NumPyro calls the scale `rate` (density e^(-rate/x))
        return npd.InverseGamma(params["concentration"], params["scale"])
    if case.name == "ChiSquared":
        return npd.Chi2(params["df"])
    return getattr(npd, case.name)(**params)


class _HalfStudentT:
    """|T| * scale for T ~ StudentT(df), which SciPy lacks: the frozen-distribution methods
    the tests use, its moments from E|T|^k = df^(k/2) G((k+1)/2) G((df-k)/2) / (sqrt(pi)
    G(df/2)) for k < df (infinite otherwise)."""

    def __init__(self, df, scale):
        self.df, self.scale = np.asarray(df, float), np.asarray(scale, float)
        self.t = stats.t(self.df, 0.0, self.scale)

    def logpdf(self, x):
        return np.where(np.asarray(x) >= 0, np.log(2.0) + self.t.logpdf(x), -np.inf)

    def cdf(self, x):
        return np.where(np.asarray(x) >= 0, 2.0 * self.t.cdf(x) - 1.0, 0.0)

    def logcdf(self, x):
        with np.errstate(divide="ignore"):
            return np.log(self.cdf(x))

    def logsf(self, x):
        # 1 - cdf = 2 P(T > x) for x >= 0
        return np.where(np.asarray(x) >= 0, np.log(2.0) + self.t.logsf(x), 0.0)

    def ppf(self, q):
        return self.t.ppf(0.5 + 0.5 * np.asarray(q))

    def stats(self, moments="mvk"):
        df = self.df

        def raw(k):
            with np.errstate(invalid="ignore"):
                m = np.exp(0.5 * k * np.log(df) + special.gammaln((k + 1) / 2)
                           + special.gammaln(np.maximum(df - k, 1e-300) / 2)
                           - 0.5 * np.log(np.pi) - special.gammaln(df / 2))
            return np.where(df > k, m * self.scale ** k, np.inf)

        m1, m2, m3, m4 = (raw(k) for k in (1, 2, 3, 4))
        with np.errstate(invalid="ignore"):
            var = m2 - m1 ** 2
            kurt = (m4 - 4 * m1 * m3 + 6 * m1 ** 2 * m2 - 3 * m1 ** 4) / var ** 2 - 3
        return m1, var, np.where(np.isfinite(m4), kurt, np.inf)


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
        "HalfStudentT": lambda: _HalfStudentT(p["df"], p["scale"]),
        "Laplace": lambda: stats.laplace(p["loc"], p["scale"]),
        "Logistic": lambda: stats.logistic(p["loc"], p["scale"]),
        "InverseGamma": lambda: stats.invgamma(p["concentration"], scale=p["scale"]),
        "Weibull": lambda: stats.weibull_min(p["concentration"], scale=p["scale"]),
        "ChiSquared": lambda: stats.chi2(p["df"]),
        # failures-before-`concentration`-successes with success probability phi/(phi+mu)
        "NegativeBinomial": lambda: stats.nbinom(
            p["concentration"], p["concentration"] / (p["concentration"] + p["mean"])),
        "BetaBinomial": lambda: stats.betabinom(p["total_count"], p["concentration1"],
                                                p["concentration0"]),
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
        # The dtype is fixed when the sampler is traced; drawing compiled each sampler for
        # this shape (Poisson's and Binomial's loops: 1.5 of this test's 1.8 CPU-s).
        draws = jax.eval_shape(lambda: D.get(name).sample(key, (100,), **params))
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


# Tested in test_multivariate.py (a category axis or an event shape) or below (Truncated).
ELSEWHERE = {"Categorical", "OrderedLogistic", "Dirichlet", "Multinomial",
             "MultivariateNormal", "LKJCholesky", "Truncated"}


def test_every_catalogue_signature_is_implemented_and_tested():
    assert set(D.DISTRIBUTIONS) == set(library.DISTRIBUTIONS)
    for name, info in library.DISTRIBUTIONS.items():
        assert D.get(name).info is info
    tested = {(c.name, tuple(c.params)) for c in CASES}
    wanted = {(name, sig) for name, info in library.DISTRIBUTIONS.items()
              for sig in info.signatures if name not in ELSEWHERE}
    assert tested == wanted


def test_wrong_parameters_are_an_internal_error():
    with pytest.raises(InternalError):
        D.get("Bernoulli").log_prob(1, probs=0.5, logits=0.0)
    with pytest.raises(InternalError):
        D.get("Normal").sample(jax.random.key(0), (), loc=0.0)
    with pytest.raises(InternalError):
        D.get("Wishart")


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


# ---------------------------------------------------------------------------------------
# Shapes of the scalar distributions: the broadcast of the parameters' shapes, no event.


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_scalar_shapes_from_parameter_shapes_only(case):
    dist = D.get(case.name)
    assert dist.info.event_ndim == 0
    params = {k: jnp.broadcast_to(v, (4, 3)) if i == 0 else v
              for i, (k, v) in enumerate(case.params.items())}
    assert dist.shapes(**params) == ((4, 3), ())
    structs = {k: jax.ShapeDtypeStruct(np.shape(v), jnp.float64) for k, v in params.items()}
    assert dist.shapes(**structs) == ((4, 3), ())
    assert dist.shapes(**{k: 1.0 for k in case.params}) == ((), ())
    # Under jit the parameters are tracers; only their shapes are read.
    jax.jit(lambda p: jnp.zeros(dist.shapes(**p)[0]))(params)


# ---------------------------------------------------------------------------------------
# CDFs against SciPy: every continuous case, Poisson and Binomial.

CDF_CASES = [c for c in CASES if D.get(c.name).cdf is not None]


def test_cdfs_exist_where_promised():
    continuous = {n for n, i in library.DISTRIBUTIONS.items()
                  if not i.discrete and i.event_ndim == 0 and not i.wrapper}
    assert {c.name for c in CDF_CASES} == continuous | {"Poisson", "Binomial"}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CDF_CASES])
def test_cdf_matches_scipy(case):
    dist, frozen = D.get(case.name), _scipy(case)
    value = _values(case, seed=3).astype(float)
    # Also points outside the support, where the CDF is 0 or 1: three rows for every case
    # (repeated where a case has fewer), so that every case evaluates the same (7, 3)
    # shape and the eager operations compiled for one case serve the others.
    outside = tuple(case.outside or (0.0,)) * 3
    value = np.concatenate([value, np.array(outside[:3], float)[:, None] * np.ones(3)])
    expected = frozen.cdf(value)
    np.testing.assert_allclose(dist.cdf(value, **case.params), expected, rtol=1e-6, atol=1e-12)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(dist.log_cdf(value, **case.params), frozen.logcdf(value),
                                   rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(dist.log_ccdf(value, **case.params), frozen.logsf(value),
                                   rtol=1e-6, atol=1e-9)
    if dist.icdf is not None:
        q = np.random.default_rng(4).uniform(0.01, 0.99, size=VALUE_SHAPE)
        np.testing.assert_allclose(dist.icdf(q, **case.params), frozen.ppf(q), rtol=1e-6,
                                   atol=1e-9)
        np.testing.assert_allclose(dist.iccdf(1 - q, **case.params), frozen.ppf(q),
                                   rtol=1e-6, atol=1e-9)


def test_log_ccdf_far_tail_is_accurate():
    # Normal upper tail at 30 sd (1 - cdf underflows to 0) and Cauchy/Logistic far out.
    assert np.isclose(D.get("Normal").log_ccdf(30.0, loc=0.0, scale=1.0),
                      stats.norm.logsf(30.0), rtol=1e-10)
    assert np.isclose(D.get("Cauchy").log_cdf(-1e12, loc=0.0, scale=1.0),
                      stats.cauchy.logcdf(-1e12), rtol=1e-10)
    assert np.isclose(D.get("Logistic").log_ccdf(800.0, loc=0.0, scale=1.0), -800.0)
    assert np.isclose(D.get("Exponential").log_ccdf(1e5, rate=1.0), -1e5)


# ---------------------------------------------------------------------------------------
# Truncated(DIST, lower, upper) against SciPy (and NumPyro's TruncatedDistribution where it
# exists: Normal, StudentT, Cauchy, Laplace, Logistic).

TRUNCATED = [
    ("Normal", dict(loc=0.5, scale=2.0), -1.0, 3.0),
    ("Normal", dict(loc=0.0, scale=1.0), 5.0, None),  # far upper tail: needs log_ccdf
    ("Normal", dict(loc=0.0, scale=1.0), None, -6.0),
    ("Normal", dict(loc=0.0, scale=1.0), 8.0, 9.0),  # mass 6e-16: F(9) - F(8) is all rounding
    ("Normal", dict(loc=0.0, scale=1.0), -9.0, -8.0),
    ("StudentT", dict(df=4.0, loc=0.0, scale=1.0), 0.0, None),
    ("Cauchy", dict(loc=0.0, scale=1.0), -1.0, 2.0),
    ("Laplace", dict(loc=1.0, scale=0.5), 0.0, None),
    ("Logistic", dict(loc=0.0, scale=2.0), None, 1.0),
    ("LogNormal", dict(loc=0.0, scale=1.0), 0.5, 3.0),
    ("Exponential", dict(rate=2.0), 1.0, None),
    ("Gamma", dict(concentration=2.0, rate=1.5), 0.5, 4.0),
    ("Beta", dict(concentration1=2.0, concentration0=3.0), 0.2, 0.7),
    ("Uniform", dict(low=0.0, high=4.0), 1.0, None),
    ("HalfNormal", dict(scale=2.0), None, 1.0),
    ("HalfCauchy", dict(scale=1.0), 1.0, 10.0),
    ("HalfStudentT", dict(df=3.0, scale=1.0), 0.5, 2.0),
    ("Weibull", dict(scale=1.5, concentration=2.0), 0.5, None),
    ("InverseGamma", dict(concentration=3.0, scale=2.0), None, 1.5),
    ("ChiSquared", dict(df=4.0), 1.0, 6.0),
    ("Poisson", dict(rate=3.0), 2.0, 5.0),
    ("Poisson", dict(log_rate=1.0), 1.5, None),  # a fractional bound: counts >= 2
    ("Binomial", dict(total_count=10.0, probs=0.3), None, 4.0),
    ("Binomial", dict(total_count=10.0, logits=0.5), 3.0, 8.0),
]
TRUNCATED_IDS = [f"{n}-{'-'.join(p)}-{lo}-{hi}" for n, p, lo, hi in TRUNCATED]


def _truncated_oracle(name, params, lower, upper):
    """SciPy's log density of the truncation: truncnorm for Normal (accurate in the far
    tails), else logpdf - log(F(b) - F(a)), or for counts logpmf - log(F(b) - F(ceil(a)-1))."""
    case = Case(name, params, None)
    frozen = _scipy(case)
    if name == "Normal":
        loc, scale = params["loc"], params["scale"]
        a = -np.inf if lower is None else (lower - loc) / scale
        b = np.inf if upper is None else (upper - loc) / scale
        return stats.truncnorm(a, b, loc, scale).logpdf
    if case.discrete:
        lo = 0.0 if lower is None else frozen.cdf(np.ceil(lower) - 1)
        hi = 1.0 if upper is None else frozen.cdf(np.floor(upper))
        return lambda x: np.where((x >= (lower if lower is not None else -np.inf))
                                  & (x <= (upper if upper is not None else np.inf)),
                                  frozen.logpmf(x) - np.log(hi - lo), -np.inf)
    lo = 0.0 if lower is None else frozen.cdf(lower)
    hi = 1.0 if upper is None else frozen.cdf(upper)
    return lambda x: np.where((x >= (lower if lower is not None else -np.inf))
                              & (x <= (upper if upper is not None else np.inf)),
                              frozen.logpdf(x) - np.log(hi - lo), -np.inf)


def _truncated_values(name, params, lower, upper, seed=0):
    """Points inside the truncation (integers for counts) and a few outside it."""
    rng = np.random.default_rng(seed)
    lo = lower if lower is not None else (upper - 4.0 if name != "HalfNormal" else 0.0)
    hi = upper if upper is not None else lo + 4.0
    inside = rng.uniform(lo, hi, size=12)
    if library.DISTRIBUTIONS[name].discrete:
        inside = np.floor(inside)
        inside = inside[inside >= lo]
    outside = [b for b in (None if lower is None else lower - 0.5,
                           None if upper is None else upper + 0.5) if b is not None]
    values = np.concatenate([inside, outside])
    # 14 points for every case (the first one repeated where there are fewer): every case
    # evaluates the same shape, so the eager operations compiled for one serve the others
    return np.concatenate([values, np.repeat(values[:1], 14 - values.size)])


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
@pytest.mark.parametrize("name, params, lower, upper", TRUNCATED, ids=TRUNCATED_IDS)
def test_truncated_log_prob_matches_scipy(name, params, lower, upper, jit):
    def lp(value, params, lower, upper):
        return D.truncated(name, params, lower, upper).log_prob(value)

    if jit:
        lp = jax.jit(lp)
    value = _truncated_values(name, params, lower, upper)
    expected = _truncated_oracle(name, _canonical_for(name, params), lower, upper)(value)
    actual = lp(value, params, lower, upper)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL)
    # The same through the catalogue entry, as the lowering calls it.
    bounds = {k: v for k, v in (("lower", lower), ("upper", upper)) if v is not None}
    np.testing.assert_allclose(
        D.get("Truncated").log_prob(value, dist=(name, params), **bounds), actual)
    if name in ("Normal", "StudentT", "Cauchy", "Laplace", "Logistic") and \
            (lower is None or lower < 5) and (upper is None or upper > -6):
        base = getattr(npd, name)(**params)
        inside = np.isfinite(expected)
        np.testing.assert_allclose(
            actual[inside], npd.TruncatedDistribution(base, lower, upper).log_prob(
                value[inside]), rtol=RTOL, atol=ATOL)


def _canonical_for(name, params):
    return params if name not in ("Poisson", "Binomial") else _canonical(params)


@pytest.mark.parametrize("name, params, lower, upper", TRUNCATED, ids=TRUNCATED_IDS)
def test_truncated_gradients_are_finite(name, params, lower, upper):
    value = _truncated_values(name, params, lower, upper, seed=1)
    # JAX has no derivative of betainc in its shape arguments (module docstring), and counts
    # (total_count) are data.
    fixed = {"df"} if name in ("StudentT", "HalfStudentT") else (
        {"concentration1", "concentration0"} if name == "Beta" else {"total_count"})
    free = {k: jnp.asarray(v) for k, v in params.items() if k not in fixed}
    rest = {k: v for k, v in params.items() if k in fixed}

    def total(value, free, lower, upper):
        return jnp.sum(D.truncated(name, {**free, **rest}, lower, upper).log_prob(value))

    argnums = (1, 2, 3) if library.DISTRIBUTIONS[name].discrete else (0, 1, 2, 3)
    lower_ = None if lower is None else jnp.asarray(lower)
    upper_ = None if upper is None else jnp.asarray(upper)
    grads = jax.grad(total, argnums=argnums)(jnp.asarray(value), free, lower_, upper_)
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(leaf))


def test_truncated_support_bounds():
    both = D.support_bounds("Truncated", dict(dist=("Normal", dict(loc=0.0, scale=1.0)),
                                              lower=-1.0, upper=2.0))
    assert tuple(map(float, both)) == (-1.0, 2.0)
    # A missing bound is the inner support's own; a given one is clipped to it.
    lower, upper = D.support_bounds("Truncated", dict(dist=("HalfNormal", dict(scale=1.0)),
                                                      upper=3.0))
    assert (float(lower), float(upper)) == (0.0, 3.0)
    lower, upper = D.support_bounds("Truncated", dict(
        dist=("Binomial", dict(total_count=5.0, probs=0.5)), lower=-2.0))
    assert (float(lower), float(upper)) == (0.0, 5.0)
    assert D.support_bounds("Truncated", dict(dist=("Normal", dict(loc=0.0, scale=1.0)),
                                              lower=0.0))[1] is None
    assert library.truncated_support(library.DISTRIBUTIONS["Poisson"]).kind == "int_interval"
    assert library.truncated_support(library.DISTRIBUTIONS["Gamma"]).kind == "interval"
    with pytest.raises(ValueError):
        library.truncated_support(library.DISTRIBUTIONS["Dirichlet"])


def test_truncated_is_a_wrapper_with_optional_bounds():
    info = library.DISTRIBUTIONS["Truncated"]
    assert info.wrapper and info.parameter_names == ("dist", "lower", "upper")
    bind = library.bind_arguments
    assert bind(info, 1, ["lower"]) == (("dist",), ("dist", "lower"))
    assert bind(info, 1, ["upper"]) == (("dist",), ("dist", "upper"))
    assert bind(info, 1, []) == (("dist",), ("dist",))
    assert bind(info, 3, []) == (("dist", "lower", "upper"), ("dist", "lower", "upper"))
    assert bind(info, 1, ["upper", "lower"])[1] == ("dist", "lower", "upper")
    with pytest.raises(ValueError, match="at most 3"):
        bind(info, 4, [])
    with pytest.raises(ValueError, match="missing"):
        bind(info, 0, ["lower"])
    with pytest.raises(ValueError, match="no parameter"):
        bind(info, 1, ["low"])
    assert D.get("Truncated").shapes(dist=("Normal", dict(loc=jnp.zeros(3), scale=1.0)),
                                     lower=jnp.zeros((2, 1))) == ((2, 3), ())


SAMPLED = [t for t in TRUNCATED
           if not library.DISTRIBUTIONS[t[0]].discrete and D.get(t[0]).icdf is not None]


@pytest.mark.parametrize("name, params, lower, upper", SAMPLED,
                         ids=[f"{n}-{lo}-{hi}" for n, _, lo, hi in SAMPLED])
def test_truncated_samples_match_quantiles(name, params, lower, upper):
    """The empirical CDF at the truncation's 10/50/90% quantiles is within 5 standard
    errors sqrt(q (1 - q) / n) of q; every draw lies inside the bounds."""
    t = D.truncated(name, params, lower, upper)
    draws = np.asarray(t.sample(jax.random.key(5), (NUM_DRAWS,)))
    assert draws.shape == (NUM_DRAWS,)
    assert np.all(np.isfinite(t.log_prob(draws)))
    if name == "Normal":
        loc, scale = params["loc"], params["scale"]
        a = -np.inf if lower is None else (lower - loc) / scale
        b = np.inf if upper is None else (upper - loc) / scale
        ppf = stats.truncnorm(a, b, loc, scale).ppf
    else:
        frozen = _scipy(Case(name, params, None))
        lo = 0.0 if lower is None else frozen.cdf(lower)
        hi = 1.0 if upper is None else frozen.cdf(upper)
        ppf = lambda q: frozen.ppf(lo + q * (hi - lo))  # noqa: E731
    q = np.array([0.1, 0.5, 0.9])
    ecdf = (draws[:, None] <= ppf(q)[None]).mean(0)
    assert np.all(np.abs(ecdf - q) < 5 * np.sqrt(q * (1 - q) / NUM_DRAWS))


def test_truncated_without_inverse_cdf_has_no_sampler():
    assert D.truncated("Gamma", dict(concentration=2.0, rate=1.0), lower=1.0).sample is None
    assert D.truncated("Poisson", dict(rate=2.0), lower=1.0).sample is None
    with pytest.raises(InternalError):
        D.get("Truncated").sample(jax.random.key(0), (), dist=("Poisson", dict(rate=2.0)),
                                  lower=1.0)
    with pytest.raises(InternalError):
        D.truncated("Dirichlet", dict(concentration=jnp.ones(3)), lower=0.0)


def test_densities_that_are_infinite_at_zero_say_so():
    """x log y at y = 0 has the limit -inf for x > 0 and +inf for x < 0: Gamma and
    ChiSquared with shape below 1, and Weibull with concentration below 1, have an
    infinite density at 0 (scipy agrees); the other side of 1 it is 0 (log -inf)."""
    from pplc.runtime.distributions import get

    assert float(get("Gamma").log_prob(0.0, concentration=0.5, rate=1.0)) == np.inf
    assert float(get("Gamma").log_prob(0.0, concentration=3.0, rate=1.0)) == -np.inf
    assert float(get("ChiSquared").log_prob(0.0, df=1.0)) == np.inf
    assert float(get("Weibull").log_prob(0.0, scale=1.0, concentration=0.5)) == np.inf
    assert float(get("Bernoulli").log_prob(1.0, probs=0.0)) == -np.inf
