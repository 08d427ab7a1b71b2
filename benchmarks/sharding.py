"""Data split across devices (--shard-data): one gradient's time, split against whole.

    python -m benchmarks.sharding [--rows 100000 1000000] [--devices 4]

Model: the hierarchical logistic regression of examples/ (`y ~ Bernoulli(logits=a[g] +
X @ beta)`), G = 50 groups, K = 5 covariates, data simulated with a fixed seed; and the
same model written as a loop over the rows (`for n in range(N): y[n] ~ ...`). For each
size, one fresh process with XLA_FLAGS=--xla_force_host_platform_device_count=D (D virtual
CPU devices) times, in the same process, `jit(value_and_grad(log density))` called from
Python (median of repeated calls, compile excluded) with the data on one device and split
over the D devices as the plan says (inference/sharding.py `sharded_value_and_grad`). The
ratio is whole / split: above 1 the split is faster. Also the data's bytes on each device,
and D times one device's time at rows / D (the same work done as D small programs one
after another: what the split gains from smaller arrays alone, without any parallelism).

Wall time on a shared machine favours more threads (each gets its share of the cores
from the scheduler), so the process CPU time per call is reported too (all threads).
Virtual CPU devices share the machine's cores: on a 2-core machine D = 4 devices cannot
beat one device that already runs XLA's own threads on both cores; what they show is the
overhead of the partitioned program (the all-reduce of the partial sums) and that each
device holds 1/D of the rows. Results go to benchmarks/results_sharding.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.passes import HIER_LOGISTIC_SOURCE

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "hierarchical_logistic" / "model.ppl"
# The same model written element by element, as benchmarks/passes.py writes it: a loop
# over the rows (see docs/scaling.md, limits: today such a loop reads each row by a gather,
# which the partitioner cannot split).
LOOP = HIER_LOGISTIC_SOURCE
FORMS = {"whole-array": MODEL, "loop": LOOP}
OUT = Path(__file__).resolve().parent / "results_sharding.md"


def data(rows: int, groups: int = 50, k: int = 5, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, rows)
    x = rng.normal(size=(rows, k))
    a = -0.5 + 0.8 * rng.normal(size=groups)
    logits = a[g] + x @ np.linspace(-1, 1, k)
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logits))).astype(np.int64)
    return {"N": rows, "G": groups, "K": k, "g": g, "X": x, "y": y}


def _median_seconds(fn, u, repeats: int) -> float:
    return _seconds(fn, u, repeats)[0]


def _seconds(fn, u, repeats: int) -> tuple[float, float]:
    """(median wall seconds, mean process CPU seconds) of one call."""
    import jax
    jax.block_until_ready(fn(u))   # compile and warm
    times = []
    cpu = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(u))
        times.append(time.perf_counter() - start)
    return float(np.median(times)), (time.process_time() - cpu) / repeats


def measure(rows: int, repeats: int, form: str = "whole-array") -> dict:
    """In this process (its devices fixed by XLA_FLAGS): whole vs split gradient time."""
    import jax
    import pplc
    from pplc.inference.sharding import Placement, sharded_value_and_grad

    model = pplc.compile(FORMS[form])
    conditioned = model.condition(data(rows))
    axes = dict(conditioned.lowered.plan.sharding.axes)
    u = np.random.default_rng(1).normal(size=conditioned.dim) * 0.3
    whole = conditioned.value_and_grad
    split = sharded_value_and_grad(conditioned._log_density, conditioned.data, axes)
    value, grad = whole(u)
    value_s, grad_s = split(u)
    placed = Placement.make(axes, conditioned.data).place(conditioned.data)
    per_device = sum(int(a.addressable_shards[0].data.nbytes) for a in placed.values())
    total = sum(int(np.asarray(a).nbytes) for a in conditioned.data.values())
    t_whole, cpu_whole = _seconds(whole, u, repeats)
    t_split, cpu_split = _seconds(split, u, repeats)
    devices = len(jax.devices())
    quarter = model.condition(data(rows // devices)).value_and_grad
    t_part = devices * _median_seconds(quarter, u, repeats)
    return {"form": form, "rows": rows, "devices": devices, "whole_s": t_whole,
            "split_s": t_split, "ratio": t_whole / t_split, "parts_s": t_part,
            "whole_cpu_s": cpu_whole, "split_cpu_s": cpu_split,
            "data_bytes": total, "data_bytes_per_device": per_device,
            "value_rel": float(abs(value - value_s) / abs(value)),
            "grad_rel": float(np.max(np.abs(grad - grad_s)) / np.max(np.abs(grad)))}


def run(rows_list, devices: int, repeats: int) -> list[dict]:
    results = []
    for form in FORMS:
        for rows in rows_list:
            env = {**os.environ, "PYTHONPATH": str(ROOT),
                   "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
            done = subprocess.run([sys.executable, "-m", "benchmarks.sharding", "--worker",
                                   str(rows), "--repeats", str(repeats), "--form", form],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"{form}, {rows} rows:\n{done.stderr[-3000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    return results


def report(results: list[dict]) -> str:
    lines = ["# Sharded vs whole data: one gradient (benchmarks/sharding.py)", "",
             f"Machine: {os.cpu_count()} CPU cores; virtual CPU devices "
             "(XLA_FLAGS=--xla_force_host_platform_device_count). Hierarchical logistic, "
             "G = 50, K = 5, float64; median of Python calls of jit(value_and_grad); "
             "CPU: process CPU time per call, all threads.", "",
             "| model | rows | devices D | whole (ms) | split (ms) | whole / split | D x whole at "
             "rows / D (ms) | CPU whole (ms) | CPU split (ms) | data MB | MB per device | "
             "value rel. diff | grad rel. diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['form']} | {r['rows']:,} | {r['devices']} | {1e3 * r['whole_s']:.2f} | "
                     f"{1e3 * r['split_s']:.2f} | {r['ratio']:.2f} | "
                     f"{1e3 * r['parts_s']:.2f} | {1e3 * r['whole_cpu_s']:.2f} | "
                     f"{1e3 * r['split_cpu_s']:.2f} | "
                     f"{r['data_bytes'] / 1e6:.1f} | {r['data_bytes_per_device'] / 1e6:.1f} | "
                     f"{r['value_rel']:.1e} | {r['grad_rel']:.1e} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--worker", type=int)
    parser.add_argument("--form", choices=list(FORMS), default="whole-array")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args.repeats, args.form)))
        return
    results = run(args.rows, args.devices, args.repeats)
    OUT.write_text(report(results))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
