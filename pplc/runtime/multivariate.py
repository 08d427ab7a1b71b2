"""Log densities and samplers of the multivariate distributions: log_prob sums over the
event axes. The support checks use NumPyro's tolerance of 1e-6 on sums and norms.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln, multigammaln

from pplc.runtime.numerics import xlogy, is_count, to_int, HALF_LOG_2PI, LOG_PI
from pplc.runtime.densities import beta_sample


# ---------------------------------------------------------------------------------------
# Multivariate: log_prob sums over the event axes. The support checks use NumPyro's
# tolerance of 1e-6 on sums and norms.

SUPPORT_TOLERANCE = 1e-6


def dirichlet_lp(x, concentration):
    def density(v):
        return (jnp.sum(xlogy(concentration - 1.0, v), axis=-1)
                + gammaln(jnp.sum(concentration, axis=-1))
                - jnp.sum(gammaln(concentration), axis=-1))
    ok = jnp.all(x >= 0, axis=-1) & (jnp.abs(jnp.sum(x, axis=-1) - 1.0) < SUPPORT_TOLERANCE)
    num = x.shape[-1]
    lp = density(jnp.where(ok[..., None], x, 1.0 / num))
    return jnp.where(ok, lp, -jnp.inf)


def dirichlet_sample(key, shape, concentration):
    shape = jnp.broadcast_shapes(tuple(shape), concentration.shape)
    return jax.random.dirichlet(key, jnp.broadcast_to(concentration, shape), shape[:-1])


def multinomial_lp(x, total_count, probs):
    def density(v):
        return (gammaln(total_count + 1.0) - jnp.sum(gammaln(v + 1.0), axis=-1)
                + jnp.sum(xlogy(v, probs), axis=-1))
    ok = jnp.all(is_count(x), axis=-1) & (jnp.sum(x, axis=-1) == total_count)
    lp = density(jnp.where(ok[..., None], x, 0.0))
    return jnp.where(ok, lp, -jnp.inf)


def multinomial_sample(key, shape, total_count, probs):
    shape = jnp.broadcast_shapes(tuple(shape), total_count.shape + (1,), probs.shape)
    n = jnp.broadcast_to(total_count, shape[:-1])
    return to_int(jax.random.multinomial(key, n, jnp.broadcast_to(probs, shape), shape=shape))


def mvn_scale_tril_lp(x, loc, scale_tril):
    # -|L^-1 (x - mu)|^2 / 2 - sum(log diag L) - k/2 log(2 pi)
    diff = x - loc
    batch = jnp.broadcast_shapes(diff.shape[:-1], scale_tril.shape[:-2])
    num = scale_tril.shape[-1]
    chol = jnp.broadcast_to(scale_tril, batch + (num, num))
    diff = jnp.broadcast_to(diff, batch + (num,))
    z = jax.scipy.linalg.solve_triangular(chol, diff[..., None], lower=True)[..., 0]
    half_log_det = jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * jnp.sum(z * z, axis=-1) - half_log_det - num * HALF_LOG_2PI


def mvn_cov_lp(x, loc, cov):
    return mvn_scale_tril_lp(x, loc, jnp.linalg.cholesky(cov))


# A covariance (or its factor) that depends on data alone is factorized once, before
# sampling (backends/factors.py decides where): the density then needs one matrix-vector
# product per gradient instead of a triangular solve (and a Cholesky factorization for
# `cov=`). Why it matters: XLA:CPU runs LAPACK's solve as a custom call, which it cannot
# fuse into the sampler's compiled loops, so every leapfrog step of such a model paid
# microseconds around it (benchmarks/profile_notes.md).

def mvn_precision_of(matrix, kind: str):
    """(precision, half log-determinant of the covariance) of a covariance (`kind` "cov")
    or of its lower Cholesky factor ("scale_tril"), with the triangle that
    `mvn_scale_tril_lp` reads (the lower one; `jnp.linalg.cholesky` reads the lower one
    of a covariance)."""
    scale_tril = jnp.linalg.cholesky(matrix) if kind == "cov" else matrix
    num = scale_tril.shape[-1]
    eye = jnp.broadcast_to(jnp.eye(num, dtype=scale_tril.dtype), scale_tril.shape)
    inverse = jax.scipy.linalg.solve_triangular(scale_tril, eye, lower=True)
    precision = jnp.einsum("...ki,...kj->...ij", inverse, inverse)
    precision = 0.5 * (precision + jnp.swapaxes(precision, -1, -2))   # exactly symmetric
    half_log_det = jnp.sum(jnp.log(jnp.diagonal(scale_tril, axis1=-2, axis2=-1)), axis=-1)
    return precision, half_log_det


@jax.custom_jvp
def _half_quadratic(diff, precision):
    """-(diff^T P diff) / 2 over the last axis, P symmetric."""
    return -0.5 * jnp.sum(diff * jnp.einsum("...ij,...j->...i", precision, diff), axis=-1)


@_half_quadratic.defjvp
def _half_quadratic_jvp(primals, tangents):
    # One product P diff serves the value and the derivative in diff (-P diff, as P is
    # symmetric): reverse mode then costs one matrix-vector product, not two.
    diff, precision = primals
    d_diff, d_precision = tangents
    v = jnp.einsum("...ij,...j->...i", precision, diff)
    value = -0.5 * jnp.sum(diff * v, axis=-1)
    d_value = -jnp.sum(v * d_diff, axis=-1) - 0.5 * jnp.sum(
        diff * jnp.einsum("...ij,...j->...i", d_precision, diff), axis=-1)
    return value, d_value


def mvn_precision_lp(x, loc, precision, half_log_det):
    """`mvn_scale_tril_lp` from the precision and half log-determinant that
    `mvn_precision_of` computed once: the same density to rounding."""
    diff = x - loc
    batch = jnp.broadcast_shapes(diff.shape[:-1], precision.shape[:-2],
                                 jnp.shape(half_log_det))
    num = precision.shape[-1]
    diff = jnp.broadcast_to(diff, batch + (num,))   # the einsum broadcasts the precision
    return _half_quadratic(diff, precision) - half_log_det - num * HALF_LOG_2PI


def mvn_scale_tril_sample(key, shape, loc, scale_tril):
    shape = jnp.broadcast_shapes(tuple(shape), loc.shape, scale_tril.shape[:-1])
    z = jax.random.normal(key, shape)
    return loc + jnp.einsum("...ij,...j->...i", scale_tril, z)


def mvn_cov_sample(key, shape, loc, cov):
    return mvn_scale_tril_sample(key, shape, loc, jnp.linalg.cholesky(cov))


def lkj_cholesky_lp(x, dim, concentration):
    # Density of the Cholesky factor L (NumPyro's LKJCholesky; Lewandowski, Kurowicka and
    # Joe 2009): prod_{i=2..D} L_ii^(2 eta - 2 + D - i) over the normalizer
    # (D-1)/2 log pi + log Gamma_{D-1}(alpha - 1/2) - (D-1) log Gamma(alpha),
    # alpha = eta + (D-1)/2; the first factor is det(C)^(eta-1), the rest the Jacobian of
    # L -> C = L L^T.
    tril = jnp.tril(x)
    diag = jnp.diagonal(x, axis1=-2, axis2=-1)
    ok = (jnp.all(tril == x, axis=(-2, -1)) & jnp.all(diag > 0, axis=-1)
          & jnp.all(jnp.abs(jnp.sum(x * x, axis=-1) - 1.0) <= SUPPORT_TOLERANCE, axis=-1))
    diag = jnp.where(ok[..., None], diag, 1.0)[..., 1:]
    i = jnp.arange(2, dim + 1)
    order = 2.0 * concentration[..., None] - 2.0 + dim - i
    unnormalized = jnp.sum(order * jnp.log(diag), axis=-1)
    dm1 = dim - 1
    alpha = concentration + 0.5 * dm1
    log_normalizer = (0.5 * dm1 * LOG_PI + multigammaln(alpha - 0.5, dm1)
                      - dm1 * gammaln(alpha))
    return jnp.where(ok, unnormalized - log_normalizer, -jnp.inf)


def lkj_cholesky_sample(key, shape, dim, concentration):
    # The onion method (Lewandowski+ 2009, sec. 3.2; NumPyro's default): row i of the
    # factor is (w_i, sqrt(1 - |w_i|^2), 0...), w_i = sqrt(y_i) u_i with u_i uniform on the
    # sphere in R^i and y_i ~ Beta(i/2, eta + (D-2)/2 - (i-1)/2).
    shape = jnp.broadcast_shapes(tuple(shape), concentration.shape + (dim, dim))
    batch = shape[:-2]
    key_beta, key_normal = jax.random.split(key)
    offset = 0.5 * jnp.arange(dim - 1)
    c0 = (concentration + 0.5 * (dim - 2))[..., None] - offset
    y = beta_sample(key_beta, batch + (dim - 1,), offset + 0.5, c0)
    normal = jnp.tril(jax.random.normal(key_normal, batch + (dim - 1, dim - 1)))
    u = normal / jnp.linalg.norm(normal, axis=-1, keepdims=True)
    w = jnp.sqrt(y)[..., None] * u
    chol = jnp.zeros(shape).at[..., 1:, :-1].set(w)
    diag = jnp.concatenate([jnp.ones(batch + (1,)), jnp.sqrt(1.0 - y)], axis=-1)
    return chol + diag[..., None] * jnp.eye(dim)
