"""JAX log densities and samplers for the language's distributions (`frontend.library`).

Each catalogue entry gets a `Distribution` whose `log_prob(value, **params)` is the
normalized log density (or mass) with NumPy broadcasting, equal to NumPyro's `log_prob`
inside the support, and whose `sample(key, shape, **params)` draws with `jax.random`.
Parameter names are exactly those of one signature in the catalogue
(`Bernoulli(probs=...)` or `Bernoulli(logits=...)`).

Event shapes. A value's last `info.event_ndim` axes form one draw (a Dirichlet simplex, an
LKJCholesky matrix). `shapes(**params) -> (batch_shape, event_shape)` reads only the
parameters' shapes (it works on tracers and `jax.ShapeDtypeStruct`s); LKJCholesky's `dim`
is a static Python int, and the trailing axis of Categorical's `probs`/`logits` and of
OrderedLogistic's `cutpoints` is the category axis, not a batch axis. `log_prob` returns
one number per event: the shape `value.shape[:value.ndim - event_ndim]` broadcast with
`batch_shape`. `sample(key, shape)` takes the full value shape (batch + event) and
broadcasts it with `batch_shape + event_shape`.

CDFs and truncation. The continuous scalar distributions (and Poisson and Binomial) also
have `cdf`, `log_cdf` and `log_ccdf` (log of 1 - cdf, for far upper tails), evaluated
on the whole real line (0 or 1 outside the support). Those with a closed-form inverse
(Normal, HalfNormal, Cauchy, HalfCauchy, Laplace, Logistic, LogNormal, Exponential,
Weibull, Uniform) also have `icdf` and `iccdf` (the inverse of 1 - cdf). `truncated(...)`
builds `Truncated(DIST, lower, upper)` from them; see its docstring. JAX has no gradient
of `betainc` with respect to its shape arguments, so the CDFs of Beta, StudentT and
HalfStudentT (and so their truncations) are not differentiable in `df` and the Beta
concentrations: differentiating them there raises.

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
from jax.scipy.special import (betainc, betaln, gammainc, gammaincc, gammaln, log_ndtr,
                               multigammaln, ndtri)

from pplc.errors import InternalError
from pplc.frontend.library import DISTRIBUTIONS as _CATALOGUE
from pplc.frontend.library import AxisLength, DistributionInfo

Array = jax.Array

_LOG_2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)


Shape = tuple[int, ...]


class Distribution(NamedTuple):
    """A catalogue entry with its JAX log density and sampler (module docstring).

    The CDF fields are None where the distribution has none (discrete and multivariate
    ones other than Poisson and Binomial; `icdf`/`iccdf` where there is no closed form).
    """

    info: DistributionInfo
    log_prob: Callable[..., Array]  # log_prob(value, **params) -> log density per event
    sample: Callable[..., Array]  # sample(key, shape, **params) -> draws of value shape
    shapes: Callable[..., tuple[Shape, Shape]]  # shapes(**params) -> (batch, event)
    cdf: Callable[..., Array] | None = None  # cdf(value, **params) = P(X <= value)
    log_cdf: Callable[..., Array] | None = None  # log P(X <= value)
    log_ccdf: Callable[..., Array] | None = None  # log P(X > value)
    icdf: Callable[..., Array] | None = None  # icdf(q, **params): the x with cdf(x) = q
    iccdf: Callable[..., Array] | None = None  # iccdf(s, **params): 1 - cdf(x) = s


# ---------------------------------------------------------------------------------------
# Numerical helpers


def _float(x) -> Array:
    """As a floating array (integer data and Python ints become the default float)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _xlogy(x: Array, y: Array) -> Array:
    """x * log(y), 0 where x = y = 0 and -inf where x > 0 = y, with finite derivatives
    everywhere (JAX's gives NaN). A zero-inflated model sums such -inf terms in a
    logsumexp: a NaN derivative there would poison the whole gradient."""
    y_zero = y == 0
    safe = jnp.log(jnp.where(y_zero, 1.0, y))
    return jnp.where(y_zero, jnp.where(x == 0, 0.0, -jnp.inf), x * safe)


def _xlog1py(x: Array, y: Array) -> Array:
    """x * log1p(y), 0 where x = 0 and y = -1, with finite derivatives there."""
    both_edge = (x == 0) & (y == -1)
    return x * jnp.log1p(jnp.where(both_edge, 0.0, y))


def _masked(ok: Array, value: Array, safe: float, density: Callable[[Array], Array]) -> Array:
    """density(value) where `ok`, else -inf; `value` is swapped for `safe` before the call
    so that the discarded branch yields no NaN gradient (double-where)."""
    lp = density(jnp.where(ok, value, safe))
    return jnp.where(ok, lp, -jnp.inf)


def _log1mexp(x: Array) -> Array:
    """log(1 - exp(x)) for x <= 0, accurate at both ends (Maechler 2012): expm1 near 0,
    log1p far out; each branch sees only its own arguments (double-where)."""
    near = x > -_LOG_2
    return jnp.where(near, jnp.log(-jnp.expm1(jnp.where(near, x, -1.0))),
                     jnp.log1p(-jnp.exp(jnp.where(near, -1.0, x))))


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


def _softplus(x):
    """log(1 + e^x) as max(x, 0) + log1p(e^-|x|): exact in both tails, and several times
    cheaper in a gradient than jax.nn.log_sigmoid / softplus (whose logaddexp carries extra
    selects and an inf check) on XLA:CPU: a 5000-row Bernoulli-logit term costs 17 us per
    value-and-gradient against 99-116 us."""
    return jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


def _bernoulli_logits_lp(k, logits):
    # log sigmoid(l) = -softplus(-l) for k = 1, log sigmoid(-l) = -softplus(l) for k = 0:
    # one softplus of the sign-flipped logit, with full relative accuracy in both tails.
    def density(v):
        return -_softplus(jnp.where(v == 1, -logits, logits))
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
        return (_log_choose(total_count, v) - v * _softplus(-logits)
                - (total_count - v) * _softplus(logits))
    return _masked(_is_count(k) & (k <= total_count), k, 0.0, density)


