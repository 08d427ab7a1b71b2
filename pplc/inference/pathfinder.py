"""Pathfinder: Gaussian approximations along an L-BFGS path, the best by ELBO, PSIS-pooled.

Why: Pathfinder (Zhang, Carpenter, Gelman & Vehtari 2022, JMLR 23(306)) finds, for the price
of one optimization run and a few hundred log density evaluations, draws good enough to
start NUTS in the typical set, or to stand in for the posterior when it is near Gaussian.
A single path runs L-BFGS to maximize the log density; at every iterate x_l the L-BFGS
history (s_i, z_i) = (x_{i+1} - x_i, g_i - g_{i+1}) of the last `history_size` pairs gives
an inverse Hessian Sigma_l = diag(alpha) + beta gamma beta^T in low-rank-plus-diagonal form
(Byrd, Nocedal & Schnabel 1994; paper eq. II.1; inference/inverse_hessian.py), with alpha
the diagonal BFGS update of Gilbert & Lemarechal (1989) along the whole path (paper
Alg. 3), pairs failing the curvature condition s.z > eps |z|^2 skipped. The
approximation is N(mu_l, Sigma_l), mu_l = x_l + Sigma_l grad log p(x_l) (one quasi-Newton step
ahead); the iterate with the highest ELBO, estimated with `num_elbo_draws` draws, is kept,
and `num_draws` draws are taken from it (paper Alg. 4, through a thin QR of
diag(alpha)^-1/2 beta so that the cost is O(d m^2)).

Multi-path (paper Alg. 2, Stan's default): `num_paths` paths from different starting
points, the draws pooled, and `num_draws` of them resampled with replacement with
Pareto-smoothed importance weights (Vehtari, Simpson, Gelman, Yao & Gabry 2024); the
Pareto k-hat of the pooled weights is reported (k < 0.7: the weights are reliable). One
departure from Stan: the weight of a draw is p/q_mix, q_mix the equal mixture of the
paths' approximations (the balance heuristic of multiple importance sampling, Veach &
Guibas 1995), not p/q of its own path. It is never more than num_paths times Stan's weight,
so one path whose ELBO estimate picked a too-wide iterate no longer gives the pool a
heavy tail: on 2-d Gaussians, k-hat fell from up to 0.79 to below 0.5.

Compilation: one program runs a whole path (L-BFGS, line search, ELBO at every iterate)
inside a `lax.while_loop`; a second draws from the chosen approximation. Both are cached
by `programs.compiled`, `data` is a runtime argument, and the paths call the same executable
one after the other, so a rerun with a new seed, new data of the same shapes or a different
number of paths compiles nothing (a new `num_draws` recompiles only the small draw program).
"""

from __future__ import annotations

import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.linalg import solve_triangular

from pplc.errors import error
from pplc.inference import programs
from pplc.inference.gaussian_noise import normal_draws
from pplc.inference.inverse_hessian import (  # noqa: F401  (inverse_hessian: re-exported)
    Approximation,
    inverse_hessian,
    inverse_hessian_factors,
)
from pplc.inference.lbfgs import CURVATURE_EPS, lbfgs_direction, line_search, update_alpha
from pplc.inference.psis import psis

Array = jax.Array

# Path status codes (failures are values inside jit; the driver turns them into errors).
STATUS_RUNNING, STATUS_CONVERGED, STATUS_MAX_ITER, STATUS_LINE_SEARCH, STATUS_NONFINITE_INIT = range(5)
STATUS_MESSAGES = {
    STATUS_CONVERGED: "converged",
    STATUS_MAX_ITER: "reached max_iterations",
    STATUS_LINE_SEARCH: "line search found no better point",
    STATUS_NONFINITE_INIT: "log density or gradient not finite at the starting point",
}


