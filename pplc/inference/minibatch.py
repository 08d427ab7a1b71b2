"""Minibatch ADVI: each step sees B random rows of the observations, weighted N/B.

Why: full-batch ADVI evaluates every row at every step, so a step costs O(N) time and the
data must sit in memory. With `batch_size=B` each step draws B distinct rows uniformly
(without replacement) from the observation plate and ascends the stochastic ELBO

    log p(theta) + log|dT/du| + (N/B) * sum over the batch of log p(y_i | theta) + H[q],

which is unbiased for the full ELBO and has an unbiased reparameterization gradient (the
expectation over batches of (N/B) * sum_batch l_i is sum_i l_i), as Pyro's
`plate(subsample_size=)` (Hoffman, Blei, Wang & Paisley 2013, "Stochastic Variational
Inference") does.

Which plate and which arrays: the plan's decision for `--shard-data`
(backends/sharding.py `Sharding`: the observations' plate and the arrays split along it),
not derived again here. It cannot apply, and is refused with the location, where
  * there is nothing to split (no observed array over a data size);
  * a recurrence reads the plate's arrays (a scan, a summed-out Markov chain): its terms
    are not a sum of independent rows;
  * a latent runs over the plate (local latents: a batch would update only B of them, and
    this optimizer has no per-row state), or observations over it are missing (imputed
    entries are latents over the plate);
  * a term reads the plate's arrays without being a sum over its rows (`s ~ Normal(sum(y),
    1)`), or an expression reads the plate's size itself (it would see B, not N).

One compile: the model is conditioned once on the first B rows (its plate size is B, a
compile-time constant), and the lowered model's `weighted_log_density` weighs the
variables over the plate N/B. Batches are gathered on the host from the arrays as given,
so a memory-mapped `.npy` (`np.load(path, mmap_mode="r")`) is read B rows at a time (by
`os.pread`: `_RowFile`) and peak memory is bounded by the batches (`eval_elbo` per
compiled call), not by N (`fit_streaming`; benchmarks/minibatch.py measures it). Row
indices are sorted within a batch so the file is read forward.

Optimizer, eta search, iterate averaging and the convergence rule are advi.py's, with one
change: the ELBO estimates that the rule compares are taken on one fixed batch (drawn
once), so successive estimates differ by the draws from q and the moving parameters only,
not by which rows were drawn.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from pplc.errors import error
from pplc.frontend import ast
from pplc.inference import advi
from pplc.inference.batches import BatchSource
from pplc.ir.graph import Kind

Array = jax.Array


@dataclass(frozen=True)
class MinibatchPlan:
    """The subsampled plate (`size` = `extent` rows), the arrays indexed by it (name ->
    axis) and the weight of each variable whose terms run over it (N/B)."""

    size: str
    extent: int
    batch_size: int
    axes: Mapping[str, int]
    weights: Mapping[str, float]


def plan_minibatch(lowered, batch_size: int, source=None, extent: int | None = None
                   ) -> MinibatchPlan:
    """The plan's sharding read as a minibatch plan, or a located error (module docstring).
    `extent`: the plate's true rows where `lowered` was conditioned on a batch of them."""
    graph, sharding = lowered.graph, lowered.plan.sharding
    source = source if source is not None else graph.source

    def refuse(message, span, hint):
        raise error(f"batch_size: cannot subsample the observations: {message}", source, span,
                    hint=hint)

    if sharding is not None and sharding.whole:
        name, why = next(iter(sharding.whole.items()))
        refuse(f"'{name}' is {why}; its terms are not a sum over independent rows",
               sharding.span, "run without --batch-size")
    if sharding is None or sharding.size is None or not sharding.axes:
        refuse("no observed array runs over a data size" if sharding is None
               else sharding.describe(), None if sharding is None else sharding.span,
               "minibatches subsample the rows of observed data (`data y: real[N]` observed "
               "by a `~`); run without --batch-size")
    size, extent = sharding.size, sharding.extent if extent is None else int(extent)
    batch_size = int(batch_size)
    if not 1 <= batch_size <= extent:
        refuse(f"batch size {batch_size} is not between 1 and {size} = {extent}",
               sharding.span, f"give a batch size of at most {extent}")
    axes = dict(sharding.axes)
    over = lambda plates: any(isinstance(p.stop, ast.Name) and p.stop.id == size
                              for p in plates)
    weights: dict[str, float] = {}
    for variable in graph.variables():
        declared = variable.declared_type.shape if variable.declared_type is not None else ()
        on_plate = any(isinstance(d, ast.Name) and d.id == size for d in declared)
        for piece in variable.pieces:
            exprs = [e for e in (piece.value, piece.distribution, *(piece.indices or ()))
                     if e is not None]
            reads = {n.id for e in exprs for n in ast.names_in(e)}
            if size in reads:
                refuse(f"this statement reads the plate's size '{size}', which a batch "
                       f"would set to {batch_size}", piece.span,
                       f"give {size} as data under another name as well, and read that")
            looped = over(piece.plates)
            for name, where in _foreign_rows(exprs, axes, size, piece.plates):
                refuse(f"this statement reads {name} at {where}: a batch holds only its "
                       "own rows", piece.span,
                       "a row may read only its own row of the observations (no lags); "
                       "run without --batch-size")
            if variable.kind is Kind.LATENT and (on_plate or looped):
                refuse(f"the latent '{variable.name}' runs over {size} (a local latent): a "
                       "batch would update only some of its entries", piece.span,
                       "write it without per-row latents, or run without --batch-size")
            if variable.kind in (Kind.OBSERVED, Kind.FACTOR):
                per_row = (variable.name in axes or looped) if variable.kind is Kind.OBSERVED \
                    else looped
                if per_row:
                    weights[variable.name] = extent / batch_size
                elif reads & set(axes):
                    refuse(f"this term reads {', '.join(sorted(reads & set(axes)))}, "
                           f"indexed by {size}, but is not a sum over its rows", piece.span,
                           "run without --batch-size")
    for name, mask in lowered.data.missing.items():
        if name in axes and np.any(mask):
            refuse(f"'{name}' has missing entries, latents over {size}", sharding.span,
                   "drop the rows with missing values, or run without --batch-size")
    return MinibatchPlan(size, extent, batch_size, axes, weights)


