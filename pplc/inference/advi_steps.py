"""ADVI's averaging phase, shared by full-batch (`advi.py`) and minibatch
(`minibatch_advi.py`) ADVI: its step measured in q's sds, and its windows.

Why. advi_kernel's step moves the mean by about eta / sqrt(t) in the parameter's own
units (the gradient divided by its running RMS): 0.03 at t = 1000 with eta = 1. Where the
posterior sd is ~1e-3 (a logistic regression with 10^7 rows, or one with scaled
covariates) that is tens of posterior sds a step: the iterate jitters far more than the
posterior is wide, and since the log-sd gradient carries sd * eps * H (mu - mode), that
jitter's noise drowns its signal (1 - sd^2 H). The sds were then still narrowing when
Stan's rule fired (it watches the ELBO's relative change, which cannot see them), and the
fit came out 1.5-3.3 times too wide with means several sds off, reported as converged
(docs/scaling.md; tests/inference/test_minibatch_scales.py and
test_advi_narrow_posterior.py).

The step (`phase_step`): in the phase the mean moves by PHASE_RATE (0.05) times the
normalized gradient times q's current sd, a constant rate (no t^-1/2 decay: the window
average does the averaging), so in units of q the problem is the same at any N or
parameter scale. Fullrank scales row i of L's off-diagonal moves by coordinate i's sd as
well. A coordinate that must travel far along a ridge moves at most 0.05 conditional sds
a step, so its windows keep moving for longer: the rule below waits for them, or says
they did not settle.

The windows (`window_length`, `window_drift`, `settled`, `unsettled`): the phase runs in
windows of max(T/2, MIN_WINDOW) iterations (T: the iterations before Stan's rule fired);
each window starts from the last one's average (the iterate restarts there) and averages
its own iterates plainly (a transient would widen the average). The phase ends when a
window's average differs from the one before by less than MEAN_TOL q-sds in every mean
and SD_TOL in every log sd (both times sqrt(2 log 2d): the largest of d noises), or at
max_iterations; then, unless settled, the fit warns that it was still moving and by how
much, and `converged` is False.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array
PHASE_RATE = 0.05    # the averaging phase's step, in q's sds (module docstring)
MIN_WINDOW = 500     # iterations of an averaging window at least (module docstring)
# the phase stops when two successive windows' averages differ by less than these times
# sqrt(2 log 2d) (d coordinates), in every coordinate: a mean by MEAN_TOL of q's sds, a
# log sd by SD_TOL (module docstring)
MEAN_TOL, SD_TOL = 0.12, 0.05


def marginal_sds(method: str, rho: Array) -> Array:
    """The sd of each coordinate under q (rho as in advi_kernel.py)."""
    if method == "meanfield":
        return jnp.exp(rho)
    L = jnp.tril(rho, -1) + jnp.diag(jnp.exp(jnp.diag(rho)))
    return jnp.sqrt(jnp.sum(L * L, axis=1))


def in_sds(method: str, old, new):
    """`new` (advi_kernel's step from `old`, taken with the rate PHASE_RATE) with the moves
    of the mean, and of L's off-diagonal entries (row i in coordinate i's units), scaled
    by q's sds at `old`: a move of PHASE_RATE sds at most, whatever the parameters' units."""
    sd = marginal_sds(method, old.rho)
    mu = old.mu + sd * (new.mu - old.mu)
    if method == "meanfield":
        return new._replace(mu=mu)
    lower = jnp.tril(jnp.ones_like(old.rho), -1)
    rho = new.rho + lower * (sd[:, None] - 1.0) * (new.rho - old.rho)
    return new._replace(mu=mu, rho=rho)


def phase_step(step: Callable, method: str) -> Callable:
    """`step(key, state, eta)` (advi_kernel.build_step) as `(key, state, eta, phase)`:
    with phase (a traced bool), the averaging phase's step (module docstring). The
    kernel's step is eta / sqrt(t) times the normalized gradient, so the phase's constant
    rate is the eta sqrt(t) PHASE_RATE, and its moves are then scaled by q's sds."""

    def stepped(key: Array, state, eta: Array, phase: Array):
        t = (state.opt_state.count + 1).astype(state.mu.dtype)
        new, info = step(key, state, jnp.where(phase, PHASE_RATE * jnp.sqrt(t), eta))
        new = lax.cond(phase, lambda: in_sds(method, state, new), lambda: new)
        return new, info

    return stepped