class PathfinderResult(NamedTuple):
    """Draws on the unconstrained space and diagnostics of a (multi-path) Pathfinder run.

    draws: (num_draws, dim); log_density: log p of each draw (target, unnormalized);
    log_q: log density of each draw under the equal mixture of the paths' Gaussian
    approximations (the density the pool was drawn from); elbo: the best path's ELBO estimate; pareto_k: PSIS k-hat of the pooled weights;
    num_paths: paths that produced an approximation (failed paths are dropped);
    n_grad_evals: gradient evaluations of all paths (the log density evaluations of the
    ELBO estimates and draws, which need no gradient, are not counted); compile_seconds:
    compilation (0.0 on a cache hit); seconds: the rest of the wall time.
    """

    draws: np.ndarray
    log_density: np.ndarray
    log_q: np.ndarray
    elbo: float
    pareto_k: float
    num_paths: int
    n_grad_evals: int
    compile_seconds: float
    seconds: float


class _Gaussian(NamedTuple):
    mean: Array
    sqrt_alpha: Array
    Q: Array
    L_minus_I: Array
    logdet: Array


class _PathState(NamedTuple):
    x: Array
    logp: Array
    grad: Array
    alpha: Array
    S: Array
    Z: Array
    valid: Array
    iteration: Array
    n_grad: Array
    status: Array
    best: Approximation
    best_elbo: Array


def _gaussian(a: Approximation) -> _Gaussian:
    """mu = x + Sigma grad; a square root of Sigma via thin QR (paper Alg. 4)."""
    beta, gamma = inverse_hessian_factors(a)
    mean = a.position + a.alpha * a.grad + beta @ (gamma @ (beta.T @ a.grad))
    sqrt_alpha = jnp.sqrt(a.alpha)
    Q, Rq = jnp.linalg.qr(beta / sqrt_alpha[:, None], mode="reduced")
    k = Rq.shape[0]
    L = jnp.linalg.cholesky(jnp.eye(k, dtype=Rq.dtype) + Rq @ gamma @ Rq.T)
    logdet = jnp.sum(jnp.log(a.alpha)) + 2.0 * jnp.sum(jnp.log(jnp.diag(L)))
    return _Gaussian(mean, sqrt_alpha, Q, L - jnp.eye(k, dtype=L.dtype), logdet)


def _draw(g: _Gaussian, u: Array) -> tuple[Array, Array]:
    """phi = mu + alpha^1/2 (Q (L - I) Q^T u + u), u ~ N(0, I); returns (phi, log q(phi))."""
    dim = u.shape[-1]
    v = u + ((u @ g.Q) @ g.L_minus_I.T) @ g.Q.T
    phi = g.mean + g.sqrt_alpha * v
    log_q = -0.5 * (g.logdet + jnp.sum(u * u, axis=-1) + dim * jnp.log(2.0 * jnp.pi))
    return phi, log_q


def _log_q(g: _Gaussian, phi: Array) -> Array:
    """log N(phi; mu, Sigma): u = T^-1 alpha^-1/2 (phi - mu), T^-1 = I + Q (L^-1 - I) Q^T."""
    dim = phi.shape[-1]
    v = (phi - g.mean) / g.sqrt_alpha
    w = v @ g.Q
    L = g.L_minus_I + jnp.eye(w.shape[-1], dtype=w.dtype)
    u = v + (solve_triangular(L, w.T, lower=True).T - w) @ g.Q.T
    return -0.5 * (g.logdet + jnp.sum(u * u, axis=-1) + dim * jnp.log(2.0 * jnp.pi))


def _logp_batch(logdensity_fn: Callable, phi: Array, data: Any) -> Array:
    lp = jax.vmap(lambda z: logdensity_fn(z, data))(phi)
    return jnp.where(jnp.isnan(lp), -jnp.inf, lp)


def _elbo(logdensity_fn: Callable, a: Approximation, key: Array, num_draws: int, data: Any) -> Array:
    g = _gaussian(a)
    u = normal_draws(key, (num_draws, a.position.shape[0]), a.position.dtype)
    phi, log_q = _draw(g, u)
    elbo = jnp.mean(_logp_batch(logdensity_fn, phi, data) - log_q)
    return jnp.where(jnp.isnan(elbo), -jnp.inf, elbo)


