"""Run NUTS chains with Stan's warmup, compiled end to end, and collect draws and stats.

Why compiled chunks: a gradient of a small model costs 0.05-5 us inside a compiled loop but
10-170 us when called from Python (docs/PERFORMANCE.md), so every iteration runs inside one
XLA program: a `lax.scan` over `chunk_size` iterations of (warmup-or-sampling step). Python
only loops over chunks, to report progress. The chunk program is compiled once ahead of
time per (log density, shapes, settings) and cached (`programs.py`), and `data` is one of its
runtime arguments, never a baked-in constant; so a new seed, a new number of draws or new
data of the same shapes compile nothing. Warmup and sampling share the program: a
per-iteration schedule row says what to adapt (`adaptation.build_schedule`), and the last,
partial chunk of each phase is padded with inactive rows, which cost nothing.

Chain methods. Each chain's random stream is fold_in(split(rng_key)[c], iteration), whatever
the method or chunking, so a seed fixes the draws of each method: "sequential" and
"parallel" give bitwise the same draws, and "vectorized" the same up to rounding (`vmap` may
order a reduction differently, a 1e-16 difference that NUTS, being chaotic, grows over a
long run into a different but equally valid realization):
  * "vectorized": `vmap` over chains, one program call per chunk. NUTS chains then run in
    lockstep: every chain waits for the longest trajectory of the batch, and batched
    gathers are slow on XLA:CPU.
  * "sequential": the unbatched program, called chain after chain.
  * "parallel": the unbatched program called from one Python thread per core; XLA releases
    the GIL while it runs, so two chains really run at once on two cores.
  * "auto": chosen by the measurements below.

Several JAX devices (GPUs, or CPU devices made with
XLA_FLAGS=--xla_force_host_platform_device_count=N): "vectorized" then spreads the chains
over the devices with `jax.shard_map` on a one-axis mesh ("chain"). Each device runs its own
share of the chains as a local program (the `while_loop`s of NUTS are not synchronized
across devices, so no device waits for another's longest trajectory); the schedule rows and
the data are replicated. With `shard_data` (the plan's split of the data), the data are
split instead over a "data" mesh axis: chains x data for "vectorized", data alone for the
others (inference/sharding.py). The mesh uses the largest number of devices that divides the
number of chains, and "auto" picks this sharded "vectorized" whenever there are several
devices and several chains. A chain's draws do not depend on the device it ran on.

Measured on this 2-core CPU (jax 0.10.2, float64, 4 chains x (1000 warmup + 1000 draws),
seed 0, warm: compile excluded, seconds of warmup + sampling;
`tests/inference/bench_chain_method.py`). The machine was shared with other jobs during
some runs, so single figures are noisy by +-30%:

    model                                       vectorized  sequential  parallel (2 threads)
    eight schools noncentered (10-d, ~71k grads)     0.16        0.23        0.22
    logistic, 5000 rows x 5 + 50 intercepts          14.1        10.9        10.0
      same, 300 + 300, CPU otherwise idle            5.12        3.71        1.97

Vectorized loses on the expensive model (lockstep waits for the longest trajectory, and a
batched gather costs more than 4 single ones on XLA:CPU) and wins only where the whole run
takes a fraction of a second. Threads give 1.9x on two idle cores (process CPU time equal
to sequential's, wall time halved); with another job holding a core, one 1000 + 1000 run
of the logistic model took 13.0 s threaded against 9.5 s sequential.

Since XLA compiles NUTS's loops as one function (pplc/jax_x64.py), the per-step cost
beyond the gradient on eight schools is, in CPU us per chain-step: sequential 0.87,
parallel 0.89, vectorized 1.12 (2.5-4.6 before); a vmapped batch of 2 chains costs 1.23
against 1.02 unbatched, so batching does not pay for its lockstep even two chains at a
time (benchmarks/machinery.py, benchmarks/profile_notes.md).

Default ("auto"): "parallel" when there are several chains and more than one CPU core,
else "sequential": it halves the wall time of the runs that matter (expensive gradients)
when the cores are free, at the risk shown above on a contended machine. The cores counted
are those this process may run on (its CPU affinity: `taskset`, a container's cpuset, a
test worker given one core), not all the machine's: threads confined to one core only
take turns (measured: two such processes side by side, gp_pois_regr 4 x (1000 + 600),
28-35 s of sampling each with 2 threads against 22-23 s sequential).

Interrupts: a KeyboardInterrupt (Ctrl-C) reaches Python only between program calls, since
XLA holds the thread while a chunk runs. The driver catches it, lets the chunk calls already
running finish (threads cannot be killed; at most one chunk per chain), and returns the
sampling iterations completed by every chain so far with `complete=False`: zero draws when
it came during warmup. A run that is stopped early is still a valid, shorter run. A Ctrl-C
whose KeyboardInterrupt Python lost (inference/sigint.py) stops the run at the next boundary.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from pplc.inference import distributed, programs
from pplc.inference.adaptation import initial_chain_state
from pplc.inference.adaptive_step import needs_lapack, window_end_rows
from pplc.inference.nuts_programs import (DEFAULT_CHUNK_SIZE, auto_method, available_cores, chain_mesh,
                                          chunk_spec, window_end_spec)
from pplc.inference.schedule import build_schedule, padded_chunks
from pplc.inference.sharding import CHAIN, Placement
from pplc.inference.sigint import counted_interrupts

Array = jax.Array
ProgressFn = Callable[[str, int, int, int], None]

CHAIN_METHODS = ("vectorized", "sequential", "parallel", "auto")
STAT_NAMES = ("lp", "diverging", "tree_depth", "n_steps", "acceptance_rate", "energy", "step_size",
              "reached_max_treedepth")
METRICS = ("diag", "dense", "diag-grad", "low-rank")


class MCMCResult(NamedTuple):
    """Draws on the unconstrained space and per-draw sampler statistics.

    positions: (num_chains, num_samples, dim); stats: each (num_chains, num_samples);
    inverse_mass_matrix: (num_chains, dim) for the diagonal metric, (num_chains, dim, dim)
    for the dense one; n_grad_evals: gradient evaluations over all chains, warmup and
    step-size searches included; compile_seconds: trace + lower + XLA compile of the chunk
    program (0.0 when it came from the cache); complete: False when the run was
    interrupted, and then positions and stats hold only the sampling iterations that every
    chain completed (none if the interrupt came during warmup); directions_kept: per chain,
    the eigen-directions a low-rank metric kept (0: the Fisher diagonal), else None.
    """

    positions: np.ndarray
    stats: dict[str, np.ndarray]
    step_size: np.ndarray
    inverse_mass_matrix: np.ndarray
    n_grad_evals: int
    compile_seconds: float
    warmup_seconds: float
    sampling_seconds: float
    num_warmup_divergences: int
    complete: bool = True
    directions_kept: np.ndarray | None = None


def sample_nuts(
    logdensity_fn: Callable[[Array, Any], Array],
    data: Any,
    init_positions: Any,
    rng_key: Array,
    *,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    max_tree_depth: int = 10,
    target_accept: float = 0.8,
    chain_method: str = "auto",
    progress: ProgressFn | None = None,
    chunk_size: int | None = None,
    metric: str = "diag",
    shard_data: dict[str, int] | None = None,
) -> MCMCResult:
    """Sample with NUTS and Stan's windowed warmup, one chain per row of `init_positions`.

    Parameters:
        logdensity_fn: pure, traceable `(position, data) -> scalar`, not jitted.
        data: pytree of arrays, passed to the compiled program at run time.
        init_positions: (num_chains, dim) starting points on the unconstrained space.
        rng_key: a JAX key; chain c uses `jax.random.split(rng_key, num_chains)[c]`.
        chain_method: "vectorized", "sequential", "parallel" or "auto".
        progress: called as `progress(phase, done, total, divergences)` after each chunk,
            phase "warmup" or "sampling", counts summed over chains.
        chunk_size: iterations per compiled call (static; default 100).
        metric: "diag" (Stan's diag_e, the default) or "dense" (Stan's dense_e: a full
            covariance, for strongly correlated posteriors; O(dim^2) per leapfrog step).
        shard_data: data array -> axis to split across the devices (the plan's sharding;
            inference/sharding.py), the rest replicated; None keeps all data whole.

    Returns:
        An `MCMCResult`; `complete` is False if a KeyboardInterrupt stopped the run, which
        then holds the draws completed so far instead of raising.

    Example:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> f = lambda x, data: -0.5 * jnp.sum((x - data["mu"]) ** 2)
        >>> r = sample_nuts(f, {"mu": np.zeros(2)}, np.zeros((2, 2)), jax.random.key(0),
        ...                 num_warmup=100, num_samples=100)
        >>> r.positions.shape
        (2, 100, 2)
    """
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, not {chain_method!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, not {metric!r}")
    positions0 = programs.float_positions(init_positions, 2,
                                        "init_positions must have shape (num_chains, dim)")
    num_chains, dim = positions0.shape
    method = auto_method(num_chains) if chain_method == "auto" else chain_method
    chunk = int(chunk_size or DEFAULT_CHUNK_SIZE)
    data = programs.device_data(data)
    keys = jax.random.split(rng_key, num_chains)
    if not jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        keys = np.asarray(keys)  # raw keys: host-built states, sliced per chain without a program
    states = initial_chain_state(positions0, keys, metric)
    rows = build_schedule(num_warmup, num_samples, metric)
    batched = method == "vectorized"
    mesh = chain_mesh(num_chains) if batched else None
    jit_options = {}
    placement = None
    if shard_data and len(jax.devices()) > 1:
        placement = Placement.make(shard_data, data, num_chains, batched)
        mesh = placement.mesh if batched else None
        by_chain = NamedSharding(placement.mesh, P(CHAIN) if batched else P())
        states = jax.device_put(states, by_chain)
        jit_options["in_shardings"] = (by_chain, placement.replicated, placement.shardings(data))
        if batched and jax.process_count() > 1:   # chains across processes: every process
            jit_options["out_shardings"] = (by_chain, placement.replicated)   # reads the draws
        data = placement.place(data)
    elif mesh is not None:
        by_chain, replicated = NamedSharding(mesh, P("chain")), NamedSharding(mesh, P())
        states = jax.device_put(states, by_chain)
        data = jax.device_put(data, replicated)
        jit_options["in_shardings"] = (by_chain, replicated, replicated)

    one = states if batched else jax.tree.map(lambda a: a[0], states)
    # A dense or low-rank metric's window-end update (LAPACK) in a program of its own, run
    # between chunks that stop at the windows' ends: the chunk program is then the plain
    # scan, which compiles in about half the time of the scan with the update inside
    # (benchmarks/startup.md, session 10). Kept inside on a mesh (one program there).
    update_apart = needs_lapack(one) and mesh is None and placement is None
    ends = window_end_rows(rows) if update_apart else frozenset()
    spec = chunk_spec(logdensity_fn, one, rows, data, chunk, max_tree_depth=max_tree_depth,
                      target_accept=target_accept, batched=batched, metric=metric, mesh=mesh,
                      placement=placement, update_apart=update_apart, jit_options=jit_options)
    program, compile_seconds = programs.compiled(logdensity_fn, spec.static, spec.build, *spec.args,
                                                 **spec.jit_options)

    positions = np.zeros((num_chains, num_samples, dim), positions0.dtype)
    stats = {name: np.zeros((num_chains, num_samples), dt) for name, dt in zip(
        STAT_NAMES, (positions0.dtype, bool, np.int32, np.int32, positions0.dtype, positions0.dtype, positions0.dtype,
                     bool))}
    counters = {"n_steps": 0, "divergences": 0, "warmup_divergences": 0, "drawn": 0}
    update: list = []   # the window-end program, compiled at the first window's end

    def window_end(chain_states: list) -> list:
        nonlocal compile_seconds
        if not update:
            spec = window_end_spec(one, batched)
            executable, seconds = programs.compiled(logdensity_fn, spec.static, spec.build, *spec.args)
            update.append(executable)
            compile_seconds += seconds
        return [update[0](s, np.bool_(True)) for s in chain_states]

    def run_phase(phase: str, start: int, stop: int, chain_states: list) -> tuple[list, bool]:
        """Run rows[start:stop] chunk by chunk: (chain states after the last whole chunk, interrupted)."""
        chunks = padded_chunks(rows, start, stop, chunk, ends)
        total = (stop - start) * num_chains
        done = 0
        counters["divergences"] = 0

        def call(s, part):
            return jax.block_until_ready(program(s, part, data))

        pool = ThreadPoolExecutor(max_workers=min(num_chains, available_cores())) if method == "parallel" else None

        def one_chunk(chain_states: list, part, n_real: int, lo: int) -> list:
            """Every chain through one chunk; its draws (from `lo`) and counts kept."""
            if pool is None:
                results = [call(s, part) for s in chain_states]
            else:
                futures = [pool.submit(call, s, part) for s in chain_states]
                results = [f.result() for f in futures]
            for c, (_, (pos, st)) in enumerate(results):
                st = [np.asarray(x)[..., :n_real] for x in st]
                counters["n_steps"] += int(st[3].sum())
                counters["divergences"] += int(st[1].sum())
                if phase == "sampling":
                    where = (slice(None) if batched else c, slice(lo, lo + n_real))
                    positions[where] = np.asarray(pos)[..., :n_real, :]
                    for name, x in zip(STAT_NAMES, st):
                        stats[name][where] = x
            return [r[0] for r in results]

        def report(done: int) -> None:
            if progress is not None:
                progress(phase, done, total, counters["divergences"])
            if interrupts.count:   # a Ctrl-C whose KeyboardInterrupt Python lost
                raise KeyboardInterrupt

        try:
            lo = 0  # first draw of this chunk within the phase
            for part, n_real in chunks:
                # The chunk is complete for every chain: only now does it count.
                chain_states = one_chunk(chain_states, part, n_real, lo)
                if start + lo + n_real - 1 in ends:   # a window's end: the metric's update
                    chain_states = window_end(chain_states)
                lo += n_real
                if phase == "sampling":
                    counters["drawn"] = lo
                done += n_real * num_chains
                if not agree:
                    report(done)
                    continue
                try:   # several processes: signals are only recorded (check, count)
                    report(done)
                    stop = False
                except KeyboardInterrupt:
                    stop = True
                if distributed.any_process(stop):   # every process stops at this chunk
                    return chain_states, True
        except KeyboardInterrupt:
            return chain_states, True
        finally:
            if pool is not None:  # waits for the chunk calls already running (<= 1 per chain)
                pool.shutdown(wait=True, cancel_futures=True)
        return chain_states, False

    chain_states = [states] if batched else [jax.tree.map(lambda a, c=c: a[c], states) for c in range(num_chains)]
    # Several processes: a signal in one is only recorded, and all stop at the same chunk
    # boundary (one process leaving alone would leave the others in the next chunk's
    # collectives): one all-gather of a flag per chunk.
    agree = placement is not None and jax.process_count() > 1
    with counted_interrupts(raising=not agree) as interrupts, distributed.naming_lost_peers():
        t0 = time.perf_counter()
        chain_states, interrupted = run_phase("warmup", 0, num_warmup, chain_states)
        t1 = time.perf_counter()
        warmup_divergences = counters["divergences"]
        if not interrupted:
            chain_states, interrupted = run_phase("sampling", num_warmup, num_warmup + num_samples,
                                                  chain_states)
        t2 = time.perf_counter()
    if interrupted:
        drawn = counters["drawn"]
        positions = positions[:, :drawn].copy()
        stats = {name: x[:, :drawn].copy() for name, x in stats.items()}

    if batched:
        final = chain_states[0]
        if placement is not None and jax.process_count() > 1:   # gathered, as the draws
            final = jax.jit(lambda s: s, out_shardings=placement.replicated)(final)
    else:
        final = chain_states[0]._replace(
            adaptation=jax.tree.map(lambda *xs: np.stack(xs), *[s.adaptation for s in chain_states]),
            n_extra_grads=np.stack([s.n_extra_grads for s in chain_states]),
        )
    step_size = np.exp(np.asarray(final.adaptation.dual.log_step_size_avg))
    n_extra = int(np.asarray(final.n_extra_grads).sum())
    directions = final.adaptation.directions
    return MCMCResult(
        positions=positions,
        stats=stats,
        step_size=step_size,
        inverse_mass_matrix=np.asarray(final.adaptation.inverse_mass_matrix),
        n_grad_evals=counters["n_steps"] + n_extra,
        compile_seconds=compile_seconds,
        warmup_seconds=t1 - t0,
        sampling_seconds=t2 - t1,
        num_warmup_divergences=warmup_divergences,
        complete=not interrupted,
        directions_kept=None if directions is None else np.asarray(directions).reshape(num_chains),
    )
