"""The warmup's schedule: which iterations feed the metric estimate and where windows end.

Why a table computed in Python: the whole run's schedule becomes per-iteration flags
(`ScheduleRow`), so that a chunk of warmup and sampling runs as one `lax.scan` with no Python
in the loop (inference/adaptive_step.py reads the rows, inference/mcmc.py cuts them in chunks).
Stan's windows (`warmup_schedule`'s defaults) for every metric but "low-rank", which starts
its slow windows early (`LOW_RANK_WINDOWS`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

Array = jax.Array


def warmup_schedule(
    num_warmup: int, init_buffer: int = 75, term_buffer: int = 50, base_window: int = 25
) -> tuple[np.ndarray, np.ndarray]:
    """Per warmup iteration: (draw goes into the metric estimate, a slow window ends here).

    A line-by-line port of Stan's `windowed_adaptation` counters, so that window edges
    match Stan's exactly; for num_warmup = 1000 the slow windows are 75-99, 100-149,
    150-249, 250-449 and 450-949.
    """
    in_window = np.zeros(num_warmup, dtype=bool)
    window_end = np.zeros(num_warmup, dtype=bool)
    if num_warmup < 20:  # Stan: no metric estimation for num_warmup < 20
        return in_window, window_end
    if init_buffer + base_window + term_buffer > num_warmup:
        init_buffer = int(0.15 * num_warmup)
        term_buffer = int(0.1 * num_warmup)
        base_window = num_warmup - (init_buffer + term_buffer)
    last = num_warmup - term_buffer - 1
    window_size = base_window
    next_window = init_buffer + window_size - 1
    for counter in range(num_warmup):
        in_window[counter] = init_buffer <= counter < num_warmup - term_buffer
        if counter == next_window:
            window_end[counter] = True
            if next_window != last:  # compute_next_window
                window_size *= 2
                next_window = counter + window_size
                if next_window != last and next_window + 2 * window_size >= num_warmup - term_buffer:
                    next_window = last
    return in_window, window_end


class ScheduleRow(NamedTuple):
    """What iteration `iteration` does; one row per iteration, stacked into arrays for scan."""

    iteration: Array  # global index, so the random stream does not depend on chunking
    active: Array  # False on padding iterations of the last chunk
    reinit: Array  # search the step size and restart dual averaging before the transition
    adapt: Array  # warmup: use and update the dual-averaging step size
    in_window: Array  # add the new draw to the variance estimate
    window_end: Array  # set the metric from the estimate and restart it


# The low-rank metric's windows: a first slow window after 10 iterations, of 10, then
# doubling (10-19, 20-39, 40-79, 80-159, 160-319, 320-949 for 1000 warmup iterations), and Stan's
# terminal window of 50. Stan's first 75 iterations run with the unit metric; on a narrow
# ridge (the brms-style collinear regression of benchmarks/metric_adaptation.md) they alone
# cost ~220k of a run's 270k gradients. The Fisher estimate from draws and gradients is
# usable from a handful of draws (exact for a Gaussian once they span it), so the metric can
# come early, as nutpie's does: 3.2x fewer gradients there at the same ESS, and no loss on
# the suite models measured.
LOW_RANK_WINDOWS = {"init_buffer": 10, "base_window": 10}

# Which metric updates search the step size again and restart its dual averaging. Stan
# restarts after every window ("every"); the default restarts at the start and after the
# first window only ("first", as nutpie does), and the averaging then runs on across the
# later windows. Why: a restart leaves only the terminal window's 50 iterations to average,
# and those start from 10x the searched step size (mu = log(10 eps)); an acceptance that
# saturates at 1 corrects too small steps more slowly than too large ones, so that short
# average ends small: the chains sampled at a mean acceptance of 0.86-0.93 against the
# target 0.8 (nutpie's 0.80-0.84 on the same models) with step sizes 15-45% shorter.
# Measured (benchmarks/adaptation.md: 4 x (1000 + 1000), seeds 0-2, ESS per gradient),
# "first" against "every": hierarchical logistic 1.78x, ODE 1.72x, mixture 1.72x,
# supernova 1.22x (diag; low-rank 1.5-1.65x), eight schools noncentered 1.0x with more
# divergences (nutpie's count), linear regression 0.81x (a Gaussian posterior where the
# shorter step happened to give antithetic draws; pplc is then at nutpie's figure). The
# later windows' metrics differ from the one before far less than the first differs from
# the unit metric, so the running step size follows them within a few iterations.
STEP_SIZE_RESTARTS = "first"


def build_schedule(num_warmup: int, num_samples: int, metric: str = "diag",
                   restarts: str | None = None) -> ScheduleRow:
    """The whole run's schedule as numpy arrays (warmup rows, then sampling rows): Stan's
    windows, or for the "low-rank" metric LOW_RANK_WINDOWS; the step size searched and its
    averaging restarted at the start and after the first window ("first", the default
    `STEP_SIZE_RESTARTS`) or after every window ("every", Stan's)."""
    restarts = restarts or STEP_SIZE_RESTARTS
    if restarts not in ("first", "every"):
        raise ValueError(f"restarts must be 'first' or 'every', not {restarts!r}")
    in_window, window_end = warmup_schedule(num_warmup, **(LOW_RANK_WINDOWS if metric == "low-rank" else {}))
    n = num_warmup + num_samples
    reinit = np.zeros(n, dtype=bool)
    reinit[0] = n > 0
    # After the metric updates. Stan's schedule never ends a slow window on the last warmup
    # iteration (the terminal window is at least 2 long), so nothing spills into sampling.
    ends = np.flatnonzero(window_end[:-1])
    reinit[1 + (ends if restarts == "every" else ends[:1])] = True
    adapt = np.zeros(n, dtype=bool)
    adapt[:num_warmup] = True
    pad = np.zeros(num_samples, dtype=bool)
    return ScheduleRow(
        iteration=np.arange(n, dtype=np.int32),
        active=np.ones(n, dtype=bool),
        reinit=reinit[:n],
        adapt=adapt,
        in_window=np.concatenate([in_window, pad]),
        window_end=np.concatenate([window_end, pad]),
    )


def padded_chunks(rows: ScheduleRow, start: int, stop: int, chunk: int,
                  ends: frozenset = frozenset()) -> list[tuple[ScheduleRow, int]]:
    """Split rows[start:stop] into chunks of exactly `chunk` rows, padding the last one (and
    any chunk that stops early: a chunk also stops after each row index in `ends`, a window's
    end whose metric update runs between chunks; mcmc.sample_nuts)."""
    out = []
    lo = start
    while lo < stop:
        hi = min(lo + chunk, stop)
        hi = next((i + 1 for i in range(lo, hi) if i in ends), hi)
        part = jax.tree.map(lambda a: a[lo:hi], rows)
        pad = chunk - (hi - lo)
        if pad:
            part = jax.tree.map(lambda a: np.concatenate([a, np.zeros(pad, a.dtype)]), part)
        out.append((part, hi - lo))
        lo = hi
    return out