def _path_program(logdensity_fn: Callable, dim: int, history_size: int, max_iterations: int,
                  num_elbo_draws: int):
    """`run(x0, key, tol, data) -> (best Approximation, best ELBO, iterations, n_grad, status)`."""

    def run(x0, key, tol, data):
        dtype = x0.dtype
        logp_and_grad = jax.value_and_grad(lambda z: logdensity_fn(z, data))

        def neg(z):  # L-BFGS minimizes F = -log p
            lp, g = logp_and_grad(z)
            return -lp, -g

        lp0, g0 = logp_and_grad(x0)
        finite0 = jnp.isfinite(lp0) & jnp.all(jnp.isfinite(g0))
        m = history_size
        zeros_h = jnp.zeros((m, dim), dtype)
        no_pairs = jnp.zeros(m, bool)
        ones = jnp.ones(dim, dtype)
        start = _PathState(
            x=x0, logp=lp0, grad=g0, alpha=ones, S=zeros_h, Z=zeros_h, valid=no_pairs,
            iteration=jnp.int32(0), n_grad=jnp.int32(1),
            status=jnp.where(finite0, STATUS_RUNNING, STATUS_NONFINITE_INIT).astype(jnp.int32),
            best=Approximation(x0, g0, ones, zeros_h, zeros_h, no_pairs),
            best_elbo=jnp.asarray(-jnp.inf, dtype),
        )

        def cond(st):
            return st.status == STATUS_RUNNING

        def body(st):
            G = -st.grad
            d = lbfgs_direction(G, st.S, st.Z, st.valid)
            descent = jnp.dot(G, d) < 0
            d = jnp.where(descent, d, -G)  # a numerically bad history: fall back to steepest
            first = ~jnp.any(st.valid)
            t0 = jnp.where(first, jnp.minimum(1.0, 1.0 / jnp.linalg.norm(G)), 1.0).astype(dtype)
            ok, t, F1, G1, n_ls = line_search(neg, st.x, -st.logp, G, d, t0)
            x1 = st.x + t * d
            s, z = x1 - st.x, G1 - G  # z = g_l - g_{l+1} in the paper's sign (g = grad log p)
            accept = ok & (jnp.dot(s, z) > CURVATURE_EPS * jnp.dot(z, z))
            alpha = jnp.where(accept, update_alpha(st.alpha, s, z), st.alpha)
            S = jnp.where(accept, jnp.concatenate([st.S[1:], s[None]]), st.S)
            Z = jnp.where(accept, jnp.concatenate([st.Z[1:], z[None]]), st.Z)
            valid = jnp.where(accept, jnp.concatenate([st.valid[1:], jnp.array([True])]), st.valid)
            x1 = jnp.where(ok, x1, st.x)
            lp1, g1 = jnp.where(ok, -F1, st.logp), jnp.where(ok, -G1, st.grad)
            it = st.iteration + 1

            approx = Approximation(x1, g1, alpha, S, Z, valid)
            elbo = lax.cond(ok, lambda: _elbo(logdensity_fn, approx, jax.random.fold_in(key, it),
                                              num_elbo_draws, data),
                            lambda: jnp.asarray(-jnp.inf, dtype))
            better = elbo > st.best_elbo
            best = jax.tree.map(lambda new, old: jnp.where(better, new, old), approx, st.best)

            # Converged: relative decrease of -log p, or gradient, below tol.
            change = jnp.abs(lp1 - st.logp) / jnp.maximum(jnp.maximum(jnp.abs(lp1), jnp.abs(st.logp)), 1.0)
            converged = (change < tol) | (jnp.max(jnp.abs(g1)) < tol)
            status = jnp.where(~ok, STATUS_LINE_SEARCH,
                               jnp.where(converged, STATUS_CONVERGED,
                                         jnp.where(it >= max_iterations, STATUS_MAX_ITER, STATUS_RUNNING)))
            return _PathState(x1, lp1, g1, alpha, S, Z, valid, it, st.n_grad + n_ls,
                              status.astype(jnp.int32), best, jnp.maximum(elbo, st.best_elbo))

        end = lax.while_loop(cond, body, start)
        return end.best, end.best_elbo, end.iteration, end.n_grad, end.status

    return run