def _foreign_rows(exprs, axes, size, plates):
    """(array, what) for each read of a plate array at a row other than the loop's own
    (`y[t - 1]`), or of the whole array inside a loop over the plate (`mean(y)` per row)."""
    loops = {p.index for p in plates if isinstance(p.stop, ast.Name) and p.stop.id == size}
    out = []
    for expr in exprs:
        inner = set(loops) | {p.index for node in ast.walk(expr)
                              if isinstance(node, ast.OverPlates) for p in node.plates
                              if isinstance(p.stop, ast.Name) and p.stop.id == size}
        indexed = set()
        for node in ast.walk(expr):
            if (isinstance(node, ast.Index) and isinstance(node.value, ast.Name)
                    and node.value.id in axes):
                indexed.add(id(node.value))
                axis = axes[node.value.id]
                index = node.indices[axis] if len(node.indices) > axis else None
                if not (isinstance(index, ast.Name) and index.id in inner):
                    out.append((node.value.id, "another row than its own"))
        if inner:
            for node in ast.walk(expr):
                if isinstance(node, ast.Name) and node.id in axes and id(node) not in indexed:
                    out.append((node.id, "every row, inside a loop over the rows"))
    return out


def head_data(plan: MinibatchPlan, data: Mapping[str, Any]) -> dict[str, Any]:
    """The data with the plate's arrays cut to their first B rows and its size set to B:
    what the model is conditioned on to compile the batch's density once."""
    out = {k: v for k, v in data.items()}
    for name, axis in plan.axes.items():
        if name in out:
            out[name] = np.take(np.asarray(out[name]), np.arange(plan.batch_size), axis=axis)
    out[plan.size] = plan.batch_size
    return out


