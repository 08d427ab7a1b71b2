"""The arithmetic of `Truncated(DIST, lower, upper)`, given DIST's log density and CDFs.

distributions.py's `truncated` binds these to a catalogue distribution with its
parameters; a built module calls `truncated_lp` and `truncated_sample` directly (copied by
source, codegen/distributions.py), so both compute the same numbers. Here are the
normalizer log P(lo < X <= hi), stable deep in either tail, the truncated log density,
-inf outside the bounds with a finite gradient there, and draws by inverse CDF.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pplc.runtime.numerics import log1mexp, Array


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
    return big + log1mexp(small - big)


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


def truncated_lp(x, log_prob, cdfs, params, lower, upper, discrete: bool) -> Array:
    """log Truncated(DIST, lower, upper) at x: DIST's log density less log P(lower <= X <=
    upper) on [lower, upper], -inf outside. `log_prob` and `cdfs` (cdf, log_cdf, log_ccdf,
    icdf, iccdf) are DIST's, called as f(x, *params); either bound may be None."""
    _, log_cdf, log_ccdf = cdfs[:3]
    lo, hi = truncation_range(lower, upper, discrete)
    log_z = truncation_log_mass(lambda v: log_cdf(v, *params), lambda v: log_ccdf(v, *params),
                                lo, hi)
    return truncated_log_prob(x, lambda v: log_prob(v, *params), log_z, lower, upper)


def truncated_sample(key, shape, cdfs, params, lower, upper) -> Array:
    """Draws of a continuous Truncated(DIST, lower, upper) by inverse CDF, from whichever
    tail keeps precision: u uniform on (F(lower), F(upper)), or on the survival side
    when the mass lies in the upper tail."""
    cdf, _, log_ccdf, icdf, iccdf = cdfs
    bounds = [jnp.shape(b) for b in (lower, upper) if b is not None]
    shape = jnp.broadcast_shapes(tuple(shape), *(jnp.shape(p) for p in params), *bounds)
    tiny = jnp.finfo(jnp.result_type(float)).tiny  # u > 0: icdf(0) = -inf
    u = jax.random.uniform(key, shape, minval=tiny)
    f_lo = 0.0 if lower is None else cdf(lower, *params)
    f_hi = 1.0 if upper is None else cdf(upper, *params)
    s_lo = 1.0 if lower is None else jnp.exp(log_ccdf(lower, *params))
    s_hi = 0.0 if upper is None else jnp.exp(log_ccdf(upper, *params))
    x_low_tail = icdf(f_lo + u * (f_hi - f_lo), *params)
    x_high_tail = iccdf(s_lo - u * (s_lo - s_hi), *params)
    x = jnp.where(jnp.less(s_lo, f_hi), x_high_tail, x_low_tail)
    return jnp.clip(x, lower, upper)