def _draw_program(logdensity_fn: Callable, num_draws: int):
    """`draw(approximation, rng_key, path, data) -> (draws, log p, log q, the resampling
    key's data)`; the path's key is derived inside (`_path_keys`)."""

    def draw(a: Approximation, rng_key, path, data):
        key = _path_keys(rng_key, path)[1]
        resample_key = jax.random.key_data(jax.random.split(rng_key)[1])
        u = normal_draws(key, (num_draws, a.position.shape[0]), a.position.dtype)
        phi, log_q = _draw(_gaussian(a), u)
        return phi, _logp_batch(logdensity_fn, phi, data), log_q, resample_key

    return draw


def _keyed_path_program(logdensity_fn: Callable, dim: int, history_size: int,
                        max_iterations: int, num_elbo_draws: int):
    """`_path_program`'s run as `run(x0, rng_key, path, tol, data)`: the path's key derived
    inside (`_path_keys`)."""
    run = _path_program(logdensity_fn, dim, history_size, max_iterations, num_elbo_draws)
    return lambda x0, rng_key, path, tol, data: run(x0, _path_keys(rng_key, path)[0], tol, data)


def _path_keys(rng_key: Array, path: Array) -> Array:
    """Path p's two keys, split(fold_in(k_paths, p)) with (k_paths, k_resample) =
    split(rng_key): derived inside the programs, as eager operations each was an XLA
    program of its own (benchmarks/advi_compile.md)."""
    return jax.random.split(jax.random.fold_in(jax.random.split(rng_key)[0], path))


def _log_q_program(a: Approximation, points: Array) -> Array:
    """`log_q(approximation, points) -> log q(points)`, for the mixture density of the pool."""
    return _log_q(_gaussian(a), points)


def _numpy_rng(key: Array) -> np.random.Generator:
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().astype(np.uint64))


def _numpy_rng_from_data(key_data: Any) -> np.random.Generator:
    return np.random.default_rng(np.asarray(key_data).ravel().astype(np.uint64))