def window_length(iterations: int, eval_elbo: int) -> int:
    """An averaging window's iterations when Stan's rule fired after `iterations`: half
    of them, at least MIN_WINDOW, rounded up to a multiple of eval_elbo."""
    return -(-max(MIN_WINDOW, iterations // 2) // eval_elbo) * eval_elbo


def window_drift(method: str, before, after) -> tuple[float, float]:
    """How far the phase's average (mu, rho) moved from one window to the next: (the
    largest move of a mean, in q's sds after it; the largest change of a log sd)."""
    sd = lambda rho: np.asarray(marginal_sds(method, jnp.asarray(rho)))
    mean = np.max(np.abs(np.asarray(after[0]) - np.asarray(before[0])) / sd(after[1]))
    return float(mean), float(np.max(np.abs(np.log(sd(after[1]) / sd(before[1])))))


def tolerances(dim: int) -> tuple[float, float]:
    """(mean, log sd) moves between windows below which the phase has settled: MEAN_TOL
    and SD_TOL times sqrt(2 log 2d), how the largest of d noises grows with d."""
    z = float(np.sqrt(2.0 * np.log(2.0 * dim)))
    return MEAN_TOL * z, SD_TOL * z


def settled(drift, dim: int) -> bool:
    """Whether a window's average moved less than `tolerances` from the one before."""
    mean_tol, sd_tol = tolerances(dim)
    return drift is not None and drift[0] < mean_tol and drift[1] < sd_tol


def unsettled(name: str, drift, dim: int, windows: int, window: int, iterations: int,
              max_iterations: int, hint: str) -> str:
    """The warning of a phase that stopped before its averages settled; `name` is the
    method ("ADVI", "minibatch ADVI"), `hint` what to raise."""
    if drift is None:
        return (f"{name} stopped after {iterations} iterations (max_iterations = "
                f"{max_iterations}) before its averaging phase had two windows of {window} "
                "iterations to compare: "
                "whether its means and sds had stopped moving is unknown, and they may be "
                f"wrong; raise {hint}")
    mean_tol, sd_tol = tolerances(dim)
    return (f"{name} stopped after {iterations} iterations ({windows} averaging "
            f"windows of {window}) with its fit still moving: from the window before to "
            f"the last, an sd changed by {100 * (np.exp(drift[1]) - 1):.0f}% and a mean by "
            f"{drift[0]:.2f} sds (settled is under {100 * (np.exp(sd_tol) - 1):.0f}% and "
            f"{mean_tol:.2f} sds): its sds and means may be wrong; raise {hint}")


class Windows:
    """The averaging phase's closed windows, as a fit's loop ends them: how many, the last
    one's average, and how far it moved from the one before (None until two closed). One
    record for full-batch (advi.py) and minibatch (minibatch_advi.py) ADVI's loops."""

    def __init__(self, method: str, dim: int):
        self.method, self.dim = method, dim
        self.count, self.previous, self.drift = 0, None, None

    def close(self, avg) -> bool:
        """A window ended with the average `avg` (mu, rho, ...): whether it has settled."""
        self.count += 1
        current = (np.asarray(avg[0]), np.asarray(avg[1]))
        if self.previous is not None:
            self.drift = window_drift(self.method, self.previous, current)
        self.previous = current
        return settled(self.drift, self.dim)

    def warning(self, name: str, window: int, iterations: int, max_iterations: int,
                hint: str) -> str | None:
        """`unsettled`'s warning when a phase of windows of `window` iterations ran and did
        not settle; None when no phase ran (window 0) or it settled."""
        if not window or settled(self.drift, self.dim):
            return None
        return unsettled(name, self.drift, self.dim, self.count, window, iterations,
                         max_iterations, hint)
