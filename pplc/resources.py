"""Memory a run will need, estimated before anything is allocated (issue 15, item 3).

A size typo (`"N": 1000000000000`), `--chains 1000000000` or `--draws 10**12` would
otherwise hang at 0% CPU, be killed by the kernel's out-of-memory killer, or end in a
MemoryError deep inside NumPy, long after the mistake. The estimate is deliberately
simple and on the low side (what is certainly needed: the positions and draws kept, the
sampler's per-chain state), so a refusal always means the run could not fit; the message
says how much it would need and which numbers made it so.
"""

from __future__ import annotations

import math
import os
from typing import Iterable, Mapping

from pplc.errors import error

BYTES = 8   # float64 and int64: pplc computes in 64 bits
# Arrays of the unconstrained dimension a NUTS chain holds at once: position, momentum,
# gradient, the metric, the proposal, and the U-turn checkpoints (two per tree level at
# the default depth 10) — a lower bound of what the sampler really holds.
NUTS_STATE_ARRAYS = 26
DENSE_MATRICES = 4   # dim x dim per chain with --metric dense or low-rank


def available_bytes() -> int | None:
    """Memory this process could still use: MemAvailable (Linux), else physical memory,
    else None (unknown: no refusal)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def size_text(n_bytes: float) -> str:
    """1536 -> '1.5 KiB'; in binary units, as `free -h` shows memory."""
    units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    power = min(int(math.log(max(n_bytes, 1), 1024)), len(units) - 1)
    return f"{n_bytes / 1024 ** power:.1f} {units[power]}" if power else f"{int(n_bytes)} bytes"


def recorded_values(shapes: Mapping[str, tuple[int, ...]], names: Iterable[str]) -> int:
    """The number of values recorded per draw for the variables `names`."""
    return sum(math.prod(shapes.get(name, ())) for name in names)


def refuse_if_too_big(n_bytes: float, what: str, hint: str) -> None:
    """A PplcError when `n_bytes` cannot fit in the memory available now."""
    available = available_bytes()
    if available is not None and n_bytes > available:
        raise error(f"{what} needs at least {size_text(n_bytes)} of memory, and "
                    f"{size_text(available)} is available", hint=hint)


def check_model_size(dim: int, sizes: Mapping[str, int]) -> None:
    """The unconstrained vector alone must fit (a size typo gives one of 10^12 values)."""
    refuse_if_too_big(dim * BYTES * NUTS_STATE_ARRAYS,
                      f"this model has {dim} unconstrained parameters: evaluating it",
                      _size_hint(sizes))


def check_run_size(chains: int, draws: int, dim: int, per_draw: int,
                   sizes: Mapping[str, int], kind: str = "sampling", dense: bool = False
                   ) -> None:
    """Draws kept (values and positions, per chain) and each chain's working state; a
    dense or low-rank metric also holds dim x dim matrices per chain (the metric, its
    Cholesky factor, and warmup's running covariances of draws and gradients)."""
    kept = chains * draws * (per_draw + dim) * BYTES
    state = chains * dim * BYTES * (NUTS_STATE_ARRAYS + (DENSE_MATRICES * dim if dense else 0))
    big_draws = per_draw + dim > 10 ** 6   # then a size is more likely the mistake
    refuse_if_too_big(kept + state, f"{kind} {chains} chain{'s' if chains != 1 else ''} x "
                      f"{draws} draws of {per_draw + dim} values each",
                      "run fewer chains or draws" + ("; " + _size_hint(sizes) if big_draws
                                                     else ""))


def _size_hint(sizes: Mapping[str, int]) -> str:
    if not sizes:
        return "check the model's sizes"
    name, value = max(sizes.items(), key=lambda item: item[1])
    return f"check the sizes in the data: the largest is {name} = {value}"
