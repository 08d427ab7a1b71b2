"""Gradient-informed metric estimates: the mass matrix that minimizes the Fisher divergence.

Why: Stan's metric is the sample variance of the draws of a window, which needs many draws
before it sees a posterior's scales, and which only looks at positions. Every draw also
carries the gradient of the log density, which NUTS computed anyway. For a Gaussian target
N(mu, S) the gradient is -S^{-1}(x - mu), so Cov(grad) = S^{-1}: the draws and the gradients
carry the same information from two sides, and together they fix the scale with fewer
draws (Seyboldt, Carlson & Carpenter, "Preconditioning HMC by minimizing Fisher divergence";
nutpie uses these estimates by default).

For an affine transformation x = A y + b, the Fisher divergence between the transformed
posterior and a standard normal is estimated from draws x_i and gradients g_i; the
minimizing A A^T = M^{-1} (the inverse mass matrix) satisfies M^{-1} Cov(g) M^{-1} = Cov(x),
i.e. M^{-1} is the geometric mean of Cov(x) and Cov(g)^{-1}:
  * diagonal: M^{-1}_jj = sqrt(var(x_j) / var(g_j))   (`fisher_diagonal`). For a Gaussian
    with independent coordinates this is exactly sd_j^2 for every sample size at which the
    two variances are exact, whatever the scales.
  * low-rank plus diagonal (`fisher_low_rank`): scale by the diagonal first, then, in the
    span of the scaled draws and gradients, solve Sigma C_g Sigma = C_x for the SPD
    geometric mean, eigendecompose it, and keep only the eigen-directions whose variance
    differs from the diagonal's by more than a factor `cutoff` (the rest stay at 1):
        M^{-1} = D^{1/2} (I + U (Lambda - I) U^T) D^{1/2}.
    nutpie keeps the window's draws; here the window is summarized by running covariances
    of draws and of gradients (inference/adaptation.py's Welford states), which span the
    same subspace, so the estimate needs no draw buffer and no shape that depends on the
    window length.

How the low-rank metric is applied (`pack_low_rank`, `low_rank_velocity`,
`low_rank_momentum`): with s = D^{1/2} and U's columns orthonormal, nothing dim x dim is
needed per leapfrog step,
    velocity  M^{-1} p = s * (y + U ((Lambda - 1) (U^T y))),  y = s * p
    momentum  p = (z + U ((Lambda^{-1/2} - 1) (U^T z))) / s,   z ~ N(0, I)
(the second is a square root F of M: F F^T = D^{-1/2}(I + U(Lambda^{-1} - I)U^T)D^{-1/2}
= M, since (I + U A U^T)^2 = I + U (A^2 + 2A) U^T), each O(dim * rank). The kernel keeps a
fixed number `rank` of directions (shapes are static under XLA): the `rank` eigen-directions
farthest from 1 in |log lambda|; the others, if more than `rank` are outside the cutoff, stay
at the diagonal. That is worth it only while 2 * rank < dim (two products with a
(dim, rank) matrix against one with a (dim, dim) one), so `packed_rank(dim)` says None below
that and the low-rank metric is then applied as the dense matrix it equals, all directions
kept. The packed form is one array of shape (2, rank + 1, dim), so it travels through the
NUTS kernel like the diagonal (dim,) and dense (dim, dim) metrics, told apart by ndim:
    packed[0, 0] = s,  packed[0, 1:] = U^T,  packed[1, 0, :rank] = Lambda,  the rest 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array

# Eigen-directions whose Fisher-optimal variance lies within [1/cutoff, cutoff] of the
# diagonal's are left to the diagonal (nutpie's eigenvalue cutoff; a cutoff near 1 keeps
# noise directions, a large one drops real correlations). This is also how `auto` keeps
# the diagonal where low-rank buys nothing, per chain and per window, inside the compiled
# warmup: no direction outside the cutoff, and the metric is the Fisher diagonal. Why 2:
# on an uncorrelated posterior every scaled direction departs from 1 by Stan's shrinkage
# of the diagonal alone, (n + 5) / n: 1.5 at the low-rank schedule's first 10-draw window
# (tests/inference/test_metric_auto.py), so the cutoff must exceed 1.5; on the linear
# regression 1000 x 10 the 4 chains of each of seeds 0-9 kept no direction at 2 (and tied
# Stan's diag: 111.6e-3 ESS per gradient against 112.1e-3, median of 10 seeds), while the
# correlated suite models keep theirs (benchmarks/adaptation.md, "auto").
DEFAULT_CUTOFF = 2.0
# Ridge on the projected covariances, relative to the scaled (order-one) coordinates.
DEFAULT_GAMMA = 1e-5
# Directions the O(dim * rank) kernel keeps; read at call time (tests lower it to run the
# packed kernel on small models). Below dim = 2 * MAX_RANK the metric is applied densely.
MAX_RANK = 50


def shrink(estimate: Array, n: Array) -> Array:
    """Stan's shrinkage of a window estimate towards 1e-3: (n / (n + 5)) * e + 1e-3 * 5 / (n + 5)."""
    return (n / (n + 5.0)) * estimate + 1e-3 * (5.0 / (n + 5.0))


