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

The optimizer is minibatch_advi.py's: advi.py's eta search, iterate averaging and
convergence rule (the ELBO estimates that the rule compares taken on one fixed batch, so
successive estimates differ by the draws from q and the moving parameters only, not by
which rows were drawn), and a full-gradient control variate in the averaging phase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from pplc.errors import error
from pplc.frontend import ast
from pplc.inference import advi
from pplc.inference.batches import BatchSource
from pplc.inference.minibatch_advi import fit_minibatch_advi
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


def _weighted(lowered, plan: MinibatchPlan) -> Callable:
    """(u, data, w) -> the batch's log density with the terms over the plate weighted w."""
    names = tuple(plan.weights)
    return lambda u, d, w: lowered.weighted_log_density(u, d, {k: w for k in names})


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
    density = _weighted(lowered, plan)
    source = BatchSource(rows, plan.axes, plan.extent, plan.batch_size, seed)
    # The passes chose the batch's parameterization from B rows, the whole data's from N:
    # they may differ (a noncentered alpha_std on the batch, alpha centered on the whole).
    # The fit runs in the batch's space; positions cross by way of the user's values.
    to_batch = _between(conditioned.lowered, full, lowered, batch_model.data)
    to_whole = _between(lowered, batch_model.data, conditioned.lowered, full)
    init = to_batch(np.asarray(init_position)[None])[0]
    result = fit_minibatch_advi(density, fixed, source, init, rng_key, method=method,
                                **options)
    return result._replace(draws=to_whole(result.draws))


def _between(source, source_data, target, target_data) -> Callable[[np.ndarray], np.ndarray]:
    """Unconstrained points of `source` (rows of a 2-D array) -> the same latent values
    as points of `target`: constrained by the one, unconstrained by the other."""
    def one(u):
        return target.unconstrain(source.constrain(u, source_data), target_data)

    mapped = jax.jit(jax.vmap(one))
    return lambda points: np.asarray(mapped(jnp.asarray(points, jnp.float64)))


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
    # (a batch larger than the arrays is refused by plan_minibatch, after the probe)
    rows = min([batch_size, *lengths])
    probe = {k: (np.asarray(v[:rows]) if k in mapped
                 else rows if k in cut else v) for k, v in data.items()}
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
    density = _weighted(lowered, plan)
    _refuse_summaries_of_rows(head, plan)
    fixed = {k: v for k, v in head.data.items() if k not in plan.axes}
    source = BatchSource({k: data[k] for k in plan.axes}, plan.axes, plan.extent,
                         plan.batch_size, seed)
    check_rows(model, data, plan, source)
    from pplc.inference.initialize import initial_positions
    init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
    init = initial_positions(lowered.log_density, head.data, lowered.dim, 1, init_key)[0]
    return fit_minibatch_advi(density, fixed, source, init, run_key, method=method,
                              **options), head


def _refuse_summaries_of_rows(head, plan: MinibatchPlan) -> None:
    """A value computed from the data alone (Stan's transformed data) that reads the
    streamed arrays (`ybar = mean(y)`) would be computed on the first batch only: the
    whole arrays are never in memory to compute it from. Refused, at its statement."""
    import networkx as nx

    graph = head.graph
    dag = graph.value_dag()
    for name in head.lowered.data_only:
        read = sorted(set(plan.axes) & nx.ancestors(dag, name))
        if read:
            raise error(f"batch_size: '{name}' is computed from the whole of "
                        f"{', '.join(read)}, which are streamed a batch at a time and never "
                        "held whole", graph.source, graph[name].span,
                        hint=f"compute '{name}' beforehand and give it as data, or fit with "
                             "the data in memory (a .json or a compressed .npz)")


CHECK_ROWS = 65536   # rows per block of check_rows: what it holds at once


def check_rows(model, data: Mapping[str, Any], plan: MinibatchPlan, source: BatchSource):
    """Every row of the streamed arrays checked as conditioning checks data in memory:
    against the model's declarations (the binding: integers, declared bounds, no missing
    values) and each observation against its distribution's support (the analysis's
    value checks, backends/analysis.py `check_observed`: a Bernoulli y = 2, a Poisson -1,
    a Binomial count above its n from the data), one block of rows at a time, read in
    order by `source.block`, so memory stays bounded. Why before the fit: a batch reads
    rows no check has seen, and a bad value would only show as skipped steps and a fit on
    the other rows. An error names the rows of the block and the entry's row in the whole
    array."""
    from pplc.backends.analysis import check_observed
    from pplc.backends.data import bind_data
    from pplc.errors import PplcError

    small = {k: v for k, v in data.items() if k not in plan.axes}
    for lo in range(0, plan.extent, CHECK_ROWS):
        hi = min(plan.extent, lo + CHECK_ROWS)
        try:
            block = {**small, plan.size: hi - lo, **source.block(lo, hi)}
            check_observed(model.graph, bind_data(model.graph, block), model.externs)
        except PplcError as exc:
            first = exc.diagnostics[0]
            message = re.sub(r"\[(\d+)", lambda m: f"[{int(m[1]) + lo}", first.message,
                             count=1)
            raise error(f"in rows {lo}..{hi - 1} of the streamed data: {message}",
                        first.source, first.span, hint=first.hint) from None
