"""JAX log densities and samplers for the language's distributions (`frontend.library`).

Each catalogue entry gets a `Distribution` whose `log_prob(value, **params)` is the
normalized, elementwise log density (or mass) with NumPy broadcasting, equal to NumPyro's
`log_prob` inside the support, and whose `sample(key, shape, **params)` draws with
`jax.random`. Parameter names are exactly those of one signature in the catalogue
(`Bernoulli(probs=...)` or `Bernoulli(logits=...)`).

Three choices differ from NumPyro, all because the compiler feeds these functions observed
data and traced parameters:

* Outside the support `log_prob` is `-inf` (a negative or fractional count, a Uniform value
  outside `[low, high]`, ...), so bad data cannot silently contribute a finite term.
  NumPyro returns garbage there unless `validate_args` is on.
* Masked branches use the double-`where` trick: the out-of-support value is replaced by a
  safe one *before* the formula runs, so `jnp.where` never multiplies a zero cotangent by a
  NaN/inf derivative (https://github.com/jax-ml/jax/issues/1052).
* `x log y` uses `_xlogy`, whose derivative is finite at `x = y = 0` (JAX's `xlogy` gives
  NaN there), so e.g. `Bernoulli(probs=0)` observed at 0 has a finite gradient.

Boundaries: a continuous support includes an endpoint where the density has a limit
there: 0 for HalfNormal, HalfCauchy, Exponential and Gamma; 0 and 1 for Beta (NumPyro's
closed `unit_interval`); both ends for Uniform. The limit is returned, and it may be `+inf`
(Beta(0.5, 0.5) at 0). LogNormal's density vanishes at 0, so there `x <= 0` gives `-inf`.
"""

from __future__ import annotations

import math
from typing import Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import betaln, gammaln

from pplc.errors import InternalError
from pplc.frontend.library import DISTRIBUTIONS as _CATALOGUE
from pplc.frontend.library import DistributionInfo

Array = jax.Array

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)


class Distribution(NamedTuple):
    """A catalogue entry with its JAX log density and sampler."""

    info: DistributionInfo
    log_prob: Callable[..., Array]  # log_prob(value, **params) -> elementwise log density
    sample: Callable[..., Array]  # sample(key, shape, **params) -> draws


# ---------------------------------------------------------------------------------------
# Numerical helpers


