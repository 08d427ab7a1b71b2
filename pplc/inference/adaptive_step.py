"""One adaptive NUTS iteration for `lax.scan`, and the window-end metric update beside it.

Why its own module: inference/adaptation.py holds the adaptation's parts (dual averaging,
Stan's step-size heuristic, Welford estimates, the metric a window ends with, the chain's
state types) and inference/mcmc.py drives chunks of iterations from Python; this module
puts the parts together into what one compiled chunk runs. `build_adaptive_step` is the
iteration: step-size search where the schedule asks, the NUTS transition, the dual
averaging and Welford updates, in Stan's order. `window_end_update` sets the metric at a
window's end; for the dense and low-rank metrics it calls LAPACK, which XLA:CPU runs op by
op inside a loop, so `scan_between_window_ends` runs it outside the loop of iterations
(benchmarks/profile_notes.md, "LAPACK out of the loop").
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from pplc.inference.adaptation import (
    AdaptationState,
    ChainState,
    dual_averaging_init,
    dual_averaging_update,
    find_reasonable_step_size,
    welford_init,
    welford_update,
    window_low_rank,
    window_low_rank_dense,
    window_metric,
)
from pplc.inference.integrator import LogDensityAndGrad, mass_matrix_sqrt
from pplc.inference.nuts import NUTSInfo
from pplc.inference.nuts import init as nuts_init
from pplc.inference.schedule import ScheduleRow

Array = jax.Array


def needs_lapack(cs: ChainState) -> bool:
    """Whether the window-end metric update calls LAPACK (dense and low-rank metrics: eigh,
    Cholesky). Static: read from the state's shapes at trace time."""
    ad = cs.adaptation
    return ad.mass_matrix_sqrt is not None or ad.low_rank is not None


def build_adaptive_step(
    kernel: Callable, logdensity_and_grad: LogDensityAndGrad, target_accept: float = 0.8,
    metric_update: bool = True,
) -> Callable[[ChainState, ScheduleRow], tuple[ChainState, tuple]]:
    """`step(chain_state, row) -> (chain_state, (position, info, step_size))` for `lax.scan`.

    The same step serves warmup (row.adapt) and sampling (step size exp(x_bar), metric
    frozen), so the NUTS kernel is compiled once for both phases.

    With `metric_update=False` the step leaves a window's end to the caller, which must
    apply `window_end_update(state, window_end(row))` right after the step (before the next
    one): the same computation, outside the loop. Why: the dense and low-rank updates call
    LAPACK through XLA custom calls, and XLA:CPU runs a while loop that holds a custom call
    op by op through its thunk executor instead of compiling it as one function; inside the
    per-iteration loop that cost eight schools ~0.7 us of CPU per gradient, twice the
    diagonal metric's whole step (benchmarks/profile_notes.md, "LAPACK out of the loop").
    """

    def transition(carry):
        state, key, eps, inv_mass, sqrt_mass, _ = carry  # inv_mass: what the kernel applies
        new_state, info = kernel(key, state, eps, inv_mass, sqrt_mass)
        return new_state, key, eps, inv_mass, sqrt_mass, info

    def step(cs: ChainState, row: ScheduleRow):
        ad = cs.adaptation
        key = jax.random.fold_in(cs.rng_key, row.iteration)
        k_search, k_nuts = jax.random.split(key)
        dtype = cs.nuts.position.dtype

        # Step-size search: at the start, and after the metric updates the schedule says
        # (Stan does it right after the update, at the same point, so doing it here before
        # the next transition is the same computation). At the start the log density and
        # gradient are evaluated here too, so that a chain state can be built on the host
        # without a compiled init.
        reinit = row.reinit & row.active
        nuts_state = lax.while_loop(
            lambda c: c[0],
            lambda c: (jnp.array(False), nuts_init(c[1].position, logdensity_and_grad)),
            (reinit, cs.nuts),
        )[1]
        eps0 = jnp.exp(ad.dual.log_step_size)
        applied = ad.inverse_mass_matrix if ad.low_rank is None else ad.low_rank
        eps_found, n_search = find_reasonable_step_size(
            k_search, nuts_state, eps0, applied, logdensity_and_grad, active=reinit,
            sqrt_mass=ad.mass_matrix_sqrt,
        )
        n_search = n_search + reinit.astype(jnp.int32)
        dual = jax.tree.map(
            lambda a, b: jnp.where(reinit, a, b), dual_averaging_init(eps_found), ad.dual
        )
        eps = jnp.exp(jnp.where(row.adapt, dual.log_step_size, dual.log_step_size_avg))

        # The transition, skipped on padding iterations (a while_loop of 0 or 1 trips
        # rather than lax.cond, which vmap would turn into "run both").
        zero = jnp.zeros((), dtype)
        no_info = NUTSInfo(jnp.array(False), jnp.int32(0), jnp.int32(0), zero, zero, jnp.array(False))
        carry0 = (nuts_state, k_nuts, eps, applied, ad.mass_matrix_sqrt, no_info)
        _, out = lax.while_loop(
            lambda c: c[0], lambda c: (jnp.array(False), transition(c[1])), (row.active, carry0)
        )
        new_nuts, _, _, _, _, info = out

        # Adaptation updates (Stan's adapt_diag_e_nuts::transition order).
        adapt = row.adapt & row.active
        dual_new = dual_averaging_update(dual, info.acceptance_rate, target_accept)
        dual = jax.tree.map(lambda a, b: jnp.where(adapt, a, b), dual_new, dual)
        def accumulate(w, x):
            return jax.tree.map(lambda a, b: jnp.where(row.in_window & adapt, a, b), welford_update(w, x), w)

        welford = accumulate(ad.welford, new_nuts.position)
        grads = None if ad.grad_welford is None else accumulate(ad.grad_welford, new_nuts.logdensity_grad)
        new_cs = ChainState(
            new_nuts,
            ad._replace(dual=dual, welford=welford, grad_welford=grads),
            cs.rng_key,
            cs.n_extra_grads + n_search,
        )
        if metric_update:
            new_cs = window_end_update(new_cs, window_end(row))
        return new_cs, (new_nuts, info, eps)

    return step