def _binomial_probs_sample(key, shape, total_count, probs):
    shape = _out_shape(shape, total_count, probs)
    n = jnp.broadcast_to(total_count, shape)
    return _int(jax.random.binomial(key, n, jnp.broadcast_to(probs, shape), shape))


def _binomial_logits_sample(key, shape, total_count, logits):
    return _binomial_probs_sample(key, shape, total_count, jax.nn.sigmoid(logits))




def _laplace_lp(x, loc, scale):
    return -_LOG_2 - jnp.log(scale) - jnp.abs(x - loc) / scale


def _laplace_sample(key, shape, loc, scale):
    shape = _out_shape(shape, loc, scale)
    return loc + scale * jax.random.laplace(key, shape)


def _logistic_lp(x, loc, scale):
    # z = (x - loc) / scale; density e^-z / (scale (1 + e^-z)^2), softplus for no overflow.
    z = (x - loc) / scale
    return -z - jnp.log(scale) - 2.0 * jax.nn.softplus(-z)


def _logistic_sample(key, shape, loc, scale):
    shape = _out_shape(shape, loc, scale)
    return loc + scale * jax.random.logistic(key, shape)


def _half_student_t_lp(x, df, scale):
    return _masked(x >= 0, x, 1.0, lambda v: _LOG_2 + _student_t_lp(v, df, 0.0, scale))


def _half_student_t_sample(key, shape, df, scale):
    return jnp.abs(_student_t_sample(key, shape, df, 0.0, scale))


def _inverse_gamma_lp(x, concentration, scale):
    # Density of 1 / Gamma(concentration, rate=scale); it vanishes at 0, so x <= 0 is -inf.
    def density(v):
        return (_xlogy(concentration, scale) - gammaln(concentration)
                - (concentration + 1.0) * jnp.log(v) - scale / v)
    return _masked(x > 0, x, 1.0, density)


def _inverse_gamma_sample(key, shape, concentration, scale):
    return 1.0 / _gamma_sample(key, shape, concentration, scale)


def _weibull_lp(x, scale, concentration):
    # log k - log lambda + (k - 1) log(x / lambda) - (x / lambda)^k, with its limit at 0.
    def density(v):
        z = v / scale
        return (jnp.log(concentration) - jnp.log(scale) + _xlogy(concentration - 1.0, z)
                - z ** concentration)
    return _masked(x >= 0, x, 1.0, density)


def _weibull_sample(key, shape, scale, concentration):
    shape = _out_shape(shape, scale, concentration)
    return scale * jax.random.exponential(key, shape) ** (1.0 / concentration)


def _chi_squared_lp(x, df):
    return _gamma_lp(x, 0.5 * df, 0.5)


def _chi_squared_sample(key, shape, df):
    return _gamma_sample(key, shape, 0.5 * df, 0.5)


# ---------------------------------------------------------------------------------------
# CDFs of the continuous scalar distributions: (cdf, log_cdf, log_ccdf, icdf, iccdf), each
# taking (x, *params) in signature order. They are evaluated on the whole real line: a
# value below the support has cdf 0, one above it cdf 1, and the arguments of special
# functions are made safe there first (double-where) so that gradients stay finite.


def _symmetric(std_log_cdf, std_icdf=None):
    """CDFs of loc + scale * Z for a Z symmetric about 0: P(X > x) = P(Z <= -z)."""
    def log_cdf(x, loc, scale):
        return std_log_cdf((x - loc) / scale)

    def log_ccdf(x, loc, scale):
        return std_log_cdf((loc - x) / scale)

    def cdf(x, loc, scale):
        return jnp.exp(log_cdf(x, loc, scale))

    if std_icdf is None:
        return cdf, log_cdf, log_ccdf, None, None
    return (cdf, log_cdf, log_ccdf,
            lambda q, loc, scale: loc + scale * std_icdf(q),
            lambda s, loc, scale: loc - scale * std_icdf(s))


def _cauchy_std_log_cdf(z):
    # atan2(1, -z) / pi is the CDF without the cancellation of 1/2 + atan(z) / pi at z << 0.
    return jnp.log(jnp.arctan2(1.0, -z)) - _LOG_PI


def _laplace_std_log_cdf(z):
    neg = z < 0
    return jnp.where(neg, jnp.where(neg, z, 0.0) - _LOG_2,
                     jnp.log1p(-0.5 * jnp.exp(-jnp.where(neg, 0.0, z))))


def _laplace_std_icdf(q):
    return -jnp.sign(q - 0.5) * jnp.log1p(-2.0 * jnp.abs(q - 0.5))


def _student_t_std_log_cdf(z, df):
    # P(T <= -|z|) = I_{df / (df + z^2)}(df / 2, 1 / 2) / 2 (regularized incomplete beta).
    # Its derivative in z is 0 * inf at z = 0, so there (|z| < 1e-8) F = 1/2 + p(0) z, whose
    # error O(z^3) is far below rounding, and the betainc branch sees a safe z.
    near_zero = jnp.abs(z) < 1e-8
    z_safe = jnp.where(near_zero, 1.0, z)
    tail = 0.5 * betainc(0.5 * df, 0.5, df / (df + z_safe * z_safe))
    far = jnp.where(z_safe < 0, jnp.log(tail), jnp.log1p(-tail))
    log_density_at_0 = (gammaln(0.5 * (df + 1.0)) - gammaln(0.5 * df)
                        - 0.5 * jnp.log(df * math.pi))
    near = jnp.log(0.5 + jnp.exp(log_density_at_0) * jnp.where(near_zero, z, 0.0))
    return jnp.where(near_zero, near, far)


def _student_t_cdfs():
    def log_cdf(x, df, loc, scale):
        return _student_t_std_log_cdf((x - loc) / scale, df)

    def log_ccdf(x, df, loc, scale):
        return _student_t_std_log_cdf((loc - x) / scale, df)

    return (lambda x, df, loc, scale: jnp.exp(log_cdf(x, df, loc, scale)),
            log_cdf, log_ccdf, None, None)


def _from_log(log_cdf, log_ccdf, icdf=None, iccdf=None):
    return (lambda x, *p: jnp.exp(log_cdf(x, *p)), log_cdf, log_ccdf, icdf, iccdf)


