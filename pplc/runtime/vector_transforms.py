"""Constraint transforms that are not elementwise: ordered, positive_ordered, simplex,
corr_cholesky and cov, with their log-Jacobians (transforms.py picks one for a support).

Conventions (as Stan):

=====================  ===========  =============================================  ============
kind               u shape      forward(u)                                     log|det J|
=================  ===========  =============================================  ============
ordered            (K,)         x1 = u1, xk = x(k-1) + exp(uk)                 sum_{k>1} uk
positive_ordered   (K,)         x1 = exp(u1), xk = x(k-1) + exp(uk)            sum_k uk
simplex            (K-1,)       stick-breaking, zk = sigmoid(uk - log(K-k)),   see below
                                xk = zk (1 - x1 - ... - x(k-1)), xK the rest
corr_cholesky      (K(K-1)/2,)  tanh of canonical partial correlations         see below
cov                (K(K+1)/2,)  L L^T, L lower-triangular, exp on diagonal     see below
=================  ===========  =============================================  ============

* simplex: the Jacobian of (u1..u(K-1)) -> (x1..x(K-1)) is triangular with diagonal
  zk (1 - zk) stick_k, stick_k = 1 - x1 - ... - x(k-1). The log(K-k) offset maps u = 0 to
  the uniform simplex. Same as NumPyro's `StickBreakingTransform`. x is computed from
  log zk and log(1 - zk) = -softplus(-v), -softplus(v), so xk > 0 exactly and small pieces
  keep relative precision; the inverse uses tail sums xk + ... + xK, not 1 - x1 - ....
* corr_cholesky: u fills the strictly lower triangle row by row ((1,0), (2,0), (2,1), ...),
  z = tanh(u), L_ij = z_ij sqrt(1 - L_i0^2 - ... - L_i(j-1)^2), L_ii = what is left.
  log|det J| over the strictly-lower entries = sum_{j<i} log(1 - z_ij^2)
  + 1/2 log(1 - sum_{l<j} L_il^2). Same as NumPyro's `CorrCholeskyTransform`. The inverse
  is u_ij = asinh(L_ij / sqrt(L_i(j+1)^2 + ... + L_ii^2)) (tanh u = L_ij / sqrt(tail_j)
  gives sinh u = L_ij / sqrt(tail_(j+1))), which needs no 1 - sum and no arctanh near 1.
* cov: u fills the lower triangle with its diagonal row by row ((0,0), (1,0), (1,1), ...),
  L_kk = exp(u_kk). log|det J| over the lower-triangular entries of x is that of L -> L L^T,
  K log 2 + sum_k (K - k + 1) log L_kk (k from 1), plus the exp's sum_k log L_kk. As Stan's
  `cov_matrix_constrain`; the same as NumPyro's `biject_to(positive_definite)` up to the
  order of u (NumPyro puts the diagonal last).

Each is a `Transform` (elementwise_transforms.py) with `event_ndim` 1 or 2, and also one
function u -> (x, log|det J|) (`constrain_simplex`, ...) that a built module calls.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from pplc.runtime.elementwise_transforms import Array, Transform


def _as_float(u) -> Array:
    u = jnp.asarray(u)
    return u.astype(jnp.result_type(u, float))


def _exclusive_cumsum(a: Array) -> Array:
    """sum_{l<j} a_l along the last axis (0 for j = 0), without the rounding of cumsum - a."""
    zeros = jnp.zeros(a.shape[:-1] + (1,), a.dtype)
    return jnp.concatenate([zeros, jnp.cumsum(a, axis=-1)[..., :-1]], axis=-1)


def _tail_sum(a: Array) -> Array:
    """sum_{l>=j} a_l along the last axis."""
    return jnp.flip(jnp.cumsum(jnp.flip(a, -1), axis=-1), -1)


def vector_free_shape(shape: tuple) -> tuple:
    if len(shape) < 1:
        raise ValueError(f"a vector type needs at least one axis, got shape {shape}")
    return tuple(shape)


def _matrix_size(shape: tuple) -> int:
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"expected a batch of K x K matrices, got shape {tuple(shape)}")
    return shape[-1]


def _triangular_side(n: int, diagonal: bool) -> int:
    """K with n = K(K+1)/2 (diagonal included) or K(K-1)/2; ValueError if there is none."""
    k = (math.isqrt(8 * n + 1) + (-1 if diagonal else 1)) // 2
    if k * (k + (1 if diagonal else -1)) // 2 != n:
        raise ValueError(f"{n} unconstrained values do not fill a "
                         f"{'lower' if diagonal else 'strictly lower'} triangle")
    return k


# ordered: x1 = u1, xk = x(k-1) + exp(uk).

def _ordered_forward(u) -> Array:
    u = _as_float(u)
    return jnp.cumsum(jnp.concatenate([u[..., :1], jnp.exp(u[..., 1:])], axis=-1), axis=-1)


def _ordered_inverse(x) -> Array:
    x = _as_float(x)
    return jnp.concatenate([x[..., :1], jnp.log(jnp.diff(x, axis=-1))], axis=-1)


def _ordered_log_abs_det_jacobian(u) -> Array:
    return jnp.sum(_as_float(u)[..., 1:], axis=-1)


ORDERED = Transform(_ordered_forward, _ordered_inverse, _ordered_log_abs_det_jacobian,
                     event_ndim=1, unconstrained_shape=vector_free_shape)


# positive_ordered: x1 = exp(u1), xk = x(k-1) + exp(uk).

def _positive_ordered_forward(u) -> Array:
    return jnp.cumsum(jnp.exp(_as_float(u)), axis=-1)


def _positive_ordered_inverse(x) -> Array:
    return jnp.log(jnp.diff(_as_float(x), axis=-1, prepend=0.0))


def _positive_ordered_log_abs_det_jacobian(u) -> Array:
    return jnp.sum(_as_float(u), axis=-1)


POSITIVE_ORDERED = Transform(_positive_ordered_forward, _positive_ordered_inverse,
                              _positive_ordered_log_abs_det_jacobian,
                              event_ndim=1, unconstrained_shape=vector_free_shape)


# simplex: centered stick-breaking.

def _stick_offsets(n: int) -> Array:
    """log(K - k) for k = 1..K-1, with n = K - 1: u = 0 maps to the uniform simplex."""
    return jnp.log(jnp.arange(n, 0, -1, dtype=float))


def _stick_pieces(u: Array):
    """log zk, log(1 - zk) and log stick_k (what is left before piece k) for k < K."""
    v = u - _stick_offsets(u.shape[-1])
    log_z, log_1mz = -jax.nn.softplus(-v), -jax.nn.softplus(v)
    return log_z, log_1mz, _exclusive_cumsum(log_1mz)


def _simplex_forward(u) -> Array:
    u = _as_float(u)
    log_z, log_1mz, log_stick = _stick_pieces(u)
    last = jnp.sum(log_1mz, axis=-1, keepdims=True)  # xK = prod (1 - zk)
    return jnp.exp(jnp.concatenate([log_z + log_stick, last], axis=-1))


def _simplex_inverse(x) -> Array:
    x = _as_float(x)
    # logit(zk) = log xk - log(stick_k - xk) = log xk - log(x(k+1) + ... + xK)
    tail = _tail_sum(x)
    return (jnp.log(x[..., :-1]) - jnp.log(tail[..., 1:])
            + _stick_offsets(x.shape[-1] - 1))


def _simplex_log_abs_det_jacobian(u) -> Array:
    log_z, log_1mz, log_stick = _stick_pieces(_as_float(u))
    return jnp.sum(log_z + log_1mz + log_stick, axis=-1)


def simplex_free_shape(shape: tuple) -> tuple:
    shape = vector_free_shape(shape)
    if shape[-1] < 1:
        raise ValueError("a simplex needs K >= 1")
    return shape[:-1] + (shape[-1] - 1,)


SIMPLEX = Transform(_simplex_forward, _simplex_inverse, _simplex_log_abs_det_jacobian,
                     event_ndim=1, unconstrained_shape=simplex_free_shape)


# corr_cholesky: tanh of canonical partial correlations (Stan, LKJ 2009).

def _fill_tril(u: Array, k: int, offset: int) -> Array:
    """A batch of K x K matrices with u's last axis in the lower triangle, row by row."""
    rows, cols = np.tril_indices(k, offset)
    return jnp.zeros(u.shape[:-1] + (k, k), u.dtype).at[..., rows, cols].set(u)