def window_end(row: ScheduleRow) -> Array:
    """Whether the iteration of `row` ends a metric window (the metric is then updated)."""
    return row.window_end & row.adapt & row.active


def window_end_update(cs: ChainState, end: Array) -> ChainState:
    """At a window's end (`end`), the metric from the window's estimates, which restart.

    Stan's adapt_diag_e_nuts::transition order: this follows the iteration's draw and step
    size update. Dense and low-rank: O(dim^3) and LAPACK, so inside a 0-or-1-trip while loop
    (not lax.cond, which vmap would turn into "run both"); diagonal: elementwise.
    """
    ad = cs.adaptation
    welford, grads = ad.welford, ad.grad_welford
    dtype = cs.nuts.position.dtype
    dense = needs_lapack(cs)   # the (dim, dim) running covariances restart below
    inv_mass, sqrt_mass, low_rank = ad.inverse_mass_matrix, ad.mass_matrix_sqrt, ad.low_rank
    directions = ad.directions
    if low_rank is not None:  # O(dim^3) eigendecompositions, only at a window's end
        rank = low_rank.shape[1] - 1

        def new_low_rank(carry):
            m, packed = window_low_rank(welford, grads, rank)
            ok = jnp.all(jnp.isfinite(packed)) & jnp.all(packed[1, 0, :rank] > 0)
            return jnp.array(False), jax.tree.map(lambda a, b: jnp.where(ok, a, b), (m, packed), carry[1])

        inv_mass, low_rank = lax.while_loop(lambda c: c[0], new_low_rank, (end, (inv_mass, low_rank)))[1]
        directions = jnp.sum(low_rank[1, 0, :rank] != 1.0).astype(jnp.int32)  # dropped: lambda 1
    elif dense:  # O(dim^3), so only at a window's end (0 or 1 trips, as above)
        def new_metric(carry):
            m, kept = (window_metric(welford, grads), None) if directions is None \
                else window_low_rank_dense(welford, grads)
            s = mass_matrix_sqrt(m)
            ok = jnp.all(jnp.isfinite(m)) & jnp.all(jnp.isfinite(s))  # else keep the old metric
            return jnp.array(False), jax.tree.map(lambda a, b: jnp.where(ok, a, b), (m, s, kept), carry[1])

        inv_mass, sqrt_mass, directions = lax.while_loop(
            lambda c: c[0], new_metric, (end, (inv_mass, sqrt_mass, directions)))[1]
    else:
        m = window_metric(welford, grads)
        ok = jnp.all(jnp.isfinite(m) & (m > 0))  # a window whose estimate is unusable is skipped
        inv_mass = jnp.where(end & ok, m, inv_mass)
    restart = welford_init(inv_mass.shape[0], dtype, dense)
    welford = jax.tree.map(lambda a, b: jnp.where(end, a, b), restart, welford)
    if grads is not None:
        grads = jax.tree.map(lambda a, b: jnp.where(end, a, b), restart, grads)
    return cs._replace(adaptation=AdaptationState(
        ad.dual, welford, inv_mass, sqrt_mass, grads, low_rank, directions))