def _positive_part(x):
    """(x > 0, x where positive else 1): for CDFs of distributions on [0, inf)."""
    pos = x > 0
    return pos, jnp.where(pos, x, 1.0)


def _half(std_log_cdf, std_icdf=None):
    """CDFs of scale * |Z| for Z symmetric about 0 with log CDF `std_log_cdf(z, *shape)`:
    P(|Z| > z) = 2 P(Z <= -z)."""
    def log_ccdf(x, *p):
        pos, v = _positive_part(x)
        *shape_params, scale = p
        return jnp.where(pos, _LOG_2 + std_log_cdf(-v / scale, *shape_params), 0.0)

    def log_cdf(x, *p):
        pos, v = _positive_part(x)
        return jnp.where(pos, _log1mexp(log_ccdf(v, *p)), -jnp.inf)

    if std_icdf is None:
        return _from_log(log_cdf, log_ccdf)
    return _from_log(log_cdf, log_ccdf,
                     lambda q, scale: scale * std_icdf(0.5 + 0.5 * q),
                     lambda s, scale: -scale * std_icdf(0.5 * s))


def _log_normal_cdfs():
    def log_cdf(x, loc, scale):
        pos, v = _positive_part(x)
        return jnp.where(pos, log_ndtr((jnp.log(v) - loc) / scale), -jnp.inf)

    def log_ccdf(x, loc, scale):
        pos, v = _positive_part(x)
        return jnp.where(pos, log_ndtr((loc - jnp.log(v)) / scale), 0.0)

    return _from_log(log_cdf, log_ccdf, lambda q, loc, scale: jnp.exp(loc + scale * ndtri(q)),
                     lambda s, loc, scale: jnp.exp(loc - scale * ndtri(s)))


def _weibull_cdfs():
    # P(X > x) = exp(-(x / scale)^k); the exponential is Weibull with k = 1, scale 1/rate.
    def log_ccdf(x, scale, concentration):
        pos, v = _positive_part(x)
        return jnp.where(pos, -(v / scale) ** concentration, 0.0)

    def log_cdf(x, scale, concentration):
        pos, v = _positive_part(x)
        return jnp.where(pos, _log1mexp(log_ccdf(v, scale, concentration)), -jnp.inf)

    def icdf(q, scale, concentration):
        return scale * (-jnp.log1p(-q)) ** (1.0 / concentration)

    def iccdf(s, scale, concentration):
        return scale * (-jnp.log(s)) ** (1.0 / concentration)

    return _from_log(log_cdf, log_ccdf, icdf, iccdf)


def _exponential_cdfs():
    w = _weibull_cdfs()
    return tuple(None if f is None else (lambda f: lambda x, rate: f(x, 1.0 / rate, 1.0))(f)
                 for f in w)


def _gamma_like_cdfs(to_gamma):
    """CDFs of a distribution whose CDF is P(Gamma(a, 1) <= g(x)): `to_gamma(x, *params)`
    returns (a, g(x)) for x > 0. Regularized incomplete gammas; their logs lose accuracy
    only where the tail mass underflows."""
    def log_cdf(x, *p):
        pos, v = _positive_part(x)
        a, g = to_gamma(v, *p)
        return jnp.where(pos, jnp.log(gammainc(a, g)), -jnp.inf)

    def log_ccdf(x, *p):
        pos, v = _positive_part(x)
        a, g = to_gamma(v, *p)
        return jnp.where(pos, jnp.log(gammaincc(a, g)), 0.0)

    return _from_log(log_cdf, log_ccdf)


def _inverse_gamma_cdfs():
    # P(1/Y <= x) = P(Y >= scale / x) for Y ~ Gamma(concentration, 1): the tails swap.
    def log_cdf(x, concentration, scale):
        pos, v = _positive_part(x)
        return jnp.where(pos, jnp.log(gammaincc(concentration, scale / v)), -jnp.inf)

    def log_ccdf(x, concentration, scale):
        pos, v = _positive_part(x)
        return jnp.where(pos, jnp.log(gammainc(concentration, scale / v)), 0.0)

    return _from_log(log_cdf, log_ccdf)


def _beta_cdfs():
    def parts(x):
        inside = (x > 0) & (x < 1)
        return inside, jnp.where(inside, x, 0.5)

    def log_cdf(x, c1, c0):
        inside, v = parts(x)
        return jnp.where(inside, jnp.log(betainc(c1, c0, v)), jnp.where(x <= 0, -jnp.inf, 0.0))

    def log_ccdf(x, c1, c0):
        inside, v = parts(x)
        return jnp.where(inside, jnp.log(betainc(c0, c1, 1.0 - v)),
                         jnp.where(x <= 0, 0.0, -jnp.inf))

    return _from_log(log_cdf, log_ccdf)


def _uniform_cdfs():
    def cdf(x, low, high):
        return jnp.clip((x - low) / (high - low), 0.0, 1.0)

    def log_cdf(x, low, high):
        return jnp.log(cdf(x, low, high))

    def log_ccdf(x, low, high):
        return jnp.log(jnp.clip((high - x) / (high - low), 0.0, 1.0))

    return (cdf, log_cdf, log_ccdf, lambda q, low, high: low + (high - low) * q,
            lambda s, low, high: high - (high - low) * s)


_CDFS: dict[str, tuple] = {
    "Normal": _symmetric(log_ndtr, ndtri),
    "Cauchy": _symmetric(_cauchy_std_log_cdf, lambda q: jnp.tan(math.pi * (q - 0.5))),
    "Laplace": _symmetric(_laplace_std_log_cdf, _laplace_std_icdf),
    "Logistic": _symmetric(jax.nn.log_sigmoid, jax.scipy.special.logit),
    "StudentT": _student_t_cdfs(),
    "HalfNormal": _half(log_ndtr, ndtri),
    "HalfCauchy": _half(_cauchy_std_log_cdf, lambda q: jnp.tan(math.pi * (q - 0.5))),
    "HalfStudentT": _half(_student_t_std_log_cdf),
    "LogNormal": _log_normal_cdfs(),
    "Exponential": _exponential_cdfs(),
    "Weibull": _weibull_cdfs(),
    "Gamma": _gamma_like_cdfs(lambda x, concentration, rate: (concentration, rate * x)),
    "ChiSquared": _gamma_like_cdfs(lambda x, df: (0.5 * df, 0.5 * x)),
    "InverseGamma": _inverse_gamma_cdfs(),
    "Beta": _beta_cdfs(),
    "Uniform": _uniform_cdfs(),
}