def _log_1m_tanh_sq(y: Array) -> Array:
    """log(1 - tanh(y)^2) = 2 (log 2 - |y| - softplus(-2|y|)), finite for all finite y."""
    a = jnp.abs(y)
    return 2.0 * (math.log(2.0) - a - jax.nn.softplus(-2.0 * a))


def _corr_pieces(u: Array):
    """z = tanh(u) in the strictly lower triangle, log(1 - z^2) there (0 elsewhere), and the
    log of what is left of row i before column j, log(1 - L_i0^2 - ... - L_i(j-1)^2)."""
    k = _triangular_side(u.shape[-1], diagonal=False)
    y = _fill_tril(u, k, -1)
    strict = np.tril(np.ones((k, k), bool), -1)
    log_1mz2 = jnp.where(strict, _log_1m_tanh_sq(y), 0.0)
    return k, strict, jnp.tanh(y), log_1mz2, _exclusive_cumsum(log_1mz2)


def _corr_cholesky_forward(u) -> Array:
    k, strict, z, log_1mz2, log_left = _corr_pieces(_as_float(u))
    off = jnp.where(strict, z * jnp.exp(0.5 * log_left), 0.0)
    diag = jnp.exp(0.5 * jnp.sum(log_1mz2, axis=-1))  # L_ii = sqrt(prod_l (1 - z_il^2))
    return off + diag[..., None] * np.eye(k)


