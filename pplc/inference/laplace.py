"""Laplace approximation: a Gaussian at the mode with the inverse negative Hessian as covariance.

Why: a second-order Taylor expansion of the log density at its mode u*,
log p(u) ~ log p(u*) - 1/2 (u - u*)^T H (u - u*) with H = -grad^2 log p(u*), is the log
density of N(u*, H^-1); it is exact for a Gaussian target and good when the posterior is
close to one (large data, Bernstein-von Mises). As Stan's `laplace` method does, it is
taken on the unconstrained space, at the mode of the unconstrained density including the
log-Jacobian (`find_map` with the full `logdensity_fn`, Stan's jacobian=true), where the
shape is closer to Gaussian than on the constrained one; draws are then mapped through the
constraining transforms like any other unconstrained draws.

How: H by `jax.hessian` (forward over reverse), symmetrized against rounding; H = C C^T by
Cholesky, which fails exactly when H is not positive definite, i.e. when the point is not
a strict local maximum (a saddle, a minimum, or a flat direction) and no Gaussian exists;
that raises `PplcError`. Draws: u = u* + C^-T z, z ~ N(0, I), since Cov(C^-T z) =
C^-T C^-1 = (C C^T)^-1 = H^-1. The covariance is C^-T C^-1 by triangular solves, never an
explicit inverse of H. All of it is one compiled program (cached through `programs`; `data`
and the mode are runtime arguments).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from pplc.errors import error
from pplc.inference import programs
from pplc.inference.psis import far_from_posterior, psis

Array = jax.Array


class LaplaceResult(NamedTuple):
    """Draws from N(mean, cov) on the unconstrained space; mean is the mode given."""

    draws: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    log_density_at_mode: float
    pareto_k: float = float("nan")   # PSIS k-hat of p/q at the draws: > 0.7, far from Gaussian


def _program(logdensity_fn: Callable, num_draws: int):
    """(mode, key, data) -> (log density, cov, draws, ok, min eigenvalue of H, log p - log q
    at the draws)."""

    def run(mode: Array, key: Array, data: Any):
        f = lambda x: logdensity_fn(x, data)
        lp = f(mode)
        neg_hess = -jax.hessian(f)(mode)
        neg_hess = 0.5 * (neg_hess + neg_hess.T)  # symmetric up to rounding
        chol = jnp.linalg.cholesky(neg_hess)  # NaN where H is not positive definite
        ok = jnp.all(jnp.isfinite(chol)) & jnp.isfinite(lp)
        eye = jnp.eye(mode.shape[0], dtype=mode.dtype)
        chol_inv = solve_triangular(chol, eye, lower=True)  # C^-1
        cov = chol_inv.T @ chol_inv  # H^-1 = C^-T C^-1
        z = jax.random.normal(key, (num_draws, mode.shape[0]), mode.dtype)
        draws = mode + z @ chol_inv  # rows: (C^-T z)^T = z^T C^-1
        min_eig = jnp.linalg.eigvalsh(neg_hess)[0]
        # q(mode + C^-T z) = N(z; 0, I) |det C|: log q = -|z|^2/2 - d/2 log 2pi + log|det C|
        log_q = -0.5 * jnp.sum(z ** 2, axis=1) - 0.5 * mode.shape[0] * jnp.log(2 * jnp.pi) \
            + jnp.sum(jnp.log(jnp.diag(chol)))
        log_p = jax.lax.map(f, draws) if num_draws else jnp.zeros(0, mode.dtype)
        return lp, cov, draws, ok, min_eig, log_p - log_q

    return run


def laplace(
    logdensity_fn: Callable[[Array, Any], Array],
    data: Any,
    mode: Any,
    rng_key: Array,
    num_draws: int = 1000,
) -> LaplaceResult:
    """N(mode, (-Hessian)^-1) on the unconstrained space, and `num_draws` draws from it.

    Parameters:
        logdensity_fn: pure, traceable `(position, data) -> scalar`, not jitted.
        data: pytree of arrays, a runtime argument of the compiled program.
        mode: (dim,) the mode, e.g. `find_map(...).position` (a `MAPResult` is accepted).
        rng_key: a JAX key.

    Raises `PplcError` when the Hessian there is not negative definite (not a strict
    maximum), or the log density is not finite there.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> f = lambda x, data: -0.5 * jnp.sum(x**2 / data["var"])
        >>> r = laplace(f, {"var": np.array([1.0, 4.0])}, np.zeros(2), jax.random.key(0))
        >>> np.round(np.diag(r.cov), 12).tolist()
        [1.0, 4.0]
    """
    if hasattr(mode, "position") and hasattr(mode, "grad_norm"):  # a MAPResult
        mode = mode.position
    position = programs.float_positions(mode, 1, "mode must have shape (dim,)")
    if int(num_draws) < 0:
        raise ValueError(f"num_draws must be non-negative, not {num_draws!r}")
    data = programs.device_data(data)
    program, _ = programs.compiled(
        logdensity_fn,
        ("laplace", int(num_draws)),
        lambda: _program(logdensity_fn, int(num_draws)),
        position, rng_key, data,
    )
    lp, cov, draws, ok, min_eig, log_ratios = program(position, rng_key, data)
    if not bool(ok):
        if not np.isfinite(float(lp)):
            raise error("Laplace approximation: the log density is not finite at the mode "
                        "given", hint="pass the position found by find_map")
        raise error(
            "Laplace approximation: the mode is not a strict maximum: the Hessian of the log "
            "density there is not negative definite (largest eigenvalue "
            f"{-float(min_eig):.3g}), so no Gaussian approximation exists",
            hint="check that find_map converged; a saddle point or a flat direction "
            "(a non-identified parameter) has no Laplace approximation")
    pareto_k = float(psis(np.asarray(log_ratios))[1]) if int(num_draws) else float("nan")
    far = far_from_posterior("the Laplace approximation", pareto_k, int(num_draws))
    if far:
        warnings.warn(far, RuntimeWarning, stacklevel=2)
    return LaplaceResult(
        draws=np.asarray(draws),
        mean=position,
        cov=np.asarray(cov),
        log_density_at_mode=float(lp),
        pareto_k=pareto_k,
    )
