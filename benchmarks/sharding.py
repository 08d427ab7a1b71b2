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
SCALING = Path(__file__).resolve().parent / "results_sharding_scaling.json"


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
    split = sharded_value_and_grad(conditioned.lowered.log_density, conditioned.data, axes)
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


def scaling_point(rows: int, form: str, min_seconds: float = 1.0) -> dict:
    """In this process: `split_gradient` of the model `form` at `rows` rows."""
    import pplc

    conditioned = pplc.compile(FORMS[form]).condition(data(rows))
    return {"form": form, **split_gradient(conditioned, min_seconds)}


def split_gradient(conditioned, min_seconds: float = 1.0) -> dict:
    """The split gradient of a conditioned model on all the devices of the run (one device:
    the data whole): its median wall time and CPU per call (compile excluded), the data's
    bytes per device, and the compiled program's memory per device (XLA's memory analysis
    of the SPMD program: its arguments, outputs and temporaries, which is what each device
    holds at the peak; virtual CPU devices report no live counters) and its collectives.
    In a run of several processes (benchmarks/sharding_processes.py) every process makes the
    same calls, each collective, so they agree on the number of repeats first."""
    import jax
    from pplc.inference.sharding import Placement

    axes = dict(conditioned.lowered.plan.sharding.axes)
    placement = Placement.make(axes, conditioned.data)
    placed = placement.place(conditioned.data)
    log_density = conditioned.lowered.log_density   # (u, data) -> log p, the sampler's target
    fn = jax.jit(jax.value_and_grad(lambda u, d: log_density(u, placement.trim(d))),
                 in_shardings=(placement.replicated, placement.shardings(conditioned.data)))
    u = jax.device_put(np.random.default_rng(1).normal(size=conditioned.dim) * 0.3,
                       placement.replicated)
    compiled = fn.lower(u, placed).compile()
    memory = compiled.memory_analysis()
    peak = int(memory.argument_size_in_bytes + memory.output_size_in_bytes
               + memory.temp_size_in_bytes - memory.alias_size_in_bytes)
    jax.block_until_ready(fn(u, placed))
    start = time.perf_counter()
    jax.block_until_ready(fn(u, placed))
    repeats = int(min(50, max(3, min_seconds / max(time.perf_counter() - start, 1e-6))))
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        repeats = int(np.max(multihost_utils.process_allgather(np.asarray(repeats))))
    times, cpu = [], time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(u, placed))
        times.append(time.perf_counter() - start)
    return {"rows": int(conditioned.lowered.data.sizes["N"]), "devices": len(jax.devices()),
            "seconds": float(np.median(times)),
            "cpu_seconds": (time.process_time() - cpu) / repeats,
            "peak_bytes_per_device": peak,
            "data_bytes_per_device": sum(int(a.addressable_shards[0].data.nbytes)
                                         for a in placed.values()),
            "collectives": _collective_count(compiled.as_text())}


def _collective_count(text: str) -> dict:
    import re
    sizes = [int(np.prod([int(d) for d in dims.split(",") if d]))
             for op, _ in re.findall(r"= (.*?) (all-gather|all-reduce|all-to-all|"
                                     r"collective-permute|reduce-scatter)\(", text)
             for dims in re.findall(r"\w+\[([\d,]*)\]", op)]
    return {"ops": len(sizes), "largest": max(sizes, default=0)}


