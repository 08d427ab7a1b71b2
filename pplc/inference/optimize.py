"""MAP: the mode of the log density on the unconstrained space, by L-BFGS, compiled end to end.

Why L-BFGS: it is Stan's default optimizer (`optimize` with algorithm=lbfgs): quasi-Newton
curvature from the last 10 steps at the cost of gradients only, which converges
superlinearly on the smooth, unconstrained log densities pplc produces. Here it is optax's
`lbfgs` with its zoom line search (strong Wolfe conditions, Nocedal & Wright alg. 3.5-3.6),
driven by `value_and_grad_from_state`, which reuses the value and gradient the line search
already computed at the accepted point, so each iteration costs the line search's
evaluations and no more. The whole loop is one `lax.while_loop` in one compiled program
(compiled once per log density and shapes through `programs`; `data` is a runtime argument).

Which mode: `logdensity_fn` is the density of the unconstrained parameters, log p(T(u))
plus log|det J_T(u)|, so its mode is NOT the mode of the constrained posterior: for
sigma = exp(u) the Jacobian term u shifts the mode of sigma up. This is Stan's
`optimize(jacobian=true)`, the right centre for a Laplace approximation on the
unconstrained space (`laplace.py`). For the classical MAP of the constrained parameters
(Stan's default `jacobian=false`), pass the log density without the log-Jacobian term
and map the result through the constraining transform.

Stopping (two of Stan's five tests): the gradient norm |g|_2 < tol (Stan's tol_grad,
1e-8), or the relative change of the objective |f_k - f_{k-1}| / max(|f_k|, |f_{k-1}|, 1)
< tol_rel_obj, which catches a point where rounding makes further progress impossible
(the line search then returns an unchanged value). The default is 10 machine epsilons, not
Stan's 1e4: a log density is unnormalized, so the size of f, and with it any test relative
to f, depends on an arbitrary constant; Stan's value stopped Rosenbrock's valley (f -> 0)
5e-6 away from the mode, this one leaves the gradient test in charge. A step that gives a non-finite value stops the
loop with `converged=False` (a value inside jit; the driver warns).
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from pplc.inference import programs

Array = jax.Array

TOL_REL_OBJ = 10 * float(np.finfo(np.float64).eps)  # see the module docstring


class MAPResult(NamedTuple):
    """The mode on the unconstrained space and how the search ended.

    logdensity: the log density at `position`; grad_norm: |gradient|_2 there; converged:
    a stopping rule (not max_iterations, not a non-finite value) ended the loop.
    """

    position: np.ndarray
    logdensity: float
    grad_norm: float
    iterations: int
    converged: bool
    compile_seconds: float
    seconds: float


class _LoopState(NamedTuple):
    position: Array
    opt_state: Any
    value: Array  # objective f = -log density at position
    prev_value: Array
    iteration: Array
    grad_norm: Array
    failed: Array


def _program(logdensity_fn: Callable, memory_size: int, max_linesearch_steps: int):
    """(position, max_iterations, tol, tol_rel_obj, data) -> final _LoopState."""

    def run(position: Array, max_iterations: Array, tol: Array, tol_rel_obj: Array, data: Any):
        objective = lambda x: -logdensity_fn(x, data)
        opt = optax.lbfgs(
            memory_size=memory_size,
            linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=max_linesearch_steps),
        )
        value_and_grad = optax.value_and_grad_from_state(objective)

        value0, grad0 = jax.value_and_grad(objective)(position)
        start = _LoopState(position, opt.init(position), value0, jnp.asarray(jnp.inf, value0.dtype),
                           jnp.int32(0), jnp.linalg.norm(grad0),
                           ~(jnp.isfinite(value0) & jnp.all(jnp.isfinite(grad0))))

        def small_rel_change(s: _LoopState) -> Array:
            scale = jnp.maximum(jnp.maximum(jnp.abs(s.value), jnp.abs(s.prev_value)), 1.0)
            return jnp.abs(s.value - s.prev_value) / scale < tol_rel_obj

        def cond(s: _LoopState) -> Array:
            done = (s.grad_norm < tol) | small_rel_change(s) | s.failed
            return ~done & (s.iteration < max_iterations)

        def body(s: _LoopState) -> _LoopState:
            value, grad = value_and_grad(s.position, state=s.opt_state)
            updates, opt_state = opt.update(grad, s.opt_state, s.position, value=value,
                                            grad=grad, value_fn=objective)
            position = optax.apply_updates(s.position, updates)
            # The line search stored f and g at the new point: reuse them for the checks.
            new_value = optax.tree.get(opt_state, "value")
            new_grad = optax.tree.get(opt_state, "grad")
            ok = jnp.isfinite(new_value) & jnp.all(jnp.isfinite(new_grad)) & jnp.all(
                jnp.isfinite(position))
            return _LoopState(
                position=jnp.where(ok, position, s.position),
                opt_state=opt_state,
                value=jnp.where(ok, new_value, s.value),
                prev_value=s.value,
                iteration=s.iteration + 1,
                grad_norm=jnp.where(ok, jnp.linalg.norm(new_grad), s.grad_norm),
                failed=~ok,
            )

        final = lax.while_loop(cond, body, start)
        converged = ~final.failed & ((final.grad_norm < tol) | small_rel_change(final))
        return final.position, -final.value, final.grad_norm, final.iteration, converged

    return run


def find_map(
    logdensity_fn: Callable[[Array, Any], Array],
    data: Any,
    init_position: Any,
    *,
    max_iterations: int = 1000,
    tol: float = 1e-8,
    tol_rel_obj: float = TOL_REL_OBJ,
    memory_size: int = 10,
    max_linesearch_steps: int = 30,
) -> MAPResult:
    """Maximize `logdensity_fn(x, data)` over the unconstrained x with L-BFGS.

    Parameters:
        logdensity_fn: pure, traceable `(position, data) -> scalar`, not jitted; include
            the log-Jacobian for Stan's jacobian=true mode, leave it out for jacobian=false.
        data: pytree of arrays, a runtime argument of the compiled program.
        init_position: (dim,) start on the unconstrained space.
        max_iterations: L-BFGS iterations (each one line search).
        tol: stop when the gradient's 2-norm is below it.
        tol_rel_obj: stop when the relative change of the log density is below it.

    Returns a `MAPResult`; warns (RuntimeWarning) when it did not converge.

    Example:
        >>> import jax.numpy as jnp, numpy as np
        >>> f = lambda x, data: -0.5 * jnp.sum((x - data["mu"]) ** 2)
        >>> r = find_map(f, {"mu": np.array([1.0, 2.0])}, np.zeros(2))
        >>> np.round(r.position, 6).tolist()
        [1.0, 2.0]
    """
    position = programs.float_positions(init_position, 1, "init_position must have shape (dim,)")
    dtype = position.dtype
    data = programs.device_data(data)
    args = (position, np.asarray(int(max_iterations), np.int32), np.asarray(tol, dtype),
            np.asarray(tol_rel_obj, dtype), data)
    program, compile_seconds = programs.compiled(
        logdensity_fn,
        ("map-lbfgs", int(memory_size), int(max_linesearch_steps)),
        lambda: _program(logdensity_fn, int(memory_size), int(max_linesearch_steps)),
        *args,
    )
    start = time.perf_counter()
    x, lp, grad_norm, iterations, converged = jax.block_until_ready(program(*args))
    seconds = time.perf_counter() - start
    result = MAPResult(
        position=np.asarray(x),
        logdensity=float(lp),
        grad_norm=float(grad_norm),
        iterations=int(iterations),
        converged=bool(converged),
        compile_seconds=compile_seconds,
        seconds=seconds,
    )
    if not result.converged:
        why = ("the log density or its gradient became non-finite"
               if not np.isfinite(result.logdensity) or result.iterations < max_iterations
               else f"max_iterations={max_iterations} reached")
        warnings.warn(f"MAP optimization did not converge: {why} (gradient norm "
                      f"{result.grad_norm:.3g})", RuntimeWarning, stacklevel=2)
    return result