def pathfinder(
    logdensity_fn: Callable[[Array, Any], Array],
    data: Any,
    init_positions: Any,
    rng_key: Array,
    *,
    num_draws: int = 1000,
    history_size: int = 6,
    max_iterations: int = 1000,
    num_elbo_draws: int = 25,
    tol: float = 1e-8,
    importance_resampling: bool = True,
) -> PathfinderResult:
    """Multi-path Pathfinder: one L-BFGS path per row of `init_positions`, draws pooled.

    Parameters:
        logdensity_fn: pure, traceable `(position, data) -> scalar`, not jitted.
        data: pytree of arrays, passed to the compiled programs at run time.
        init_positions: (num_paths, dim) starting points on the unconstrained space.
        rng_key: a JAX key; with (k_paths, k_resample) = split(rng_key), path p uses
            fold_in(k_paths, p) and k_resample drives the resampling.
        num_draws: draws taken from each path's best approximation, and returned.
        history_size: L-BFGS pairs kept (Stan: 6); max_iterations: L-BFGS iterations per path.
        num_elbo_draws: draws per ELBO estimate (Stan: 25).
        tol: a path stops when the relative change of log p or the largest gradient
            component falls below it.
        importance_resampling: resample the pooled draws by PSIS weights, with replacement
            (Stan's default); else take `num_draws` of them uniformly without replacement.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> f = lambda x, data: -0.5 * jnp.sum((x - data["mu"]) ** 2)
        >>> r = pathfinder(f, {"mu": np.ones(2)}, np.zeros((4, 2)), jax.random.key(0), num_draws=100)
        >>> r.draws.shape
        (100, 2)
    """
    x0 = np.asarray(init_positions)
    if x0.ndim != 2 or x0.shape[0] < 1 or x0.shape[1] < 1:
        raise ValueError("init_positions must have shape (num_paths, dim)")
    if not np.issubdtype(x0.dtype, np.floating):
        x0 = x0.astype(jnp.result_type(float))
    num_paths, dim = x0.shape
    if min(num_draws, history_size, max_iterations, num_elbo_draws) < 1:
        raise ValueError("num_draws, history_size, max_iterations and num_elbo_draws must be >= 1")
    data = programs.device_data(data)
    # fold_in, not split(rng_key, num_paths): a different number of paths compiles nothing
    tol_arr = np.asarray(tol, dtype=x0.dtype)
    path_ids = [np.int32(p) for p in range(num_paths)]

    run, compile_path = programs.compiled(
        logdensity_fn,
        ("pathfinder-path", int(dim), int(history_size), int(max_iterations), int(num_elbo_draws)),
        lambda: _keyed_path_program(logdensity_fn, int(dim), int(history_size),
                                    int(max_iterations), int(num_elbo_draws)),
        x0[0], rng_key, path_ids[0], tol_arr, data,
    )
    start = time.perf_counter()
    paths = [run(x0[p], rng_key, path_ids[p], tol_arr, data) for p in range(num_paths)]
    paths = [jax.device_get(out) for out in paths]
    n_grad = int(sum(int(out[3]) for out in paths))
    good = [p for p, out in enumerate(paths) if np.isfinite(out[1])]
    if not good:
        reasons = sorted({STATUS_MESSAGES.get(int(out[4]), "no finite ELBO") for out in paths})
        raise error(
            f"pathfinder failed on all {num_paths} paths: no iterate had a finite ELBO "
            f"({'; '.join(reasons)})",
            hint="check that the log density is finite near the starting points, or give other "
            "initial values",
        )
    seconds = time.perf_counter() - start

    approx0 = jax.tree.map(jnp.asarray, paths[good[0]][0])
    draw, compile_draw = programs.compiled(
        logdensity_fn, ("pathfinder-draw", int(num_draws)),
        lambda: _draw_program(logdensity_fn, int(num_draws)),
        approx0, rng_key, path_ids[0], data,
    )
    start = time.perf_counter()
    approxs = [jax.tree.map(jnp.asarray, paths[p][0]) for p in good]
    pooled = [jax.device_get(draw(approxs[i], rng_key, path_ids[p], data))
              for i, p in enumerate(good)]
    phi = np.concatenate([d[0] for d in pooled])
    log_p = np.concatenate([d[1] for d in pooled])
    seconds += time.perf_counter() - start
    # Balance heuristic (Veach & Guibas 1995): weight p / q_mix, q_mix the equal mixture of
    # the paths' approximations that the pool was drawn from; bounded by num_paths * p / q_own.
    log_q_fn, compile_q = programs.compiled(
        _log_q_program, (), lambda: _log_q_program, approxs[0], pooled[0][0])
    start = time.perf_counter()
    per_path = np.stack([np.concatenate([np.asarray(log_q_fn(a, d[0])) for d in pooled]) for a in approxs])
    log_q = np.logaddexp.reduce(per_path, axis=0) - np.log(len(good))
    log_w, k_hat = psis(log_p - log_q)
    rng = _numpy_rng_from_data(pooled[0][3])
    if importance_resampling:
        idx = rng.choice(len(phi), size=num_draws, replace=True, p=np.exp(log_w) / np.exp(log_w).sum())
    else:
        idx = rng.choice(len(phi), size=num_draws, replace=False)
    seconds += time.perf_counter() - start
    return PathfinderResult(
        draws=phi[idx], log_density=log_p[idx], log_q=log_q[idx],
        elbo=float(max(paths[p][1] for p in good)), pareto_k=float(k_hat),
        num_paths=len(good), n_grad_evals=n_grad,
        compile_seconds=compile_path + compile_draw + compile_q, seconds=seconds,
    )


def init_from_pathfinder(result: PathfinderResult, num_chains: int, rng_key: Array) -> np.ndarray:
    """(num_chains, dim) distinct Pathfinder draws with finite log density, to start NUTS.

    Why distinct: resampling is with replacement, and chains started at one point make the
    R-hat computed from them blind to a bad start (Zhang+ 2022, Sec. 5 uses PSIS draws as
    inits). Raises `PplcError` when there are fewer distinct finite draws than chains.
    """
    draws = np.asarray(result.draws)
    ok = np.isfinite(np.asarray(result.log_density)) & np.all(np.isfinite(draws), axis=1)
    unique = np.unique(draws[ok], axis=0)
    if len(unique) < num_chains:
        raise error(
            f"pathfinder gave {len(unique)} distinct draws with a finite log density, fewer "
            f"than the {num_chains} chains to start",
            hint="increase the number of pathfinder draws, or use the default initialization",
        )
    pick = _numpy_rng(rng_key).choice(len(unique), size=num_chains, replace=False)
    return unique[pick]