def _float(x) -> Array:
    """As a floating array (integer data and Python ints become the default float)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _xlogy(x: Array, y: Array) -> Array:
    """x * log(y), 0 where x = y = 0, with finite derivatives there (JAX's gives NaN)."""
    both_zero = (x == 0) & (y == 0)
    return x * jnp.log(jnp.where(both_zero, 1.0, y))


def _xlog1py(x: Array, y: Array) -> Array:
    """x * log1p(y), 0 where x = 0 and y = -1, with finite derivatives there."""
    both_edge = (x == 0) & (y == -1)
    return x * jnp.log1p(jnp.where(both_edge, 0.0, y))


def _masked(ok: Array, value: Array, safe: float, density: Callable[[Array], Array]) -> Array:
    """density(value) where `ok`, else -inf; `value` is swapped for `safe` before the call
    so that the discarded branch yields no NaN gradient (double-where)."""
    lp = density(jnp.where(ok, value, safe))
    return jnp.where(ok, lp, -jnp.inf)


def _is_count(k: Array) -> Array:
    return (k >= 0) & (k == jnp.floor(k))


def _out_shape(shape, *params) -> tuple[int, ...]:
    """The draws' shape: `shape` broadcast with the parameters' shapes (normally `shape`)."""
    return jnp.broadcast_shapes(tuple(shape), *(jnp.shape(p) for p in params))


def _int(x: Array) -> Array:
    """Discrete draws as the default integer dtype (int64 under x64)."""
    return jnp.asarray(x).astype(int)


# ---------------------------------------------------------------------------------------
# Continuous


def _normal_lp(x, loc, scale):
    z = (x - loc) / scale
    return -0.5 * z * z - jnp.log(scale) - _HALF_LOG_2PI


def _normal_sample(key, shape, loc, scale):
    shape = _out_shape(shape, loc, scale)
    return loc + scale * jax.random.normal(key, shape)


def _half_normal_lp(x, scale):
    # Normal(0, scale) folded onto [0, inf): twice the density.
    return _masked(x >= 0, x, 1.0, lambda v: _LOG_2 + _normal_lp(v, 0.0, scale))


def _half_normal_sample(key, shape, scale):
    shape = _out_shape(shape, scale)
    return scale * jnp.abs(jax.random.normal(key, shape))


def _cauchy_lp(x, loc, scale):
    z = (x - loc) / scale
    return -_LOG_PI - jnp.log(scale) - jnp.log1p(z * z)


def _cauchy_sample(key, shape, loc, scale):
    shape = _out_shape(shape, loc, scale)
    return loc + scale * jax.random.cauchy(key, shape)


def _half_cauchy_lp(x, scale):
    return _masked(x >= 0, x, 1.0, lambda v: _LOG_2 + _cauchy_lp(v, 0.0, scale))


def _half_cauchy_sample(key, shape, scale):
    shape = _out_shape(shape, scale)
    return scale * jnp.abs(jax.random.cauchy(key, shape))


def _student_t_lp(x, df, loc, scale):
    z = (x - loc) / scale
    half_df1 = 0.5 * (df + 1.0)
    return (gammaln(half_df1) - gammaln(0.5 * df) - 0.5 * jnp.log(df) - 0.5 * _LOG_PI
            - jnp.log(scale) - half_df1 * jnp.log1p(z * z / df))


def _student_t_sample(key, shape, df, loc, scale):
    shape = _out_shape(shape, df, loc, scale)
    return loc + scale * jax.random.t(key, jnp.broadcast_to(df, shape), shape)


def _log_normal_lp(x, loc, scale):
    # Density of exp(Normal): Normal(log x) / x, zero at x = 0.
    return _masked(x > 0, x, 1.0, lambda v: _normal_lp(jnp.log(v), loc, scale) - jnp.log(v))


def _log_normal_sample(key, shape, loc, scale):
    return jnp.exp(_normal_sample(key, shape, loc, scale))


def _exponential_lp(x, rate):
    return _masked(x >= 0, x, 1.0, lambda v: jnp.log(rate) - rate * v)


def _exponential_sample(key, shape, rate):
    shape = _out_shape(shape, rate)
    return jax.random.exponential(key, shape) / rate


def _gamma_lp(x, concentration, rate):
    def density(v):
        return (_xlogy(concentration, rate) + _xlogy(concentration - 1.0, v) - rate * v
                - gammaln(concentration))
    return _masked(x >= 0, x, 1.0, density)


def _gamma_sample(key, shape, concentration, rate):
    shape = _out_shape(shape, concentration, rate)
    return jax.random.gamma(key, jnp.broadcast_to(concentration, shape), shape) / rate


def _beta_lp(x, concentration1, concentration0):
    def density(v):
        return (_xlogy(concentration1 - 1.0, v) + _xlog1py(concentration0 - 1.0, -v)
                - betaln(concentration1, concentration0))
    return _masked((x >= 0) & (x <= 1), x, 0.5, density)


def _beta_sample(key, shape, concentration1, concentration0):
    shape = _out_shape(shape, concentration1, concentration0)
    return jax.random.beta(key, concentration1, concentration0, shape)


def _uniform_lp(x, low, high):
    ok = (x >= low) & (x <= high)
    return jnp.where(ok, -jnp.log(high - low), -jnp.inf)


def _uniform_sample(key, shape, low, high):
    shape = _out_shape(shape, low, high)
    return low + (high - low) * jax.random.uniform(key, shape)


# ---------------------------------------------------------------------------------------
# Discrete: values are counts held as floats; fractional or negative ones are -inf.


def _poisson_rate_lp(k, rate):
    return _masked(_is_count(k), k, 0.0,
                   lambda v: _xlogy(v, rate) - rate - gammaln(v + 1.0))


def _poisson_log_rate_lp(k, log_rate):
    # k log(rate) - rate - log k!, with rate = exp(log_rate) never formed inside a log.
    return _masked(_is_count(k), k, 0.0,
                   lambda v: v * log_rate - jnp.exp(log_rate) - gammaln(v + 1.0))


def _poisson_rate_sample(key, shape, rate):
    shape = _out_shape(shape, rate)
    return _int(jax.random.poisson(key, jnp.broadcast_to(rate, shape), shape))


def _poisson_log_rate_sample(key, shape, log_rate):
    return _poisson_rate_sample(key, shape, jnp.exp(log_rate))


def _bernoulli_probs_lp(k, probs):
    # log p for k = 1, log(1 - p) for k = 0; each log sees only its own branch's argument.
    def density(v):
        one = v == 1
        return jnp.where(one, jnp.log(jnp.where(one, probs, 1.0)),
                         jnp.log1p(-jnp.where(one, 0.0, probs)))
    return _masked((k == 0) | (k == 1), k, 0.0, density)


def _bernoulli_logits_lp(k, logits):
    # log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l): no cancellation.
    def density(v):
        return jnp.where(v == 1, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
    return _masked((k == 0) | (k == 1), k, 0.0, density)


def _bernoulli_probs_sample(key, shape, probs):
    shape = _out_shape(shape, probs)
    return _int(jax.random.bernoulli(key, probs, shape))


def _bernoulli_logits_sample(key, shape, logits):
    return _bernoulli_probs_sample(key, shape, jax.nn.sigmoid(logits))


def _log_choose(n, k):
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def _binomial_probs_lp(k, total_count, probs):
    def density(v):
        return (_log_choose(total_count, v) + _xlogy(v, probs)
                + _xlog1py(total_count - v, -probs))
    return _masked(_is_count(k) & (k <= total_count), k, 0.0, density)


def _binomial_logits_lp(k, total_count, logits):
    def density(v):
        return (_log_choose(total_count, v) + v * jax.nn.log_sigmoid(logits)
                + (total_count - v) * jax.nn.log_sigmoid(-logits))
    return _masked(_is_count(k) & (k <= total_count), k, 0.0, density)


def _binomial_probs_sample(key, shape, total_count, probs):
    shape = _out_shape(shape, total_count, probs)
    n = jnp.broadcast_to(total_count, shape)
    return _int(jax.random.binomial(key, n, jnp.broadcast_to(probs, shape), shape))


def _binomial_logits_sample(key, shape, total_count, logits):
    return _binomial_probs_sample(key, shape, total_count, jax.nn.sigmoid(logits))


# ---------------------------------------------------------------------------------------
# Binding to the catalogue

# name -> {signature: (log_prob(value, *params), sample(key, shape, *params))}
_IMPLEMENTATIONS: dict[str, dict[tuple[str, ...], tuple[Callable, Callable]]] = {
    "Normal": {("loc", "scale"): (_normal_lp, _normal_sample)},
    "HalfNormal": {("scale",): (_half_normal_lp, _half_normal_sample)},
    "HalfCauchy": {("scale",): (_half_cauchy_lp, _half_cauchy_sample)},
    "Cauchy": {("loc", "scale"): (_cauchy_lp, _cauchy_sample)},
    "StudentT": {("df", "loc", "scale"): (_student_t_lp, _student_t_sample)},
    "LogNormal": {("loc", "scale"): (_log_normal_lp, _log_normal_sample)},
    "Exponential": {("rate",): (_exponential_lp, _exponential_sample)},
    "Gamma": {("concentration", "rate"): (_gamma_lp, _gamma_sample)},
    "Beta": {("concentration1", "concentration0"): (_beta_lp, _beta_sample)},
    "Uniform": {("low", "high"): (_uniform_lp, _uniform_sample)},
    "Poisson": {("rate",): (_poisson_rate_lp, _poisson_rate_sample),
                ("log_rate",): (_poisson_log_rate_lp, _poisson_log_rate_sample)},
    "Bernoulli": {("probs",): (_bernoulli_probs_lp, _bernoulli_probs_sample),
                  ("logits",): (_bernoulli_logits_lp, _bernoulli_logits_sample)},
    "Binomial": {("total_count", "probs"): (_binomial_probs_lp, _binomial_probs_sample),
                 ("total_count", "logits"): (_binomial_logits_lp, _binomial_logits_sample)},
}


def _choose(info: DistributionInfo, params: Mapping[str, object]) -> tuple[str, ...]:
    """The catalogue signature whose names are exactly `params`' keys.

    The frontend has already bound the user's arguments (`library.bind_arguments`), so a
    mismatch here is a bug in pplc, not a user error.
    """
    for signature in info.signatures:
        if set(signature) == set(params):
            return signature
    raise InternalError(f"{info.name} called with parameters {sorted(params)}; "
                        f"expected one of {info.signatures}")


def _bind(info: DistributionInfo) -> Distribution:
    impls = _IMPLEMENTATIONS[info.name]

    def log_prob(value, **params) -> Array:
        signature = _choose(info, params)
        return impls[signature][0](_float(value), *(_float(params[p]) for p in signature))

    def sample(key, shape=(), **params) -> Array:
        signature = _choose(info, params)
        return impls[signature][1](key, shape, *(_float(params[p]) for p in signature))

    log_prob.__name__ = f"{info.name}_log_prob"
    log_prob.__doc__ = (f"Elementwise log density of {info.name} at `value`; parameters "
                        f"by keyword: {' | '.join(map(str, info.signatures))}.")
    sample.__name__ = f"{info.name}_sample"
    sample.__doc__ = (f"Draws of {info.name} of shape `shape` broadcast with the "
                      "parameters' shapes.")
    return Distribution(info, log_prob, sample)


DISTRIBUTIONS: dict[str, Distribution] = {name: _bind(info) for name, info in _CATALOGUE.items()}


def get(name: str) -> Distribution:
    """The JAX implementation of catalogue distribution `name`.

    >>> import jax.numpy as jnp
    >>> lp = get("Poisson").log_prob(jnp.array(2), log_rate=0.0)  # log(e^-1 / 2!)
    >>> round(float(lp), 9)
    -1.693147181
    """
    try:
        return DISTRIBUTIONS[name]
    except KeyError:
        raise InternalError(f"no JAX implementation of distribution '{name}'") from None


def support_bounds(info_or_name: DistributionInfo | str,
                   params: Mapping[str, object]) -> tuple[Array | None, Array | None]:
    """Evaluate a support's (lower, upper): a parameter name gives that parameter's value,
    a number gives itself (as an array), None gives None.

    The bounds feed `transforms.transform_for` for latent variables whose support moves
    with other variables (`b ~ Uniform(0, 1 - a)`), so they may be traced values.
    """
    info = _CATALOGUE[info_or_name] if isinstance(info_or_name, str) else info_or_name

    def evaluate(bound):
        if bound is None:
            return None
        if isinstance(bound, str):
            if bound not in params:
                raise InternalError(f"support bound '{bound}' of {info.name} is not among "
                                    f"the parameters {sorted(params)}")
            return _float(params[bound])
        return _float(bound)

    return evaluate(info.support.lower), evaluate(info.support.upper)
