"""NUTS machinery per leapfrog step: what the sampler costs beyond the gradient (issue 16 item 2).

    python -m benchmarks.machinery [--models a,b] [--methods sequential,parallel,vectorized]
                                   [--repeats 3] [--warmup 1000] [--draws 1000]

machinery = (process CPU seconds of warm warmup + sampling / gradient count) - in-loop gradient,

where the in-loop gradient is one value-and-gradient inside a compiled `fori_loop`, each
iteration depending on the last (as `gradfloor.in_loop_seconds`, two loop lengths differenced),
also timed in process CPU seconds. CPU time, not wall time: this machine is shared, and a
process that waits for a core is not charged for the wait; the wall time is printed too. For
the threaded method the CPU time sums both threads, so its machinery is still per chain-step
(the cost of a step, not its latency); its wall time shows what the second core gives.

Models: eight schools (noncentered, 10-d, a gradient of ~0.1 µs) and the 100-d correlated
Gaussian (diagonal metric), through pplc's compiled log density, float64, 4 chains, seed 0.
Medians over `--repeats`, the gradient floor re-measured before each repeat, methods
interleaved. The optimized HLO of the chunk programs: run with
XLA_FLAGS=--xla_dump_to=DIR --xla_dump_hlo_as_text (files *nuts-chunk*after_optimizations*).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.gradfloor import in_loop_seconds

MODELS = ("eight_schools_noncentered", "corr_gaussian_100")


def load(name: str, folder: Path):
    """(log density, data, dim) of a suite model, compiled and conditioned by pplc. With
    the suffix `:solve` (`corr_gaussian_100:solve`), the data without the factors of its
    data covariance (backends/factors.py), so the density solves per gradient as before
    them: the before and after of that plan decision, measured back to back."""
    import pplc
    from benchmarks import suite

    name, _, variant = name.partition(":")
    spec = suite.SPEC_BY_NAME[name]
    cm = pplc.compile(spec.ppl).condition(str(spec.make_data(folder, False)))
    data = cm.data
    if variant == "solve":
        data = {k: v for k, v in data.items() if not k.startswith("@factor:")}
    return cm.lowered.log_density, data, cm.dim


def one_run(fn, data, dim: int, method: str, chains: int, warmup: int, samples: int, seed: int = 0):
    """(CPU seconds, wall seconds, gradients) of one warm run of warmup + sampling."""
    import jax
    import numpy as np

    from pplc.inference import sample_nuts

    x0 = np.random.default_rng(seed).uniform(-2, 2, (chains, dim))
    cpu = time.process_time()
    r = sample_nuts(fn, data, x0, jax.random.key(seed), num_warmup=warmup, num_samples=samples,
                    chain_method=method)
    cpu = time.process_time() - cpu
    return cpu, r.warmup_seconds + r.sampling_seconds, r.n_grad_evals


def measure(name: str, folder: Path, methods, repeats: int, chains: int = 4,
            warmup: int = 1000, samples: int = 1000) -> dict:
    import numpy as np

    fn, data, dim = load(name, folder)
    for method in methods:  # compile outside the timings
        one_run(fn, data, dim, method, chains, 20, 20)
    rows = {m: [] for m in methods}
    grads = []
    for _ in range(repeats):
        g = in_loop_seconds(fn, np.full(dim, 0.1), data, clock=time.process_time)
        grads.append(g)
        for method in methods:
            cpu, wall, n = one_run(fn, data, dim, method, chains, warmup, samples)
            rows[method].append((cpu / n - g, wall / n, n))
    out = {"grad_us": 1e6 * statistics.median(grads)}
    for method, rs in rows.items():
        out[method] = {"machinery_us": 1e6 * statistics.median(r[0] for r in rs),
                       "wall_us_per_grad": 1e6 * statistics.median(r[1] for r in rs),
                       "grads": int(statistics.median(r[2] for r in rs))}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--methods", default="sequential,parallel,vectorized")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    args = ap.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            res = measure(name, Path(tmp), methods, args.repeats, args.chains, args.warmup, args.draws)
            print(f"## {name}: in-loop gradient {res['grad_us']:.3f} µs (CPU)")
            for method in methods:
                r = res[method]
                print(f"  {method:11s} machinery {r['machinery_us']:7.3f} µs/step (CPU)   "
                      f"wall {r['wall_us_per_grad']:7.3f} µs/gradient   {r['grads']} gradients", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