def scan_between_window_ends(body: Callable, cs: ChainState, rows: ScheduleRow):
    """`lax.scan(body, cs, rows)` with `window_end_update` applied after each window's end,
    outside the loop that runs the iterations.

    Why: the dense and low-rank metrics' window-end update calls LAPACK (XLA custom calls),
    and XLA:CPU runs a while loop holding a custom call op by op through its thunk executor.
    So the iterations run in an inner loop free of custom calls, compiled as one function,
    until a window's end or the chunk's end; the update then runs once in the outer loop,
    which turns once per window (the sampling phase has none: one trip per chunk). The
    iterations, their order and their arithmetic are those of the scan.
    """
    n = rows.iteration.shape[0]
    first = jax.tree.map(lambda a: a[0], rows)
    out_shape = jax.eval_shape(body, cs, first)[1]
    outs0 = jax.tree.map(lambda x: jnp.zeros((n, *x.shape), x.dtype), out_shape)

    def segment(carry):
        i, cs, outs = carry

        def run(inner):
            j, cs, outs, _ = inner
            row = jax.tree.map(lambda a: a[j], rows)
            cs, out = body(cs, row)
            outs = jax.tree.map(lambda buf, x: lax.dynamic_update_index_in_dim(buf, x, j, 0), outs, out)
            return j + 1, cs, outs, window_end(row)

        j, cs, outs, end = lax.while_loop(lambda c: (c[0] < n) & ~c[3], run,
                                          (i, cs, outs, jnp.array(False)))
        return j, window_end_update(cs, end), outs

    _, cs, outs = lax.while_loop(lambda c: c[0] < n, segment, (jnp.int32(0), cs, outs0))
    return cs, outs


def window_end_rows(rows: ScheduleRow) -> frozenset:
    """The indices of the (host) schedule's rows that end a metric window (`window_end`)."""
    ends = np.asarray(rows.window_end) & np.asarray(rows.adapt) & np.asarray(rows.active)
    return frozenset(int(i) for i in np.flatnonzero(ends))


def window_end_program(batched: bool) -> Callable:
    """`window_end_update` as a program of its own, `(chain state(s), end) -> chain state(s)`,
    for a driver whose chunks stop at each window's end (mcmc.sample_nuts).

    Why: inside the chunk program the update (LAPACK custom calls) needs
    `scan_between_window_ends`' loops around the iterations, and that program compiled in
    ~6.5 CPU-s for eight schools with the low-rank metric, against ~3.4 for the plain scan
    plus ~1.3 for this program (benchmarks/startup.md, session 10). The same computation on
    the same state, so the same bits; it runs once per window and chain.
    """
    return jax.vmap(window_end_update, in_axes=(0, None)) if batched else window_end_update