def fisher_diagonal(draw_var: Array, grad_var: Array, n: Array) -> Array:
    """sqrt(var(x) / var(g)) per coordinate, shrunk as Stan shrinks its variance.

    A coordinate whose gradient did not vary (var(g) = 0: the log density is flat or linear
    along it) falls back to var(x); the result is clipped to [1e-20, 1e20] as nutpie does.
    """
    ok = grad_var > 0
    estimate = jnp.where(ok, jnp.sqrt(draw_var / jnp.where(ok, grad_var, 1.0)), draw_var)
    return jnp.clip(shrink(estimate, n), 1e-20, 1e20)


def _sym_power(c: Array, power: float) -> Array:
    """C^power for a symmetric positive definite C (eigenvalues floored at tiny)."""
    w, v = jnp.linalg.eigh(0.5 * (c + c.T))
    w = jnp.maximum(w, jnp.finfo(c.dtype).tiny)
    return (v * w**power) @ v.T


def spd_geometric_mean(a: Array, b: Array) -> Array:
    """The SPD Sigma with Sigma B Sigma = A: B^{-1/2} (B^{1/2} A B^{1/2})^{1/2} B^{-1/2}.

    That is the geometric mean of A and B^{-1}; with A = Cov(x) and B = Cov(g) it is the
    Fisher-optimal inverse metric.
    """
    b_half = _sym_power(b, 0.5)
    b_neg_half = _sym_power(b, -0.5)
    return b_neg_half @ _sym_power(b_half @ a @ b_half, 0.5) @ b_neg_half


def fisher_low_rank(
    draw_cov: Array, grad_cov: Array, n: Array, cutoff: float = DEFAULT_CUTOFF, gamma: float = DEFAULT_GAMMA
) -> tuple[Array, Array, Array, Array]:
    """Low-rank-plus-diagonal inverse metric from covariances of draws and gradients.

    Returns (inverse metric as a dense (dim, dim) matrix, diagonal D (dim,), eigenvectors
    U (dim, dim) in the scaled space, eigenvalues (dim,) with the dropped ones set to 1).
    """
    dim = draw_cov.shape[0]
    diag = fisher_diagonal(jnp.diagonal(draw_cov), jnp.diagonal(grad_cov), n)
    s = jnp.sqrt(diag)
    cx = draw_cov / jnp.outer(s, s)  # Cov(x / s)
    cg = grad_cov * jnp.outer(s, s)  # Cov(g * s)
    # The span of the scaled draws and gradients (numerically nonzero directions of
    # cx + cg); outside it the data say nothing and the diagonal stays.
    w, q = jnp.linalg.eigh(0.5 * (cx + cg + (cx + cg).T))
    in_span = w > 1e-10 * jnp.maximum(w[-1], jnp.finfo(w.dtype).tiny)
    q = q * in_span  # columns outside the span zeroed
    eye = jnp.eye(dim, dtype=draw_cov.dtype)
    outside = jnp.diag(1.0 - in_span.astype(draw_cov.dtype))
    px = q.T @ cx @ q + gamma * eye + outside  # identity on the zeroed columns
    pg = q.T @ cg @ q + gamma * eye + outside
    sigma = spd_geometric_mean(px, pg)
    lam, v = jnp.linalg.eigh(0.5 * (sigma + sigma.T))
    u = q @ v
    keep = ((lam > cutoff) | (lam < 1.0 / cutoff)) & (jnp.linalg.norm(u, axis=0) > 0.5)
    lam = jnp.where(keep, lam, 1.0)
    scaled = eye + (u * (lam - 1.0)) @ u.T
    inverse = scaled * jnp.outer(s, s)
    return 0.5 * (inverse + inverse.T), diag, u, lam


# ----------------------------------------------------------------------------- --metric auto

# Above this many parameters "auto" gives Stan's diagonal: the low-rank adaptation keeps
# (dim, dim) running covariances per chain and eigendecomposes them at each window's end
# (O(dim^3)), and each leapfrog step applies the metric at O(dim^2) or O(dim * rank). On the
# 503-parameter stochastic volatility model that lost: 1.64x diag's ESS per gradient, but
# ~55 us of CPU per gradient against diag's ~19 and ~0.7 s per window's end, so fewer ESS
# per second. Up to 100 parameters every suite model gained or tied.
AUTO_MAX_DIM = 100