def _chunk_program(batch_density: Callable, method: str, grad_samples: int,
                   elbo_samples: int, average: bool):
    """(state, avg, eta, key, n_active, power, fixed, batches, eval_batch) -> (state, avg,
    elbo, n_skipped): one step per stacked batch (the first n_active act), the average as
    in advi.py, then the ELBO on the fixed evaluation batch."""

    def run(state, avg, eta, key, n_active, power, fixed, batches, eval_batch):
        step_key, elbo_key = jax.random.split(key)

        def body(carry, xs):
            state, avg = carry
            i, batch = xs
            step = advi.build_step(lambda u: batch_density(u, {**fixed, **batch}), method,
                                   grad_samples)
            new, info = step(jax.random.fold_in(step_key, i), state, eta)
            active = i < n_active
            new = jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state)
            m_mu, m_rho, n = avg   # avg_n = avg_{n-1} + (k + 1) / (n + k) (x_n - avg_{n-1})
            use = active & ~info.skipped
            n = n + use.astype(n.dtype)
            w = jnp.where(use, (power + 1.0) / (n + power), 0.0)
            avg = (m_mu + w * (new.mu - m_mu), m_rho + w * (new.rho - m_rho), n)
            return (new, avg), active & info.skipped

        length = jax.tree.leaves(batches)[0].shape[0]
        (state, avg), skipped = lax.scan(body, (state, avg), (jnp.arange(length), batches))
        mu, rho = avg[:2] if average else (state.mu, state.rho)
        elbo = advi.elbo_estimate(lambda u: batch_density(u, {**fixed, **eval_batch}),
                                  method, mu, rho, elbo_key, elbo_samples)
        return state, avg, elbo, jnp.sum(skipped)

    return run