def _poisson_cdfs(rate_of):
    """P(X <= x) = Q(floor(x) + 1, rate) (regularized upper incomplete gamma), 0 below 0."""
    def parts(x, p):
        ok = x >= 0
        return ok, jnp.floor(jnp.where(ok, x, 0.0)) + 1.0, rate_of(p)

    def log_cdf(x, p):
        ok, a, rate = parts(x, p)
        return jnp.where(ok, jnp.log(gammaincc(a, rate)), -jnp.inf)

    def log_ccdf(x, p):
        ok, a, rate = parts(x, p)
        return jnp.where(ok, jnp.log(gammainc(a, rate)), 0.0)

    return _from_log(log_cdf, log_ccdf)


def _binomial_cdfs(probs_of):
    """P(X <= k) = I_{1-p}(n - k, k + 1) (regularized incomplete beta) for 0 <= k < n."""
    def parts(x, n, p):
        k = jnp.floor(x)
        inside = (k >= 0) & (k < n)
        k = jnp.where(inside, k, 0.0)
        return inside, k, jnp.where(inside, n, 1.0), probs_of(p)

    def log_cdf(x, n, p):
        inside, k, n_, probs = parts(x, n, p)
        return jnp.where(inside, jnp.log(betainc(n_ - k, k + 1.0, 1.0 - probs)),
                         jnp.where(x < 0, -jnp.inf, 0.0))

    def log_ccdf(x, n, p):
        inside, k, n_, probs = parts(x, n, p)
        return jnp.where(inside, jnp.log(betainc(k + 1.0, n_ - k, probs)),
                         jnp.where(x < 0, 0.0, -jnp.inf))

    return _from_log(log_cdf, log_ccdf)


def _negative_binomial_lp(k, mean, concentration):
    # Gamma-Poisson with rate concentration / mean (NumPyro's NegativeBinomial2):
    # C(k + phi - 1, k) (phi / (phi + mu))^phi (mu / (phi + mu))^k.
    def density(v):
        phi = concentration
        log_total = jnp.log(phi + mean)
        return (gammaln(v + phi) - gammaln(phi) - gammaln(v + 1.0)
                + phi * (jnp.log(phi) - log_total) + _xlogy(v, mean) - v * log_total)
    return _masked(_is_count(k), k, 0.0, density)


def _negative_binomial_sample(key, shape, mean, concentration):
    shape = _out_shape(shape, mean, concentration)
    key_gamma, key_poisson = jax.random.split(key)
    rate = _gamma_sample(key_gamma, shape, concentration, concentration / mean)
    return _int(jax.random.poisson(key_poisson, rate, shape))


def _beta_binomial_lp(k, concentration1, concentration0, total_count):
    def density(v):
        return (_log_choose(total_count, v)
                + betaln(v + concentration1, total_count - v + concentration0)
                - betaln(concentration1, concentration0))
    return _masked(_is_count(k) & (k <= total_count), k, 0.0, density)


def _beta_binomial_sample(key, shape, concentration1, concentration0, total_count):
    shape = _out_shape(shape, concentration1, concentration0, total_count)
    key_beta, key_binomial = jax.random.split(key)
    probs = _beta_sample(key_beta, shape, concentration1, concentration0)
    return _binomial_probs_sample(key_binomial, shape, total_count, probs)


# ---------------------------------------------------------------------------------------
# Categorical and OrderedLogistic: scalar values, a trailing category axis on a parameter.


def _take_last(table: Array, k: Array, batch: Shape) -> Array:
    """table[..., k] over the broadcast batch; `k` must already be a valid index."""
    table = jnp.broadcast_to(table, batch + table.shape[-1:])
    index = jnp.broadcast_to(k, batch).astype(int)[..., None]
    return jnp.take_along_axis(table, index, axis=-1)[..., 0]


def _category_lp(k, table, log_of_entry):
    """log_of_entry(table[..., k]) for a count k < K = table.shape[-1], else -inf.

    The entry is picked *before* its log is taken: the log of an unpicked zero
    probability would otherwise send 0 * inf = NaN into the gradient."""
    num = table.shape[-1]
    ok = _is_count(k) & (k <= num - 1)
    batch = jnp.broadcast_shapes(k.shape, table.shape[:-1])
    entry = _take_last(table, jnp.where(ok, k, 0.0), batch)
    return jnp.where(ok, log_of_entry(entry), -jnp.inf)


def _categorical_probs_lp(k, probs):
    return _category_lp(k, probs, jnp.log)  # as NumPyro: probs are not renormalized


def _categorical_logits_lp(k, logits):
    return _category_lp(k, jax.nn.log_softmax(logits, axis=-1), lambda lp: lp)


def _categorical_logits_sample(key, shape, logits):
    shape = jnp.broadcast_shapes(tuple(shape), logits.shape[:-1])
    return _int(jax.random.categorical(key, jnp.broadcast_to(logits, shape + logits.shape[-1:]),
                                       axis=-1))


def _categorical_probs_sample(key, shape, probs):
    return _categorical_logits_sample(key, shape, jnp.log(probs))