def scaling(rows_list, devices_list, forms, weak_rows: int) -> list[dict]:
    """Strong (each size on each device count) and weak (weak_rows per device) scaling,
    each point in a fresh process with that many virtual devices."""
    points = [(form, rows, d) for form in forms for rows in rows_list for d in devices_list]
    points += [(form, weak_rows * d, d) for form in forms for d in devices_list
               if weak_rows * d not in rows_list]
    results = []
    for form, rows, d in points:
        env = {**os.environ, "PYTHONPATH": str(ROOT),
               "XLA_FLAGS": f"--xla_force_host_platform_device_count={d}"}
        done = subprocess.run([sys.executable, "-m", "benchmarks.sharding", "--scaling-worker",
                               str(rows), "--form", form], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{form}, {rows} rows, {d} devices:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    return results


def scaling_report(results: list[dict], weak_rows: int) -> str:
    load = os.getloadavg()
    lines = ["## Scaling over virtual CPU devices", "",
             f"{os.cpu_count()} CPU cores shared by every device (load average "
             f"{load[0]:.1f} at the end of the run): the speed-up is bounded by the cores, "
             "not by the devices; what the tables show is the cost of splitting and the "
             "memory each device holds. Time: median wall time of one jit(value_and_grad) "
             "call (CPU: process CPU time, all threads). Memory per device: XLA's memory "
             "analysis of the compiled SPMD program (arguments + outputs + temporaries).", ""]
    by = {(r["form"], r["rows"], r["devices"]): r for r in results}
    forms = sorted({r["form"] for r in results})
    for form in forms:
        sizes = sorted({r["rows"] for r in results if r["form"] == form})
        lines += [f"### Strong scaling, {form} form (rows fixed, devices grow)", "",
                  "| rows | devices | time (ms) | CPU (ms) | speed-up | efficiency | step "
                  "efficiency | CPU of 1 device / CPU | peak MB per device | data MB per "
                  "device | collectives (largest, elements) |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for rows in sizes:
            ds = sorted(d for f, n, d in by if f == form and n == rows)
            if 1 not in ds or len(ds) < 2:
                continue
            base, prev = by[(form, rows, 1)], None
            for d in ds:
                r = by[(form, rows, d)]
                speed = base["seconds"] / r["seconds"]
                step = "" if prev is None else \
                    f"{prev['seconds'] / r['seconds'] / (d / prev['devices']):.2f}"
                lines.append(f"| {rows:,} | {d} | {1e3 * r['seconds']:.2f} | "
                             f"{1e3 * r['cpu_seconds']:.2f} | {speed:.2f} | {speed / d:.2f} | "
                             f"{step} | {base['cpu_seconds'] / r['cpu_seconds']:.2f} | "
                             f"{r['peak_bytes_per_device'] / 2**20:.1f} | "
                             f"{r['data_bytes_per_device'] / 2**20:.1f} | "
                             f"{r['collectives']['ops']} ({r['collectives']['largest']}) |")
                prev = r
        lines += ["", f"### Weak scaling, {form} form ({weak_rows:,} rows per device)", "",
                  "| devices | rows | time (ms) | CPU (ms) | efficiency | step efficiency | "
                  "CPU per row, 1 device / this | peak MB per device |",
                  "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        weak = [by[(form, weak_rows * d, d)] for d in sorted({r["devices"] for r in results})
                if (form, weak_rows * d, d) in by]
        for k, r in enumerate(weak):
            step = "" if k == 0 else f"{weak[k - 1]['seconds'] / r['seconds']:.2f}"
            lines.append(f"| {r['devices']} | {r['rows']:,} | {1e3 * r['seconds']:.2f} | "
                         f"{1e3 * r['cpu_seconds']:.2f} | {weak[0]['seconds'] / r['seconds']:.2f} "
                         f"| {step} | {weak[0]['cpu_seconds'] * r['devices'] / r['cpu_seconds']:.2f}"
                         f" | {r['peak_bytes_per_device'] / 2**20:.1f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--scaling", action="store_true",
                        help="strong and weak scaling over --device-counts (section of "
                             "results_sharding.md)")
    parser.add_argument("--device-counts", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--weak-rows", type=int, default=100_000)
    parser.add_argument("--forms", nargs="+", choices=list(FORMS), default=list(FORMS))
    parser.add_argument("--scaling-worker", type=int)
    parser.add_argument("--report-only", action="store_true",
                        help="with --scaling: rewrite the section from the last run's JSON")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.worker, args.repeats, args.form)))
        return
    if args.scaling_worker:
        print(json.dumps(scaling_point(args.scaling_worker, args.form)))
        return
    if args.scaling:
        if args.report_only:
            results = json.loads(SCALING.read_text())
        else:
            results = scaling(args.rows, args.device_counts, args.forms, args.weak_rows)
            SCALING.write_text(json.dumps(results, indent=1))
        text = OUT.read_text() if OUT.exists() else ""
        text = text.split("## Scaling over virtual CPU devices")[0].rstrip() + "\n\n"
        OUT.write_text(text + scaling_report(results, args.weak_rows))
        print(OUT.read_text())
        return
    results = run(args.rows, args.devices, args.repeats)
    OUT.write_text(report(results))
    print(OUT.read_text())


if __name__ == "__main__":
    main()