def choose_metric(requested: str, dim: int) -> str:
    """The metric a run uses: `requested`, or for "auto" the one chosen from the dimension.

    "auto" (the default) is "low-rank" from 2 to AUTO_MAX_DIM parameters: on the suite
    models measured (benchmarks/adaptation.md, seeds 0-2, and 0-9 on the linear regression)
    it was at least Stan's diagonal's ESS per gradient within seed noise on each and gained
    1.1-26x on the correlated ones. The warmup draws then choose, per chain and per window,
    what it keeps: only the eigen-directions whose Fisher-optimal variance differs from the
    diagonal's by more than DEFAULT_CUTOFF, so on a posterior without strong correlation it
    is the Fisher diagonal. One parameter, or more than AUTO_MAX_DIM: "diag".
    """
    if requested != "auto":
        return requested
    return "low-rank" if 2 <= dim <= AUTO_MAX_DIM else "diag"


def ensure_lapack() -> None:
    """Initialize jaxlib's LAPACK kernels before a program that calls them runs.

    Why: the dense and low-rank metrics' programs call LAPACK (eigh, Cholesky) through XLA
    custom calls, and jaxlib initializes those kernels only while lowering such a call. A
    program loaded from the persistent compile cache is never lowered in this process, so it
    ran against uninitialized kernels and crashed (SIGSEGV) on every run after the first
    with a warm cache (`pplc sample --metric dense` or `low-rank` twice; found while making `auto`
    the default, tests/test_cli.py). Idempotent and cheap.
    """
    import numpy as np
    from jaxlib import lapack

    lapack.prepare_lapack_call("syevd", np.dtype("float64"))


# ----------------------------------------------------------------------------- the O(dim * rank) kernel


def packed_rank(dim: int) -> int | None:
    """The rank of the packed low-rank kernel for a model of `dim` parameters, or None when
    the dense (dim, dim) form is cheaper (2 * rank >= dim)."""
    return MAX_RANK if 2 * MAX_RANK < dim else None


def is_low_rank(inverse_mass_matrix: Array) -> bool:
    """The packed low-rank form is the metric of ndim 3 (static: decided at trace time)."""
    return jnp.ndim(inverse_mass_matrix) == 3


def pack_low_rank(diag: Array, u: Array, lam: Array, rank: int) -> Array:
    """The (2, rank + 1, dim) packed metric from `fisher_low_rank`'s D, U and Lambda, keeping
    the `rank` directions with the largest |log lambda| (dropped ones have lambda = 1)."""
    dim = diag.shape[0]
    top = jnp.argsort(-jnp.abs(jnp.log(lam)))[:rank]
    first = jnp.concatenate([jnp.sqrt(diag)[None], u[:, top].T])
    second = jnp.zeros((rank + 1, dim), diag.dtype).at[0, :rank].set(lam[top])
    return jnp.stack([first, second])


def identity_packed(dim: int, rank: int, dtype=jnp.float64) -> Array:
    """The unit metric in packed form (s = 1, Lambda = 1, U the first `rank` unit vectors)."""
    first = jnp.concatenate([jnp.ones((1, dim), dtype), jnp.eye(rank, dim, dtype=dtype)])
    second = jnp.zeros((rank + 1, dim), dtype).at[0, :rank].set(1.0)
    return jnp.stack([first, second])


def _unpack(packed: Array) -> tuple[Array, Array, Array]:
    rank = packed.shape[1] - 1
    return packed[0, 0], packed[0, 1:], packed[1, 0, :rank]


def low_rank_velocity(momentum: Array, packed: Array) -> Array:
    """M^{-1} p = s * (y + U ((Lambda - 1) (U^T y))), y = s * p: O(dim * rank)."""
    s, ut, lam = _unpack(packed)
    y = s * momentum
    return s * (y + ((lam - 1.0) * (ut @ y)) @ ut)


def low_rank_momentum(z: Array, packed: Array) -> Array:
    """p = F z with F F^T = M: (z + U ((Lambda^{-1/2} - 1) (U^T z))) / s."""
    s, ut, lam = _unpack(packed)
    return (z + ((lam ** -0.5 - 1.0) * (ut @ z)) @ ut) / s


def low_rank_dense(packed: Array) -> Array:
    """The (dim, dim) M^{-1} the packed form applies (reported as the run's metric)."""
    s, ut, lam = _unpack(packed)
    scaled = jnp.eye(s.shape[0], dtype=s.dtype) + (ut.T * (lam - 1.0)) @ ut
    inverse = scaled * jnp.outer(s, s)
    return 0.5 * (inverse + inverse.T)