def _ordered_logistic_lp(k, predictor, cutpoints):
    # P(Y = k) = sigmoid(c_k - eta) - sigmoid(c_{k-1} - eta), c_{-1} = -inf, c_K = inf.
    # log(sigmoid(a) - sigmoid(b)) = log sigmoid(a) + log1mexp(log sigmoid(b) - log
    # sigmoid(a)), or the same with (-b, -a) (sigmoid(a) - sigmoid(b) = sigmoid(-b) -
    # sigmoid(-a)), whichever has the smaller leading term, so no tail cancels.
    num = cutpoints.shape[-1]
    ok = _is_count(k) & (k <= num)
    batch = jnp.broadcast_shapes(k.shape, predictor.shape, cutpoints.shape[:-1])
    inf = jnp.full(cutpoints.shape[:-1] + (1,), jnp.inf)
    padded = jnp.concatenate([-inf, cutpoints, inf], axis=-1)
    safe_k = jnp.where(ok, k, 0.0)
    a = _take_last(padded, safe_k + 1.0, batch) - predictor
    b = _take_last(padded, safe_k, batch) - predictor
    log_sig = jax.nn.log_sigmoid
    use_upper = log_sig(-b) < log_sig(a)
    big = jnp.where(use_upper, log_sig(-b), log_sig(a))
    small = jnp.where(use_upper, log_sig(-a), log_sig(b))
    return jnp.where(ok, big + _log1mexp(small - big), -jnp.inf)


def _ordered_logistic_sample(key, shape, predictor, cutpoints):
    # Y = #{j : c_j < eta + eps}, eps ~ Logistic(0, 1): P(Y <= k) = sigmoid(c_k - eta).
    shape = jnp.broadcast_shapes(tuple(shape), predictor.shape, cutpoints.shape[:-1])
    latent = predictor + jax.random.logistic(key, shape)
    return _int(jnp.sum(cutpoints < latent[..., None], axis=-1))


# ---------------------------------------------------------------------------------------
# Multivariate: log_prob sums over the event axes. The support checks use NumPyro's
# tolerance of 1e-6 on sums and norms.

_TOL = 1e-6


def _dirichlet_lp(x, concentration):
    def density(v):
        return (jnp.sum(_xlogy(concentration - 1.0, v), axis=-1)
                + gammaln(jnp.sum(concentration, axis=-1))
                - jnp.sum(gammaln(concentration), axis=-1))
    ok = jnp.all(x >= 0, axis=-1) & (jnp.abs(jnp.sum(x, axis=-1) - 1.0) < _TOL)
    num = x.shape[-1]
    lp = density(jnp.where(ok[..., None], x, 1.0 / num))
    return jnp.where(ok, lp, -jnp.inf)


def _dirichlet_sample(key, shape, concentration):
    shape = jnp.broadcast_shapes(tuple(shape), concentration.shape)
    return jax.random.dirichlet(key, jnp.broadcast_to(concentration, shape), shape[:-1])


def _multinomial_lp(x, total_count, probs):
    def density(v):
        return (gammaln(total_count + 1.0) - jnp.sum(gammaln(v + 1.0), axis=-1)
                + jnp.sum(_xlogy(v, probs), axis=-1))
    ok = jnp.all(_is_count(x), axis=-1) & (jnp.sum(x, axis=-1) == total_count)
    lp = density(jnp.where(ok[..., None], x, 0.0))
    return jnp.where(ok, lp, -jnp.inf)


def _multinomial_sample(key, shape, total_count, probs):
    shape = jnp.broadcast_shapes(tuple(shape), total_count.shape + (1,), probs.shape)
    n = jnp.broadcast_to(total_count, shape[:-1])
    return _int(jax.random.multinomial(key, n, jnp.broadcast_to(probs, shape), shape=shape))


def _mvn_scale_tril_lp(x, loc, scale_tril):
    # -|L^-1 (x - mu)|^2 / 2 - sum(log diag L) - k/2 log(2 pi)
    diff = x - loc
    batch = jnp.broadcast_shapes(diff.shape[:-1], scale_tril.shape[:-2])
    num = scale_tril.shape[-1]
    chol = jnp.broadcast_to(scale_tril, batch + (num, num))
    diff = jnp.broadcast_to(diff, batch + (num,))
    z = jax.scipy.linalg.solve_triangular(chol, diff[..., None], lower=True)[..., 0]
    half_log_det = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * jnp.sum(z * z, axis=-1) - half_log_det - num * _HALF_LOG_2PI


def _mvn_cov_lp(x, loc, cov):
    return _mvn_scale_tril_lp(x, loc, jnp.linalg.cholesky(cov))


def _mvn_scale_tril_sample(key, shape, loc, scale_tril):
    shape = jnp.broadcast_shapes(tuple(shape), loc.shape, scale_tril.shape[:-1])
    z = jax.random.normal(key, shape)
    return loc + jnp.einsum("...ij,...j->...i", scale_tril, z)


def _mvn_cov_sample(key, shape, loc, cov):
    return _mvn_scale_tril_sample(key, shape, loc, jnp.linalg.cholesky(cov))


def _lkj_cholesky_lp(x, dim, concentration):
    # Density of the Cholesky factor L (NumPyro's LKJCholesky; Lewandowski, Kurowicka and
    # Joe 2009): prod_{i=2..D} L_ii^(2 eta - 2 + D - i) over the normalizer
    # (D-1)/2 log pi + log Gamma_{D-1}(alpha - 1/2) - (D-1) log Gamma(alpha),
    # alpha = eta + (D-1)/2; the first factor is det(C)^(eta-1), the rest the Jacobian of
    # L -> C = L L^T.
    tril = jnp.tril(x)
    diag = jnp.diagonal(x, axis1=-2, axis2=-1)
    ok = (jnp.all(tril == x, axis=(-2, -1)) & jnp.all(diag > 0, axis=-1)
          & jnp.all(jnp.abs(jnp.sum(x * x, axis=-1) - 1.0) <= _TOL, axis=-1))
    diag = jnp.where(ok[..., None], diag, 1.0)[..., 1:]
    i = jnp.arange(2, dim + 1)
    order = 2.0 * concentration[..., None] - 2.0 + dim - i
    unnormalized = jnp.sum(order * jnp.log(diag), axis=-1)
    dm1 = dim - 1
    alpha = concentration + 0.5 * dm1
    log_normalizer = (0.5 * dm1 * _LOG_PI + multigammaln(alpha - 0.5, dm1)
                      - dm1 * gammaln(alpha))
    return jnp.where(ok, unnormalized - log_normalizer, -jnp.inf)