def fit_minibatch_advi(batch_density: Callable[[Array, Any], Array], fixed: Mapping[str, Any],
                       source: BatchSource, init_position: Any, rng_key: Array, *,
                       method: str = "meanfield", num_draws: int = 1000,
                       grad_samples: int = 1, elbo_samples: int = 100, eval_elbo: int = 100,
                       tol_rel_obj: float = 0.01, max_iterations: int = 10000,
                       learning_rate: float | None = None, adapt_iter: int = 50,
                       average_iterates: bool = True) -> advi.ADVIResult:
    """ADVI on minibatches (module docstring). `batch_density(u, data)`: the weighted log
    density of a batch (plate size B, observations weighted N/B); `fixed`: the data not
    indexed by the plate; `source`: where batches come from. The draws' importance ratios
    would need the full data, so `pareto_k` is not computed (nan)."""
    if method not in advi.METHODS:
        raise ValueError(f"method must be one of {advi.METHODS}, not {method!r}")
    start = time.perf_counter()
    compile_seconds = 0.0
    fixed = {k: jnp.asarray(v) for k, v in fixed.items()}
    position = jnp.asarray(init_position, jnp.float64)
    dtype = position.dtype
    state0 = advi.init(position, method)
    avg0 = (state0.mu, state0.rho, jnp.zeros((), dtype))
    power = np.asarray(advi.AVG_POWER, dtype)
    average = bool(average_iterates)
    adapt_key, run_key, draw_key = jax.random.split(rng_key, 3)
    eval_batch = source.take(source.indices())
    program = _chunk_program(batch_density, method, grad_samples, elbo_samples, average)
    chunk = jax.jit(program)
    n_grad_evals, num_skipped = 0, 0

    def timed(fn, *args):
        began = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        return out, time.perf_counter() - began

    if learning_rate is None:   # advi.py's search: every candidate on the same batches
        etas = np.asarray(advi.ETA_CANDIDATES, dtype)
        adapt = jax.jit(jax.vmap(_chunk_program(batch_density, method, grad_samples,
                                                elbo_samples, False),
                                 in_axes=(None, None, 0, None, None, None, None, None, None)))
        batches = source.stacked(adapt_iter)
        (_, _, elbos, _), seconds = timed(adapt, state0, avg0, etas, adapt_key,
                                          np.asarray(adapt_iter, np.int32), power, fixed,
                                          batches, eval_batch)
        compile_seconds += seconds   # mostly compilation at these sizes
        elbos = np.asarray(elbos)
        n_grad_evals += len(etas) * adapt_iter * grad_samples
        if not np.isfinite(elbos).any():
            raise error(f"minibatch ADVI: every step-size candidate "
                        f"{tuple(float(e) for e in etas)} failed (the ELBO is not finite)",
                        hint="give learning_rate, or check the model")
        eta = float(etas[np.argmax(np.where(np.isfinite(elbos), elbos, -np.inf))])
    else:
        eta = float(learning_rate)
    eta_arr = np.asarray(eta, dtype)

    cb_size = max(int(0.1 * max_iterations / eval_elbo), 2)
    rel_changes: list[float] = []
    trace: list[float] = []
    state, avg, elbo_prev = state0, avg0, None
    iterations, converged, k, stop_at = 0, False, 0, max_iterations
    while iterations < stop_at:
        n_active = min(eval_elbo, stop_at - iterations)
        batches = source.stacked(eval_elbo)
        (state, avg, elbo, skipped), seconds = timed(
            chunk, state, avg, eta_arr, jax.random.fold_in(run_key, k),
            np.asarray(n_active, np.int32), power, fixed, batches, eval_batch)
        if k == 0:
            compile_seconds += seconds
        elbo, k = float(elbo), k + 1
        iterations += n_active
        num_skipped += int(skipped)
        n_grad_evals += n_active * grad_samples
        if not np.isfinite(elbo):
            raise error(f"minibatch ADVI: the ELBO estimate is not finite after "
                        f"{iterations} iterations", hint="try a smaller learning_rate")
        trace.append(elbo)
        if converged:
            continue
        if elbo_prev is not None:
            rel_changes = (rel_changes + [abs((elbo - elbo_prev) / elbo)])[-cb_size:]
        elbo_prev = elbo
        if len(rel_changes) >= min(cb_size, advi.MIN_EVALUATIONS) and (
                np.mean(rel_changes) < tol_rel_obj or np.median(rel_changes) < tol_rel_obj):
            converged = True
            extra = int(advi.EXTRA_FRACTION * iterations) // eval_elbo * eval_elbo \
                if average else 0
            stop_at = min(iterations + extra, max_iterations)
            if extra:
                avg = (avg[0], avg[1], jnp.zeros((), dtype))
                power = np.asarray(advi.EXTRA_POWER, dtype)
    if average:
        state = state._replace(mu=avg[0], rho=avg[1])
    if not converged:
        warnings.warn(f"minibatch ADVI did not converge in {max_iterations} iterations",
                      RuntimeWarning, stacklevel=2)
    if num_skipped:
        warnings.warn(f"minibatch ADVI skipped {num_skipped} gradient steps whose gradient "
                      "was not finite", RuntimeWarning, stacklevel=2)
    draws = advi.sample(draw_key, state, num_draws, method)
    mu = np.asarray(state.mu)
    if method == "meanfield":
        scale_or_cov = np.exp(np.asarray(state.rho))
    else:
        rho = np.asarray(state.rho)
        L = np.tril(rho, -1) + np.diag(np.exp(np.diag(rho)))
        scale_or_cov = L @ L.T
    return advi.ADVIResult(
        draws=np.asarray(draws), mean=mu, scale_or_cov=scale_or_cov,
        elbo_trace=np.asarray(trace), iterations=iterations, converged=converged,
        compile_seconds=compile_seconds,
        seconds=time.perf_counter() - start - compile_seconds, n_grad_evals=n_grad_evals,
        learning_rate=eta, num_skipped=num_skipped)


