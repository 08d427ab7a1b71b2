"""Log densities and samplers of the scalar distributions, one pair per signature.

`normal_lp(x, loc, scale)` is the log density at x with NumPy broadcasting, -inf outside the
support; `normal_sample(key, shape, loc, scale)` draws. The catalogue binds them by name
(distributions.py `IMPLEMENTATIONS`), and built modules copy them by source. Discrete values are
counts held as floats; fractional or negative ones are -inf. Conventions: distributions.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import betaln, gammaln

from pplc.runtime.numerics import (xlogy, xlog1py, masked, log1mexp, is_count, out_shape,
                                    to_int, softplus, Array, Shape, LOG_2, HALF_LOG_2PI,
                                    LOG_PI)


# ---------------------------------------------------------------------------------------
# Continuous


def normal_lp(x, loc, scale):
    z = (x - loc) / scale
    return -0.5 * z * z - jnp.log(scale) - HALF_LOG_2PI


def normal_sample(key, shape, loc, scale):
    shape = out_shape(shape, loc, scale)
    return loc + scale * jax.random.normal(key, shape)


def half_normal_lp(x, scale):
    # Normal(0, scale) folded onto [0, inf): twice the density.
    return masked(x >= 0, x, 1.0, lambda v: LOG_2 + normal_lp(v, 0.0, scale))


def half_normal_sample(key, shape, scale):
    shape = out_shape(shape, scale)
    return scale * jnp.abs(jax.random.normal(key, shape))


def cauchy_lp(x, loc, scale):
    z = (x - loc) / scale
    return -LOG_PI - jnp.log(scale) - jnp.log1p(z * z)


def cauchy_sample(key, shape, loc, scale):
    shape = out_shape(shape, loc, scale)
    return loc + scale * jax.random.cauchy(key, shape)


def half_cauchy_lp(x, scale):
    return masked(x >= 0, x, 1.0, lambda v: LOG_2 + cauchy_lp(v, 0.0, scale))


def half_cauchy_sample(key, shape, scale):
    shape = out_shape(shape, scale)
    return scale * jnp.abs(jax.random.cauchy(key, shape))


def student_t_lp(x, df, loc, scale):
    z = (x - loc) / scale
    half_df1 = 0.5 * (df + 1.0)
    return (gammaln(half_df1) - gammaln(0.5 * df) - 0.5 * jnp.log(df) - 0.5 * LOG_PI
            - jnp.log(scale) - half_df1 * jnp.log1p(z * z / df))


def student_t_sample(key, shape, df, loc, scale):
    shape = out_shape(shape, df, loc, scale)
    return loc + scale * jax.random.t(key, jnp.broadcast_to(df, shape), shape)


def log_normal_lp(x, loc, scale):
    # Density of exp(Normal): Normal(log x) / x, zero at x = 0.
    return masked(x > 0, x, 1.0, lambda v: normal_lp(jnp.log(v), loc, scale) - jnp.log(v))


def log_normal_sample(key, shape, loc, scale):
    return jnp.exp(normal_sample(key, shape, loc, scale))


def exponential_lp(x, rate):
    return masked(x >= 0, x, 1.0, lambda v: jnp.log(rate) - rate * v)


def exponential_sample(key, shape, rate):
    shape = out_shape(shape, rate)
    return jax.random.exponential(key, shape) / rate


def gamma_lp(x, concentration, rate):
    def density(v):
        return (xlogy(concentration, rate) + xlogy(concentration - 1.0, v) - rate * v
                - gammaln(concentration))
    return masked(x >= 0, x, 1.0, density)


def gamma_sample(key, shape, concentration, rate):
    shape = out_shape(shape, concentration, rate)
    return jax.random.gamma(key, jnp.broadcast_to(concentration, shape), shape) / rate


def beta_lp(x, concentration1, concentration0):
    def density(v):
        return (xlogy(concentration1 - 1.0, v) + xlog1py(concentration0 - 1.0, -v)
                - betaln(concentration1, concentration0))
    return masked((x >= 0) & (x <= 1), x, 0.5, density)


def beta_sample(key, shape, concentration1, concentration0):
    shape = out_shape(shape, concentration1, concentration0)
    return jax.random.beta(key, concentration1, concentration0, shape)


def uniform_lp(x, low, high):
    ok = (x >= low) & (x <= high)
    return jnp.where(ok, -jnp.log(high - low), -jnp.inf)


def uniform_sample(key, shape, low, high):
    shape = out_shape(shape, low, high)
    return low + (high - low) * jax.random.uniform(key, shape)


# ---------------------------------------------------------------------------------------
# Discrete: values are counts held as floats; fractional or negative ones are -inf.


def poisson_rate_lp(k, rate):
    return masked(is_count(k), k, 0.0,
                   lambda v: xlogy(v, rate) - rate - gammaln(v + 1.0))


def poisson_log_rate_lp(k, log_rate):
    # k log(rate) - rate - log k!, with rate = exp(log_rate) never formed inside a log.
    return masked(is_count(k), k, 0.0,
                   lambda v: v * log_rate - jnp.exp(log_rate) - gammaln(v + 1.0))


def poisson_rate_sample(key, shape, rate):
    shape = out_shape(shape, rate)
    return to_int(jax.random.poisson(key, jnp.broadcast_to(rate, shape), shape))


def poisson_log_rate_sample(key, shape, log_rate):
    return poisson_rate_sample(key, shape, jnp.exp(log_rate))


def bernoulli_probs_lp(k, probs):
    # log p for k = 1, log(1 - p) for k = 0; each log sees only its own branch's argument.
    def density(v):
        one = v == 1
        return jnp.where(one, jnp.log(jnp.where(one, probs, 1.0)),
                         jnp.log1p(-jnp.where(one, 0.0, probs)))
    return masked((k == 0) | (k == 1), k, 0.0, density)



def bernoulli_logits_lp(k, logits):
    # log sigmoid(l) = -softplus(-l) for k = 1, log sigmoid(-l) = -softplus(l) for k = 0:
    # one softplus of the sign-flipped logit, with full relative accuracy in both tails.
    # A k outside {0, 1} adds -inf instead of `masked`'s select of -inf: the same values
    # (-softplus is never +inf or NaN for a logit that is not NaN), and the gradient has no
    # select over the rows, whose transpose cost hier_logistic_5000_G50's in-loop gradient
    # 48 -> 34 us (benchmarks/profile_notes.md, "Summed-out mixture").
    ok = (k == 0) | (k == 1)
    flipped = jnp.where(k == 1, -logits, logits)
    return -softplus(flipped) + jnp.where(ok, 0.0, -jnp.inf)


def bernoulli_probs_sample(key, shape, probs):
    shape = out_shape(shape, probs)
    return to_int(jax.random.bernoulli(key, probs, shape))


def bernoulli_logits_sample(key, shape, logits):
    return bernoulli_probs_sample(key, shape, jax.nn.sigmoid(logits))


def log_choose(n, k):
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def binomial_probs_lp(k, total_count, probs):
    def density(v):
        return (log_choose(total_count, v) + xlogy(v, probs)
                + xlog1py(total_count - v, -probs))
    return masked(is_count(k) & (k <= total_count), k, 0.0, density)


def binomial_logits_lp(k, total_count, logits):
    def density(v):
        return (log_choose(total_count, v) - v * softplus(-logits)
                - (total_count - v) * softplus(logits))
    return masked(is_count(k) & (k <= total_count), k, 0.0, density)


def binomial_probs_sample(key, shape, total_count, probs):
    shape = out_shape(shape, total_count, probs)
    n = jnp.broadcast_to(total_count, shape)
    return to_int(jax.random.binomial(key, n, jnp.broadcast_to(probs, shape), shape))


def binomial_logits_sample(key, shape, total_count, logits):
    return binomial_probs_sample(key, shape, total_count, jax.nn.sigmoid(logits))




def laplace_lp(x, loc, scale):
    return -LOG_2 - jnp.log(scale) - jnp.abs(x - loc) / scale


def laplace_sample(key, shape, loc, scale):
    shape = out_shape(shape, loc, scale)
    return loc + scale * jax.random.laplace(key, shape)


def logistic_lp(x, loc, scale):
    # z = (x - loc) / scale; density e^-z / (scale (1 + e^-z)^2), softplus for no overflow.
    z = (x - loc) / scale
    return -z - jnp.log(scale) - 2.0 * jax.nn.softplus(-z)


def logistic_sample(key, shape, loc, scale):
    shape = out_shape(shape, loc, scale)
    return loc + scale * jax.random.logistic(key, shape)


def half_student_t_lp(x, df, scale):
    return masked(x >= 0, x, 1.0, lambda v: LOG_2 + student_t_lp(v, df, 0.0, scale))


def half_student_t_sample(key, shape, df, scale):
    return jnp.abs(student_t_sample(key, shape, df, 0.0, scale))


def inverse_gamma_lp(x, concentration, scale):
    # Density of 1 / Gamma(concentration, rate=scale); it vanishes at 0, so x <= 0 is -inf.
    def density(v):
        return (xlogy(concentration, scale) - gammaln(concentration)
                - (concentration + 1.0) * jnp.log(v) - scale / v)
    return masked(x > 0, x, 1.0, density)


def inverse_gamma_sample(key, shape, concentration, scale):
    return 1.0 / gamma_sample(key, shape, concentration, scale)


def weibull_lp(x, scale, concentration):
    # log k - log lambda + (k - 1) log(x / lambda) - (x / lambda)^k, with its limit at 0.
    def density(v):
        z = v / scale
        return (jnp.log(concentration) - jnp.log(scale) + xlogy(concentration - 1.0, z)
                - z ** concentration)
    return masked(x >= 0, x, 1.0, density)


def weibull_sample(key, shape, scale, concentration):
    shape = out_shape(shape, scale, concentration)
    return scale * jax.random.exponential(key, shape) ** (1.0 / concentration)


def chi_squared_lp(x, df):
    return gamma_lp(x, 0.5 * df, 0.5)


def chi_squared_sample(key, shape, df):
    return gamma_sample(key, shape, 0.5 * df, 0.5)


def negative_binomial_lp(k, mean, concentration):
    # Gamma-Poisson with rate concentration / mean (NumPyro's NegativeBinomial2):
    # C(k + phi - 1, k) (phi / (phi + mu))^phi (mu / (phi + mu))^k.
    def density(v):
        phi = concentration
        log_total = jnp.log(phi + mean)
        return (gammaln(v + phi) - gammaln(phi) - gammaln(v + 1.0)
                + phi * (jnp.log(phi) - log_total) + xlogy(v, mean) - v * log_total)
    return masked(is_count(k), k, 0.0, density)


def negative_binomial_sample(key, shape, mean, concentration):
    shape = out_shape(shape, mean, concentration)
    key_gamma, key_poisson = jax.random.split(key)
    rate = gamma_sample(key_gamma, shape, concentration, concentration / mean)
    return to_int(jax.random.poisson(key_poisson, rate, shape))


def beta_binomial_lp(k, concentration1, concentration0, total_count):
    def density(v):
        return (log_choose(total_count, v)
                + betaln(v + concentration1, total_count - v + concentration0)
                - betaln(concentration1, concentration0))
    return masked(is_count(k) & (k <= total_count), k, 0.0, density)


def beta_binomial_sample(key, shape, concentration1, concentration0, total_count):
    shape = out_shape(shape, concentration1, concentration0, total_count)
    key_beta, key_binomial = jax.random.split(key)
    probs = beta_sample(key_beta, shape, concentration1, concentration0)
    return binomial_probs_sample(key_binomial, shape, total_count, probs)


# ---------------------------------------------------------------------------------------
# Categorical and OrderedLogistic: scalar values, a trailing category axis on a parameter.


# Up to this many categories, take_last picks by a select and a sum over the category axis
# instead of a gather: O(K) per element instead of O(1). With a count read from data (y[n] ~
# Categorical(w), N = 200), NUTS's CPU per gradient was 9.4-13.7 -> 6.0-6.8 us at K = 16 (the
# loop compiled as one function; the bare gradient 3.2 -> 4.5-5.3) but 15.3-16.6 -> 23.5 at
# K = 64 (benchmarks/profile_notes.md, "Summed-out mixture").
PICK_BY_SELECT = 16


def take_last(table: Array, k: Array, batch: Shape) -> Array:
    """table[..., k] over the broadcast batch; `k` must already be a valid index.

    For few categories the entry is picked as sum_j where(j == k, table[..., j], 0), which
    is exactly table[..., k] (the other terms are zeros) and has the same gradient. Why not
    a gather: a gather's transpose in the gradient is a scatter-add, and XLA:CPU runs a
    while loop that holds a scatter as one kernel call per fusion per iteration, but one
    without as a single compiled function (SmallWhileLoopHoistingPass): a sampler's or
    gradfloor's loop over a summed-out mixture (marginalize.py picks log w[k] for each k)
    runs its gradient in 3.3 instead of 5.2 us (3 components, 200 points)."""
    table = jnp.broadcast_to(table, batch + table.shape[-1:])
    index = jnp.broadcast_to(k, batch).astype(int)[..., None]
    if table.shape[-1] <= PICK_BY_SELECT:
        pick = jnp.arange(table.shape[-1]) == index
        return jnp.sum(jnp.where(pick, table, 0.0), axis=-1)
    return jnp.take_along_axis(table, index, axis=-1)[..., 0]


def category_lp(k, table, log_of_entry):
    """log_of_entry(table[..., k]) for a count k < K = table.shape[-1], else -inf.

    The entry is picked *before* its log is taken: the log of an unpicked zero
    probability would otherwise send 0 * inf = NaN into the gradient."""
    num = table.shape[-1]
    ok = is_count(k) & (k <= num - 1)
    batch = jnp.broadcast_shapes(k.shape, table.shape[:-1])
    entry = take_last(table, jnp.where(ok, k, 0.0), batch)
    return jnp.where(ok, log_of_entry(entry), -jnp.inf)


def categorical_probs_lp(k, probs):
    return category_lp(k, probs, jnp.log)  # as NumPyro: probs are not renormalized


def categorical_logits_lp(k, logits):
    return category_lp(k, jax.nn.log_softmax(logits, axis=-1), lambda lp: lp)


def categorical_logits_sample(key, shape, logits):
    shape = jnp.broadcast_shapes(tuple(shape), logits.shape[:-1])
    return to_int(jax.random.categorical(key, jnp.broadcast_to(logits, shape + logits.shape[-1:]),
                                       axis=-1))


def categorical_probs_sample(key, shape, probs):
    return categorical_logits_sample(key, shape, jnp.log(probs))


def ordered_logistic_lp(k, predictor, cutpoints):
    # P(Y = k) = sigmoid(c_k - eta) - sigmoid(c_{k-1} - eta), c_{-1} = -inf, c_K = inf.
    # log(sigmoid(a) - sigmoid(b)) = log sigmoid(a) + log1mexp(log sigmoid(b) - log
    # sigmoid(a)), or the same with (-b, -a) (sigmoid(a) - sigmoid(b) = sigmoid(-b) -
    # sigmoid(-a)), whichever has the smaller leading term, so no tail cancels.
    num = cutpoints.shape[-1]
    ok = is_count(k) & (k <= num)
    batch = jnp.broadcast_shapes(k.shape, predictor.shape, cutpoints.shape[:-1])
    inf = jnp.full(cutpoints.shape[:-1] + (1,), jnp.inf)
    padded = jnp.concatenate([-inf, cutpoints, inf], axis=-1)
    safe_k = jnp.where(ok, k, 0.0)
    a = take_last(padded, safe_k + 1.0, batch) - predictor
    b = take_last(padded, safe_k, batch) - predictor
    log_sig = jax.nn.log_sigmoid
    use_upper = log_sig(-b) < log_sig(a)
    big = jnp.where(use_upper, log_sig(-b), log_sig(a))
    small = jnp.where(use_upper, log_sig(-a), log_sig(b))
    return jnp.where(ok, big + log1mexp(small - big), -jnp.inf)


def ordered_logistic_sample(key, shape, predictor, cutpoints):
    # Y = #{j : c_j < eta + eps}, eps ~ Logistic(0, 1): P(Y <= k) = sigmoid(c_k - eta).
    shape = jnp.broadcast_shapes(tuple(shape), predictor.shape, cutpoints.shape[:-1])
    latent = predictor + jax.random.logistic(key, shape)
    return to_int(jnp.sum(cutpoints < latent[..., None], axis=-1))