def _lkj_cholesky_sample(key, shape, dim, concentration):
    # The onion method (Lewandowski+ 2009, sec. 3.2; NumPyro's default): row i of the
    # factor is (w_i, sqrt(1 - |w_i|^2), 0...), w_i = sqrt(y_i) u_i with u_i uniform on the
    # sphere in R^i and y_i ~ Beta(i/2, eta + (D-2)/2 - (i-1)/2).
    shape = jnp.broadcast_shapes(tuple(shape), concentration.shape + (dim, dim))
    batch = shape[:-2]
    key_beta, key_normal = jax.random.split(key)
    offset = 0.5 * jnp.arange(dim - 1)
    c0 = (concentration + 0.5 * (dim - 2))[..., None] - offset
    y = _beta_sample(key_beta, batch + (dim - 1,), offset + 0.5, c0)
    normal = jnp.tril(jax.random.normal(key_normal, batch + (dim - 1, dim - 1)))
    u = normal / jnp.linalg.norm(normal, axis=-1, keepdims=True)
    w = jnp.sqrt(y)[..., None] * u
    chol = jnp.zeros(shape).at[..., 1:, :-1].set(w)
    diag = jnp.concatenate([jnp.ones(batch + (1,)), jnp.sqrt(1.0 - y)], axis=-1)
    return chol + diag[..., None] * jnp.eye(dim)


# ---------------------------------------------------------------------------------------
# Shapes: (batch_shape, event_shape) from the parameters' shapes only.


def _broadcast(*shapes) -> Shape:
    return tuple(jnp.broadcast_shapes(*(tuple(s) for s in shapes)))


def _scalar_shapes(**params) -> tuple[Shape, Shape]:
    return _broadcast(*(jnp.shape(p) for p in params.values())), ()


def _categorical_shapes(**params):
    (table,) = params.values()
    return tuple(jnp.shape(table)[:-1]), ()


def _ordered_logistic_shapes(predictor, cutpoints):
    return _broadcast(jnp.shape(predictor), jnp.shape(cutpoints)[:-1]), ()


def _dirichlet_shapes(concentration):
    shape = tuple(jnp.shape(concentration))
    return shape[:-1], shape[-1:]


def _multinomial_shapes(total_count, probs):
    shape = tuple(jnp.shape(probs))
    return _broadcast(jnp.shape(total_count), shape[:-1]), shape[-1:]


def _mvn_shapes(loc, cov=None, scale_tril=None):
    matrix = tuple(jnp.shape(cov if scale_tril is None else scale_tril))
    loc = tuple(jnp.shape(loc))
    return _broadcast(loc[:-1], matrix[:-2]), _broadcast(loc[-1:], matrix[-1:])


def _lkj_cholesky_shapes(dim, concentration):
    return tuple(jnp.shape(concentration)), (dim, dim)


_SHAPES: dict[str, Callable[..., tuple[Shape, Shape]]] = {
    "Categorical": _categorical_shapes,
    "OrderedLogistic": _ordered_logistic_shapes,
    "Dirichlet": _dirichlet_shapes,
    "Multinomial": _multinomial_shapes,
    "MultivariateNormal": _mvn_shapes,
    "LKJCholesky": _lkj_cholesky_shapes,
}


# ---------------------------------------------------------------------------------------
# Binding to the catalogue

# name -> {signature: (log_prob(value, *params), sample(key, shape, *params))}
_IMPLEMENTATIONS: dict[str, dict[tuple[str, ...], tuple[Callable, Callable]]] = {
    "Normal": {("loc", "scale"): (_normal_lp, _normal_sample)},
    "HalfNormal": {("scale",): (_half_normal_lp, _half_normal_sample)},
    "HalfCauchy": {("scale",): (_half_cauchy_lp, _half_cauchy_sample)},
    "Cauchy": {("loc", "scale"): (_cauchy_lp, _cauchy_sample)},
    "StudentT": {("df", "loc", "scale"): (_student_t_lp, _student_t_sample)},
    "HalfStudentT": {("df", "scale"): (_half_student_t_lp, _half_student_t_sample)},
    "Laplace": {("loc", "scale"): (_laplace_lp, _laplace_sample)},
    "Logistic": {("loc", "scale"): (_logistic_lp, _logistic_sample)},
    "LogNormal": {("loc", "scale"): (_log_normal_lp, _log_normal_sample)},
    "Exponential": {("rate",): (_exponential_lp, _exponential_sample)},
    "Gamma": {("concentration", "rate"): (_gamma_lp, _gamma_sample)},
    "InverseGamma": {("concentration", "scale"): (_inverse_gamma_lp, _inverse_gamma_sample)},
    "Weibull": {("scale", "concentration"): (_weibull_lp, _weibull_sample)},
    "ChiSquared": {("df",): (_chi_squared_lp, _chi_squared_sample)},
    "Beta": {("concentration1", "concentration0"): (_beta_lp, _beta_sample)},
    "Uniform": {("low", "high"): (_uniform_lp, _uniform_sample)},
    "Poisson": {("rate",): (_poisson_rate_lp, _poisson_rate_sample),
                ("log_rate",): (_poisson_log_rate_lp, _poisson_log_rate_sample)},
    "Bernoulli": {("probs",): (_bernoulli_probs_lp, _bernoulli_probs_sample),
                  ("logits",): (_bernoulli_logits_lp, _bernoulli_logits_sample)},
    "Binomial": {("total_count", "probs"): (_binomial_probs_lp, _binomial_probs_sample),
                 ("total_count", "logits"): (_binomial_logits_lp, _binomial_logits_sample)},
    "NegativeBinomial": {("mean", "concentration"): (_negative_binomial_lp,
                                                     _negative_binomial_sample)},
    "BetaBinomial": {("concentration1", "concentration0", "total_count"):
                     (_beta_binomial_lp, _beta_binomial_sample)},
    "Categorical": {("probs",): (_categorical_probs_lp, _categorical_probs_sample),
                    ("logits",): (_categorical_logits_lp, _categorical_logits_sample)},
    "OrderedLogistic": {("predictor", "cutpoints"): (_ordered_logistic_lp,
                                                     _ordered_logistic_sample)},
    "Dirichlet": {("concentration",): (_dirichlet_lp, _dirichlet_sample)},
    "Multinomial": {("total_count", "probs"): (_multinomial_lp, _multinomial_sample)},
    "MultivariateNormal": {("loc", "cov"): (_mvn_cov_lp, _mvn_cov_sample),
                           ("loc", "scale_tril"): (_mvn_scale_tril_lp, _mvn_scale_tril_sample)},
    "LKJCholesky": {("dim", "concentration"): (_lkj_cholesky_lp, _lkj_cholesky_sample)},
}