def _corr_cholesky_inverse(x) -> Array:
    x = _as_float(x)
    k = _matrix_size(x.shape)
    # tail_(j+1) = L_i(j+1)^2 + ... + L_ii^2; u_ij = asinh(L_ij / sqrt(tail_(j+1))).
    tail = _tail_sum(jnp.tril(x) ** 2)
    tail_next = jnp.concatenate([tail[..., 1:], jnp.zeros(x.shape[:-1] + (1,), x.dtype)],
                                axis=-1)
    rows, cols = np.tril_indices(k, -1)
    return jnp.arcsinh(x[..., rows, cols] / jnp.sqrt(tail_next[..., rows, cols]))


def _corr_cholesky_log_abs_det_jacobian(u) -> Array:
    _, strict, _, log_1mz2, log_left = _corr_pieces(_as_float(u))
    return jnp.sum(jnp.where(strict, log_1mz2 + 0.5 * log_left, 0.0), axis=(-2, -1))


def corr_cholesky_free_shape(shape: tuple) -> tuple:
    k = _matrix_size(shape)
    return tuple(shape[:-2]) + (k * (k - 1) // 2,)


CORR_CHOLESKY = Transform(_corr_cholesky_forward, _corr_cholesky_inverse,
                           _corr_cholesky_log_abs_det_jacobian, event_ndim=2,
                           unconstrained_shape=corr_cholesky_free_shape)


# cov: x = L L^T with L lower-triangular, exp on its diagonal (Stan's cov_matrix).

def _cov_forward(u) -> Array:
    u = _as_float(u)
    k = _triangular_side(u.shape[-1], diagonal=True)
    low = _fill_tril(u, k, 0)
    eye = np.eye(k, dtype=bool)
    low = jnp.where(eye, jnp.exp(low), low)
    x = low @ jnp.swapaxes(low, -2, -1)
    return 0.5 * (x + jnp.swapaxes(x, -2, -1))  # exactly symmetric whatever matmul does


def _cov_inverse(x) -> Array:
    x = _as_float(x)
    k = _matrix_size(x.shape)
    low = jnp.linalg.cholesky(x)
    low = jnp.where(np.eye(k, dtype=bool), jnp.log(low), low)
    rows, cols = np.tril_indices(k)
    return low[..., rows, cols]


def _cov_log_abs_det_jacobian(u) -> Array:
    u = _as_float(u)
    k = _triangular_side(u.shape[-1], diagonal=True)
    rows, cols = np.tril_indices(k)
    log_diag = u[..., rows == cols]  # log L_kk, k = 0..K-1
    # L -> L L^T: K log 2 + sum_k (K - k) log L_kk (k from 0); exp: + sum_k log L_kk.
    weights = np.arange(k, 0, -1) + 1.0
    return k * math.log(2.0) + jnp.sum(weights * log_diag, axis=-1)


def cov_free_shape(shape: tuple) -> tuple:
    k = _matrix_size(shape)
    return tuple(shape[:-2]) + (k * (k + 1) // 2,)


COV = Transform(_cov_forward, _cov_inverse, _cov_log_abs_det_jacobian, event_ndim=2,
                 unconstrained_shape=cov_free_shape)


# ---------------------------------------------------------------------------------------
# Each transform as one function u -> (x, log|det J|): what a built module calls (copied by
# source, codegen/constraints.py), from the same pieces as the transforms above.


def constrain_ordered(u):
    return _ordered_forward(u), _ordered_log_abs_det_jacobian(u)


def constrain_positive_ordered(u):
    return _positive_ordered_forward(u), _positive_ordered_log_abs_det_jacobian(u)


def constrain_simplex(u):
    return _simplex_forward(u), _simplex_log_abs_det_jacobian(u)


def constrain_corr_cholesky(u):
    return _corr_cholesky_forward(u), _corr_cholesky_log_abs_det_jacobian(u)


def constrain_cov(u):
    return _cov_forward(u), _cov_log_abs_det_jacobian(u)
