"""CDFs of the scalar distributions: (cdf, log_cdf, log_ccdf, icdf, iccdf) per distribution.

`CDFS` holds the continuous ones by name, `DISCRETE_CDFS` Poisson's and Binomial's by
(name, signature); Truncated is built from them (distributions.py `truncated`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc, gammainc, gammaincc, gammaln, log_ndtr, ndtri

from pplc.runtime.numerics import log1mexp, LOG_2, LOG_PI


# ---------------------------------------------------------------------------------------
# CDFs of the continuous scalar distributions: (cdf, log_cdf, log_ccdf, icdf, iccdf), each
# taking (x, *params) in signature order. They are evaluated on the whole real line: a
# value below the support has cdf 0, one above it cdf 1, and the arguments of special
# functions are made safe there first (double-where) so that gradients stay finite.


def symmetric(std_log_cdf, std_icdf=None):
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


def cauchy_std_log_cdf(z):
    # atan2(1, -z) / pi is the CDF without the cancellation of 1/2 + atan(z) / pi at z << 0.
    return jnp.log(jnp.arctan2(1.0, -z)) - LOG_PI


def laplace_std_log_cdf(z):
    neg = z < 0
    return jnp.where(neg, jnp.where(neg, z, 0.0) - LOG_2,
                     jnp.log1p(-0.5 * jnp.exp(-jnp.where(neg, 0.0, z))))


def laplace_std_icdf(q):
    return -jnp.sign(q - 0.5) * jnp.log1p(-2.0 * jnp.abs(q - 0.5))


def student_t_std_log_cdf(z, df):
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


def student_t_cdfs():
    def log_cdf(x, df, loc, scale):
        return student_t_std_log_cdf((x - loc) / scale, df)

    def log_ccdf(x, df, loc, scale):
        return student_t_std_log_cdf((loc - x) / scale, df)

    return (lambda x, df, loc, scale: jnp.exp(log_cdf(x, df, loc, scale)),
            log_cdf, log_ccdf, None, None)


def from_log(log_cdf, log_ccdf, icdf=None, iccdf=None):
    return (lambda x, *p: jnp.exp(log_cdf(x, *p)), log_cdf, log_ccdf, icdf, iccdf)


def positive_part(x):
    """(x > 0, x where positive else 1): for CDFs of distributions on [0, inf)."""
    pos = x > 0
    return pos, jnp.where(pos, x, 1.0)


def half(std_log_cdf, std_icdf=None):
    """CDFs of scale * |Z| for Z symmetric about 0 with log CDF `std_log_cdf(z, *shape)`:
    P(|Z| > z) = 2 P(Z <= -z)."""
    def log_ccdf(x, *p):
        pos, v = positive_part(x)
        *shape_params, scale = p
        return jnp.where(pos, LOG_2 + std_log_cdf(-v / scale, *shape_params), 0.0)

    def log_cdf(x, *p):
        pos, v = positive_part(x)
        return jnp.where(pos, log1mexp(log_ccdf(v, *p)), -jnp.inf)

    if std_icdf is None:
        return from_log(log_cdf, log_ccdf)
    return from_log(log_cdf, log_ccdf,
                     lambda q, scale: scale * std_icdf(0.5 + 0.5 * q),
                     lambda s, scale: -scale * std_icdf(0.5 * s))


def log_normal_cdfs():
    def log_cdf(x, loc, scale):
        pos, v = positive_part(x)
        return jnp.where(pos, log_ndtr((jnp.log(v) - loc) / scale), -jnp.inf)

    def log_ccdf(x, loc, scale):
        pos, v = positive_part(x)
        return jnp.where(pos, log_ndtr((loc - jnp.log(v)) / scale), 0.0)

    return from_log(log_cdf, log_ccdf, lambda q, loc, scale: jnp.exp(loc + scale * ndtri(q)),
                     lambda s, loc, scale: jnp.exp(loc - scale * ndtri(s)))


def weibull_cdfs():
    # P(X > x) = exp(-(x / scale)^k); the exponential is Weibull with k = 1, scale 1/rate.
    def log_ccdf(x, scale, concentration):
        pos, v = positive_part(x)
        return jnp.where(pos, -(v / scale) ** concentration, 0.0)

    def log_cdf(x, scale, concentration):
        pos, v = positive_part(x)
        return jnp.where(pos, log1mexp(log_ccdf(v, scale, concentration)), -jnp.inf)

    def icdf(q, scale, concentration):
        return scale * (-jnp.log1p(-q)) ** (1.0 / concentration)

    def iccdf(s, scale, concentration):
        return scale * (-jnp.log(s)) ** (1.0 / concentration)

    return from_log(log_cdf, log_ccdf, icdf, iccdf)


def exponential_cdfs():
    w = weibull_cdfs()
    return tuple(None if f is None else (lambda f: lambda x, rate: f(x, 1.0 / rate, 1.0))(f)
                 for f in w)


def gamma_like_cdfs(to_gamma):
    """CDFs of a distribution whose CDF is P(Gamma(a, 1) <= g(x)): `to_gamma(x, *params)`
    returns (a, g(x)) for x > 0. Regularized incomplete gammas; their logs lose accuracy
    only where the tail mass underflows."""
    def log_cdf(x, *p):
        pos, v = positive_part(x)
        a, g = to_gamma(v, *p)
        return jnp.where(pos, jnp.log(gammainc(a, g)), -jnp.inf)

    def log_ccdf(x, *p):
        pos, v = positive_part(x)
        a, g = to_gamma(v, *p)
        return jnp.where(pos, jnp.log(gammaincc(a, g)), 0.0)

    return from_log(log_cdf, log_ccdf)


def inverse_gamma_cdfs():
    # P(1/Y <= x) = P(Y >= scale / x) for Y ~ Gamma(concentration, 1): the tails swap.
    def log_cdf(x, concentration, scale):
        pos, v = positive_part(x)
        return jnp.where(pos, jnp.log(gammaincc(concentration, scale / v)), -jnp.inf)

    def log_ccdf(x, concentration, scale):
        pos, v = positive_part(x)
        return jnp.where(pos, jnp.log(gammainc(concentration, scale / v)), 0.0)

    return from_log(log_cdf, log_ccdf)


def beta_cdfs():
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

    return from_log(log_cdf, log_ccdf)


def uniform_cdfs():
    def cdf(x, low, high):
        return jnp.clip((x - low) / (high - low), 0.0, 1.0)

    def log_cdf(x, low, high):
        return jnp.log(cdf(x, low, high))

    def log_ccdf(x, low, high):
        return jnp.log(jnp.clip((high - x) / (high - low), 0.0, 1.0))

    return (cdf, log_cdf, log_ccdf, lambda q, low, high: low + (high - low) * q,
            lambda s, low, high: high - (high - low) * s)


CDFS: dict[str, tuple] = {
    "Normal": symmetric(log_ndtr, ndtri),
    "Cauchy": symmetric(cauchy_std_log_cdf, lambda q: jnp.tan(math.pi * (q - 0.5))),
    "Laplace": symmetric(laplace_std_log_cdf, laplace_std_icdf),
    "Logistic": symmetric(jax.nn.log_sigmoid, jax.scipy.special.logit),
    "StudentT": student_t_cdfs(),
    "HalfNormal": half(log_ndtr, ndtri),
    "HalfCauchy": half(cauchy_std_log_cdf, lambda q: jnp.tan(math.pi * (q - 0.5))),
    "HalfStudentT": half(student_t_std_log_cdf),
    "LogNormal": log_normal_cdfs(),
    "Exponential": exponential_cdfs(),
    "Weibull": weibull_cdfs(),
    "Gamma": gamma_like_cdfs(lambda x, concentration, rate: (concentration, rate * x)),
    "ChiSquared": gamma_like_cdfs(lambda x, df: (0.5 * df, 0.5 * x)),
    "InverseGamma": inverse_gamma_cdfs(),
    "Beta": beta_cdfs(),
    "Uniform": uniform_cdfs(),
}


def poisson_cdfs(rate_of):
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

    return from_log(log_cdf, log_ccdf)


def binomial_cdfs(probs_of):
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

    return from_log(log_cdf, log_ccdf)



# (name, signature) -> (cdf, log_cdf, log_ccdf, icdf, iccdf) of the discrete ones.
DISCRETE_CDFS: dict[tuple[str, tuple[str, ...]], tuple] = {
    ("Poisson", ("rate",)): poisson_cdfs(lambda rate: rate),
    ("Poisson", ("log_rate",)): poisson_cdfs(jnp.exp),
    ("Binomial", ("total_count", "probs")): binomial_cdfs(lambda probs: probs),
    ("Binomial", ("total_count", "logits")): binomial_cdfs(jax.nn.sigmoid),
}