# (name, signature) -> (cdf, log_cdf, log_ccdf, icdf, iccdf) of the discrete ones.
_DISCRETE_CDFS: dict[tuple[str, tuple[str, ...]], tuple] = {
    ("Poisson", ("rate",)): _poisson_cdfs(lambda rate: rate),
    ("Poisson", ("log_rate",)): _poisson_cdfs(jnp.exp),
    ("Binomial", ("total_count", "probs")): _binomial_cdfs(lambda probs: probs),
    ("Binomial", ("total_count", "logits")): _binomial_cdfs(jax.nn.sigmoid),
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


def _static_int(info: DistributionInfo, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise InternalError(f"parameter '{name}' of {info.name} must be a static Python int, "
                            f"got {value!r}")
    return int(value)


def _args(info: DistributionInfo, signature: tuple[str, ...], params) -> tuple:
    return tuple(_static_int(info, p, params[p]) if p in info.static_params
                 else _float(params[p]) for p in signature)


def _bind(info: DistributionInfo) -> Distribution:
    if info.wrapper:
        return _bind_truncated(info)
    impls = _IMPLEMENTATIONS[info.name]
    shapes_of = _SHAPES.get(info.name, _scalar_shapes)

    def log_prob(value, **params) -> Array:
        signature = _choose(info, params)
        return impls[signature][0](_float(value), *_args(info, signature, params))

    def sample(key, shape=(), **params) -> Array:
        signature = _choose(info, params)
        return impls[signature][1](key, shape, *_args(info, signature, params))

    def shapes(**params) -> tuple[Shape, Shape]:
        signature = _choose(info, params)
        static = {p: _static_int(info, p, params[p]) for p in info.static_params}
        return shapes_of(**{**{p: params[p] for p in signature}, **static})

    def cdf_method(index: int):
        def method(value, **params) -> Array:
            signature = _choose(info, params)
            fns = _CDFS.get(info.name) or _DISCRETE_CDFS[(info.name, signature)]
            return fns[index](_float(value), *_args(info, signature, params))
        return method

    has_cdf = info.name in _CDFS or any(n == info.name for n, _ in _DISCRETE_CDFS)
    has_icdf = info.name in _CDFS and _CDFS[info.name][3] is not None
    cdfs = [cdf_method(i) if (has_cdf if i < 3 else has_icdf) else None for i in range(5)]
    for fn, what in zip([log_prob, sample, shapes] + cdfs,
                        ["log_prob", "sample", "shapes", "cdf", "log_cdf", "log_ccdf", "icdf",
                         "iccdf"]):
        if fn is not None:
            fn.__name__ = f"{info.name}_{what}"
    log_prob.__doc__ = (f"Log density of {info.name} at `value`, one per event; parameters "
                        f"by keyword: {' | '.join(map(str, info.signatures))}.")
    sample.__doc__ = (f"Draws of {info.name} of value shape `shape` broadcast with "
                      "batch_shape + event_shape.")
    shapes.__doc__ = f"(batch_shape, event_shape) of {info.name} from the parameters' shapes."
    return Distribution(info, log_prob, sample, shapes, *cdfs)


# ---------------------------------------------------------------------------------------
# Truncation

# The implicit bounds of the supports that name none: frontend/library.py's KIND_BOUNDS,
# written out because built modules copy this file's functions by source (a test checks
# that the two agree).
_KIND_BOUNDS = {"positive": (0.0, None), "unit": (0.0, 1.0), "nonnegative_int": (0.0, None),
                "boolean": (0.0, 1.0)}


class Truncation(NamedTuple):
    """`Truncated(DIST, lower, upper)` with its inner distribution's parameters fixed."""

    log_prob: Callable[[Array], Array]  # log_prob(value): normalized over [lower, upper]
    sample: Callable[..., Array] | None  # sample(key, shape=()); None: no inverse CDF
    lower: Array | None  # the truncated support: the bound given, else the inner one's
    upper: Array | None


def truncation_range(lower, upper, discrete: bool):
    """(lo, hi) with P(lower <= X <= upper) = P(lo < X <= hi): a discrete X counts the
    integers in the range, F(floor(upper)) - F(ceil(lower) - 1)."""
    if not discrete:
        return lower, upper
    return (None if lower is None else jnp.ceil(lower) - 1.0,
            None if upper is None else jnp.floor(upper))


def truncation_log_mass(log_cdf, log_ccdf, lo, hi) -> Array:
    """log P(lo < X <= hi), either end None for unbounded (log_cdf, log_ccdf: functions
    of the value alone).

    F(hi) - F(lo) = S(lo) - S(hi) with S = 1 - F: take the form whose leading term is
    smaller, so mass deep in either tail (Normal on [5, inf) or [-6, -5]) is computed
    from log_ndtr-style tails without cancellation: big + log1mexp(small - big)."""
    if lo is None and hi is None:
        return jnp.zeros(())
    if lo is None:
        return log_cdf(hi)
    if hi is None:
        return log_ccdf(lo)
    ls_lo, lc_hi = log_ccdf(lo), log_cdf(hi)
    use_upper_tail = ls_lo < lc_hi
    big = jnp.where(use_upper_tail, ls_lo, lc_hi)
    small = jnp.where(use_upper_tail, log_ccdf(hi), log_cdf(lo))
    return big + _log1mexp(small - big)


def truncated_log_prob(x, log_prob, log_z, lower, upper) -> Array:
    """log_prob(x) - log_z on [lower, upper] (either None), -inf outside; log_prob is
    evaluated at a point inside where x is outside, so its gradient stays finite."""
    ok = jnp.ones(jnp.shape(x), bool)
    if lower is not None:
        ok = ok & (x >= lower)
    if upper is not None:
        ok = ok & (x <= upper)
    safe = lower if lower is not None else upper
    inner = log_prob(x if safe is None else jnp.where(ok, x, safe))
    return jnp.where(ok, inner - log_z, -jnp.inf)


def truncated(dist: Distribution | str, params: Mapping[str, object], lower=None,
              upper=None) -> Truncation:
    """`Truncated(DIST, lower=a, upper=b)`: DIST conditioned on a <= X <= b.

    log_prob = DIST.log_prob - log(F(b) - F(a)) on [a, b], -inf outside. A discrete DIST
    (Poisson, Binomial) counts the integers in [a, b]: the mass is F(floor(b)) -
    F(ceil(a) - 1). Either bound may be None. The normalizer is stable in the far tails
    (`truncation_log_mass`). `sample` is by inverse CDF, drawing in whichever tail keeps precision,
    for the distributions with `icdf` (Normal, HalfNormal, Cauchy, HalfCauchy, Laplace,
    Logistic, LogNormal, Exponential, Weibull, Uniform); it is None for the others and for
    discrete DIST.

    >>> t = truncated("Normal", dict(loc=0.0, scale=1.0), lower=0.0)
    >>> round(float(t.log_prob(0.0)), 6)  # twice the standard normal density at 0
    -0.225791
    """
    dist = get(dist) if isinstance(dist, str) else dist
    info = dist.info
    if info.wrapper or info.event_ndim != 0 or dist.log_cdf is None:
        raise InternalError(f"{info.name} cannot be truncated: it has no CDF")
    given_lower = None if lower is None else _float(lower)
    given_upper = None if upper is None else _float(upper)
    inner_lower, inner_upper = support_bounds(info, params)
    implicit = _KIND_BOUNDS.get(info.support.kind, (None, None))
    inner_lower = _float(implicit[0]) if inner_lower is None and implicit[0] is not None \
        else inner_lower
    inner_upper = _float(implicit[1]) if inner_upper is None and implicit[1] is not None \
        else inner_upper

    lo, hi = truncation_range(given_lower, given_upper, info.discrete)
    log_z = truncation_log_mass(lambda v: dist.log_cdf(v, **params),
                                lambda v: dist.log_ccdf(v, **params), lo, hi)

    def log_prob(value) -> Array:
        return truncated_log_prob(_float(value), lambda v: dist.log_prob(v, **params), log_z,
                                  given_lower, given_upper)

    def sample(key, shape=()) -> Array:
        batch, _ = dist.shapes(**params)
        shape = _broadcast(shape, batch, jnp.shape(lo), jnp.shape(hi))
        tiny = jnp.finfo(jnp.result_type(float)).tiny  # u > 0: icdf(0) = -inf
        u = jax.random.uniform(key, shape, minval=tiny)
        f_lo = 0.0 if lo is None else dist.cdf(lo, **params)
        f_hi = 1.0 if hi is None else dist.cdf(hi, **params)
        s_lo = 1.0 if lo is None else jnp.exp(dist.log_ccdf(lo, **params))
        s_hi = 0.0 if hi is None else jnp.exp(dist.log_ccdf(hi, **params))
        x_low_tail = dist.icdf(f_lo + u * (f_hi - f_lo), **params)
        x_high_tail = dist.iccdf(s_lo - u * (s_lo - s_hi), **params)
        x = jnp.where(jnp.less(s_lo, f_hi), x_high_tail, x_low_tail)
        return jnp.clip(x, lo, hi)

    has_sampler = not info.discrete and dist.icdf is not None

    def combine(bound, inner, pick):
        if bound is None or inner is None:
            return inner if bound is None else bound
        return pick(bound, inner)

    return Truncation(log_prob, sample if has_sampler else None,
                      combine(given_lower, inner_lower, jnp.maximum),
                      combine(given_upper, inner_upper, jnp.minimum))


def _unwrap(info: DistributionInfo, params: Mapping[str, object]) -> Truncation:
    _choose(info, params)
    inner, inner_params = params["dist"]
    return truncated(inner, inner_params, params.get("lower"), params.get("upper"))


def _bind_truncated(info: DistributionInfo) -> Distribution:
    """`get("Truncated")`: its `dist` parameter is `(inner Distribution or name, inner
    params)`, and lower/upper are optional keywords; it delegates to `truncated`."""
    def log_prob(value, **params) -> Array:
        return _unwrap(info, params).log_prob(value)

    def sample(key, shape=(), **params) -> Array:
        t = _unwrap(info, params)
        if t.sample is None:
            raise InternalError(f"no sampler for Truncated({params['dist'][0]})")
        return t.sample(key, shape)

    def shapes(**params) -> tuple[Shape, Shape]:
        _choose(info, params)
        inner, inner_params = params["dist"]
        inner = get(inner) if isinstance(inner, str) else inner
        batch, event = inner.shapes(**inner_params)
        bounds = [jnp.shape(params[b]) for b in ("lower", "upper") if b in params]
        return _broadcast(batch, *bounds), event

    return Distribution(info, log_prob, sample, shapes)


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
    a number gives itself (as an array), an `AxisLength` its count (Categorical: K - 1),
    None gives None. For `Truncated` (params `dist=(inner, inner_params)`, lower, upper)
    they are the given bounds, a missing one the inner support's own (`truncated`).

    The bounds feed `transforms.transform_for` for latent variables whose support moves
    with other variables (`b ~ Uniform(0, 1 - a)`), so they may be traced values.
    """
    info = _CATALOGUE[info_or_name] if isinstance(info_or_name, str) else info_or_name
    if info.wrapper:
        t = _unwrap(info, params)
        return t.lower, t.upper

    def evaluate(bound):
        if bound is None:
            return None
        if isinstance(bound, AxisLength):
            given = [p for p in bound.params if p in params]
            if not given:
                raise InternalError(f"support bound {bound} of {info.name} names none of "
                                    f"the parameters {sorted(params)}")
            return _float(jnp.shape(params[given[0]])[-1] + bound.offset)
        if isinstance(bound, str):
            if bound not in params:
                raise InternalError(f"support bound '{bound}' of {info.name} is not among "
                                    f"the parameters {sorted(params)}")
            return _float(params[bound])
        return _float(bound)

    return evaluate(info.support.lower), evaluate(info.support.upper)
