"""The XLA programs a NUTS run needs, decided from the run's shapes and settings: the chunk
program (a `lax.scan` of NUTS iterations; `chunk_program`) and a dense or low-rank metric's
window-end update, each as a `ProgramSpec` that `programs.compiled` takes, with the chain
method "auto" resolves to and the device mesh it uses. Split from mcmc.py, which runs them.
"""

from __future__ import annotations

import os
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from jax import lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from pplc.inference.adaptation import ChainState
from pplc.inference.adaptive_step import (build_adaptive_step, needs_lapack, scan_between_window_ends,
                                          window_end_program)
from pplc.inference.nuts import build_kernel
from pplc.inference.schedule import ScheduleRow, padded_chunks
from pplc.inference.sharding import CHAIN, Placement

DEFAULT_CHUNK_SIZE = 100


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # no sched_getaffinity (macOS, Windows)
        return os.cpu_count() or 1


def chain_mesh(num_chains: int) -> Mesh | None:
    """A one-axis mesh over the most devices that divide `num_chains` (None for one device)."""
    devices = jax.devices()
    n = max(d for d in range(1, len(devices) + 1) if num_chains % d == 0)
    return Mesh(np.array(devices[:n]), ("chain",)) if n > 1 else None


def auto_method(num_chains: int) -> str:
    """What chain_method "auto" runs (the measurements behind it: mcmc's docstring)."""
    if num_chains > 1 and chain_mesh(num_chains) is not None:
        return "vectorized"
    if num_chains > 1 and available_cores() > 1:
        return "parallel"
    return "sequential"


def chunk_program(logdensity_fn: Callable, max_tree_depth: int, target_accept: float, batched: bool,
                  mesh: Mesh | None = None, placement: Placement | None = None,
                  update_apart: bool = False):
    # The metric (diag or dense) is not an argument: the step reads it from the shapes of
    # the chain state's inverse mass matrix at trace time.
    """The function compiled per chunk: (chain state(s), schedule chunk, data) -> (state, outputs).

    `update_apart`: a dense or low-rank metric's window-end update is left to the driver,
    which ends a chunk at each window's end and runs `adaptive_step.window_end_program`
    there; the chunk is then a plain scan (see `mcmc.sample_nuts`).
    """

    def run_chain(cs: ChainState, rows: ScheduleRow, data: Any):
        if placement is not None:   # split data: their padding rows cut off (sharding.py)
            data = placement.trim(data)
        logdensity_and_grad = jax.value_and_grad(lambda x: logdensity_fn(x, data))
        kernel = build_kernel(logdensity_and_grad, max_tree_depth=max_tree_depth)
        lapack = needs_lapack(cs)
        step = build_adaptive_step(kernel, logdensity_and_grad, target_accept, metric_update=not lapack)

        def body(cs, row):
            cs, (nuts_state, info, eps) = step(cs, row)
            stats = (
                nuts_state.logdensity,
                info.is_divergent,
                info.tree_depth,
                info.num_steps,
                info.acceptance_rate,
                info.energy,
                eps,
                info.hit_max_depth,
            )
            return cs, (nuts_state.position, stats)

        if not lapack or update_apart:
            return lax.scan(body, cs, rows)
        return scan_between_window_ends(body, cs, rows)

    if not batched:
        return run_chain
    chains = jax.vmap(run_chain, in_axes=(0, None, None))
    if mesh is None:
        return chains
    if placement is not None:   # manual over chains only: the partitioner splits the data
        return jax.shard_map(chains, mesh=mesh, in_specs=(P(CHAIN), P(), P()), out_specs=P(CHAIN),
                             axis_names={CHAIN}, check_vma=False)
    # Each device runs its block of chains locally; rows and data are replicated.
    return jax.shard_map(chains, mesh=mesh, in_specs=(P("chain"), P(), P()), out_specs=P("chain"),
                         check_vma=False)


class ProgramSpec(NamedTuple):
    """One program as `programs.compiled` takes it: its key, how to build it, example
    arguments (their shapes key it), and jit options."""

    static: tuple
    build: Callable[[], Callable]
    args: tuple
    jit_options: dict


def chunk_spec(logdensity_fn: Callable, one: ChainState, rows: ScheduleRow, data: Any, chunk: int, *,
               max_tree_depth: int, target_accept: float, batched: bool, metric: str,
               mesh: Mesh | None = None, placement: Placement | None = None,
               update_apart: bool = False, jit_options: dict | None = None) -> ProgramSpec:
    """The chunk program of a run whose chain state (one chain's, or the batch's) is `one`."""
    static = ("nuts-chunk", int(max_tree_depth), float(target_accept), batched, chunk, metric,
              mesh.devices.size if mesh is not None else 1, placement.key if placement else None,
              update_apart)
    example_rows = padded_chunks(rows, 0, 1, chunk)[0][0] if len(rows.iteration) else None
    if example_rows is None:  # nothing to do
        example_rows = jax.tree.map(lambda a: np.zeros(chunk, a.dtype), rows)
    return ProgramSpec(static, lambda: chunk_program(logdensity_fn, max_tree_depth, target_accept, batched,
                                                     mesh, placement, update_apart),
                       (one, example_rows, data), dict(jit_options or {}))


def window_end_spec(one: ChainState, batched: bool) -> ProgramSpec:
    """The dense/low-rank metric's window-end update, run between chunks."""
    return ProgramSpec(("window-end-update", batched), lambda: window_end_program(batched),
                       (one, np.bool_(True)), {})