def minibatch_fit(conditioned, data: Mapping[str, Any], batch_size: int, rng_key: Array,
                  init_position: Any, *, seed: int = 0, method: str = "meanfield",
                  **options) -> advi.ADVIResult:
    """Minibatch ADVI of a conditioned model (`ConditionedModel`) on `data`, a mapping of
    name -> array-like whose plate arrays may be memory-mapped: the model is conditioned
    once on B rows (`head_data`) and batches are read from `data` as the fit goes."""
    plan = plan_minibatch(conditioned.lowered, batch_size)
    bound = conditioned.lowered.data   # sizes and arrays as supplied (no transformed data)
    given = {**bound.sizes, **{k: v for k, v in data.items() if k in bound.names}}
    batch_model = conditioned.model.condition(head_data(plan, given))
    lowered = batch_model.lowered
    if lowered.dim != conditioned.lowered.dim:
        raise error("batch_size: the model on a batch has other latents than on the whole "
                    "data", conditioned.graph.source, None, hint="run without --batch-size")
    full = conditioned.data
    rows = {name: data[name] if isinstance(data.get(name), np.ndarray)   # a memmap stays
            else np.asarray(data[name] if name in data else full[name]) for name in plan.axes}
    # the rest as on the whole data (a data-only deterministic such as mean(y) is the
    # whole data's, not the first batch's)
    fixed = {k: full[k] for k in batch_model.data if k not in plan.axes}
    weights = dict(plan.weights)
    density = lambda u, d: lowered.weighted_log_density(u, d, weights)
    source = BatchSource(rows, plan.axes, plan.extent, plan.batch_size, seed)
    return fit_minibatch_advi(density, fixed, source, init_position, rng_key, method=method,
                              **options)


def fit_streaming(model, data: Mapping[str, Any], batch_size: int, *, seed: int = 0,
                  method: str = "meanfield", **options) -> tuple[advi.ADVIResult, Any]:
    """Minibatch ADVI of a `Model` on data whose big arrays are memory-mapped
    (`np.load(path, mmap_mode="r")`), never read whole: peak memory is bounded by the
    batches, not by N. Returns (result, the model conditioned on one batch, whose
    `constrain` maps the result's draws).

    The model is conditioned on a probe: the memory-mapped arrays cut to their first B
    rows and each size equal to their length set to B. The plan's decision is read on it;
    if it names a plate other than the one cut (another size above B is the largest),
    that is refused, as is a plate array that is not memory-mapped."""
    batch_size = int(batch_size)
    mapped = {k for k, v in data.items() if isinstance(v, np.memmap)}
    lengths = {int(np.shape(data[k])[0]) for k in mapped}
    cut = {k for k, v in data.items() if isinstance(v, (int, np.integer))
           and not isinstance(v, bool) and int(v) in lengths}
    probe = {k: (np.asarray(v[:batch_size]) if k in mapped
                 else batch_size if k in cut else v) for k, v in data.items()}
    head = model.condition(probe)
    sharding = head.lowered.plan.sharding
    size = sharding.size if sharding is not None else None
    if size not in cut:
        raise error("batch_size: streaming needs the observations' plate to be the length of "
                    f"the memory-mapped arrays ({', '.join(sorted(mapped)) or 'none given'}); "
                    f"on a batch of {batch_size} rows the plan splits along "
                    f"{size or 'nothing'}", head.graph.source,
                    None if sharding is None else sharding.span,
                    hint="give the observations as np.load(path, mmap_mode='r') arrays, and "
                         "a batch size above the other sizes")
    plan = plan_minibatch(head.lowered, batch_size, extent=int(data[size]))
    unmapped = sorted(set(plan.axes) - mapped)
    if unmapped:
        raise error(f"batch_size: {', '.join(unmapped)} run over {size} but are not "
                    "memory-mapped arrays of the data", head.graph.source, sharding.span,
                    hint="give them as np.load(path, mmap_mode='r') arrays")
    lowered = head.lowered
    weights = dict(plan.weights)
    density = lambda u, d: lowered.weighted_log_density(u, d, weights)
    fixed = {k: v for k, v in head.data.items() if k not in plan.axes}
    source = BatchSource({k: data[k] for k in plan.axes}, plan.axes, plan.extent,
                         plan.batch_size, seed)
    from pplc.inference.initialize import initial_positions
    init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
    init = initial_positions(lowered.log_density, head.data, lowered.dim, 1, init_key)[0]
    return fit_minibatch_advi(density, fixed, source, init, run_key, method=method,
                              **options), head
