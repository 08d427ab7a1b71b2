"""`ode(f, y0, t0, ts, ...)`: the language's ODE solver, on diffrax.

Why its own module: diffrax (and equinox under it) take about a second to import, and only
a model that calls `ode` needs them; the lowering imports this module when it meets one.
"""

from __future__ import annotations

from typing import Callable

import diffrax
import jax
import jax.numpy as jnp

Array = jax.Array


def ode(f: Callable[..., Array], y0, t0, ts, *args, rtol: float = 1e-6, atol: float = 1e-6,
        max_steps: int = 4096) -> Array:
    """Solution of dy/dt = f(t, y, *args), y(t0) = y0, at the times `ts`.

    Why Tsit5 with a PID step-size controller (diffrax): an explicit 5(4) Runge-Kutta
    pair of the same family as the Dormand-Prince RK45 that Stan's `integrate_ode_rk45`
    and scipy's `RK45` use, suited to the non-stiff models the language targets
    (Lotka-Volterra, oscillators). At the same tolerances it is more accurate than Dopri5
    for about the same number of steps: on Lotka-Volterra over [0, 20] at the defaults
    (rtol = atol = 1e-6) its global relative error is 3e-6 against 1.1e-5 (65 steps vs
    58). The global error is not bounded by rtol: it can be several times rtol over long
    ranges. Outputs come from diffrax's dense interpolant at `ts`
    (`SaveAt(ts=ts)`), so output times don't shorten the steps. Reverse-mode gradients in
    y0 and args go through diffrax's RecursiveCheckpointAdjoint (exact derivatives of the
    discrete solve, memory O(max_steps) checkpoints in the worst case).

    Failure: if the solve doesn't reach ts[-1] in `max_steps` steps (stiffness, blow-up,
    NaN parameters), it does not raise, inside jit or outside; every row of the result is
    NaN instead, so a log density that uses it is non-finite and the sampler treats the
    point as divergent (rejected). Stiff systems are out of scope: an explicit method needs
    very many steps on them.

    Parameters
    ----------
    f : callable `f(t, y, *args)`; `y` is an array of shape (len(y0),). It may return an
        array of that shape or a list/tuple of scalars (as a model's `[du_dt, dv_dt]`).
    y0 : initial state, shape (n,).
    t0 : initial time; t0 <= ts[0]. If ts[0] == t0 the first row is y0.
    ts : output times, shape (m,), non-decreasing.
    args : extra arguments to `f` (differentiable).
    rtol, atol : relative and absolute local error tolerances of the step-size controller.
    max_steps : the most steps (accepted and rejected) before the solve counts as failed.

    Returns
    -------
    Array of shape (len(ts), len(y0)): row k is y(ts[k]).

    Example
    -------
    >>> import jax.numpy as jnp
    >>> y = ode(lambda t, y, k: -k * y, jnp.array([1.0]), 0.0, jnp.array([1.0]), 0.5)
    >>> bool(abs(y[0, 0] - jnp.exp(-0.5)) < 1e-6)
    True
    """
    y0, t0, ts = jnp.asarray(y0), jnp.asarray(t0), jnp.asarray(ts)  # lists and ints from data
    dtype = jnp.result_type(float, y0, t0, ts)
    y0 = y0.astype(dtype)
    if y0.ndim != 1:
        raise ValueError(f"ode: the initial state y0 must be a vector, got shape {y0.shape}")
    ts = ts.astype(dtype)
    if ts.ndim != 1 or ts.shape[0] < 1:
        raise ValueError(f"ode: ts must be a non-empty vector of times, got shape {ts.shape}")
    t0 = t0.astype(dtype)

    def vector_field(t, y, fargs):
        dy = f(t, y, *fargs)
        dy = jnp.stack(dy) if isinstance(dy, (list, tuple)) else jnp.asarray(dy)
        return jnp.reshape(dy, y.shape).astype(y.dtype)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        diffrax.Tsit5(),
        t0=t0,
        t1=ts[-1],
        dt0=None,  # the controller picks the first step (Hairer's heuristic)
        y0=y0,
        args=tuple(args),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        adjoint=diffrax.RecursiveCheckpointAdjoint(),
        max_steps=max_steps,
        throw=False,  # failures are values: NaN rows below
    )
    ok = sol.result == diffrax.RESULTS.successful
    return jnp.where(ok, sol.ys, jnp.nan)
