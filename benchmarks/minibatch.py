"""Minibatch ADVI against full-batch ADVI as N grows: time per epoch and peak RSS.

Why a subprocess per run: peak RSS (`ru_maxrss`) only grows within a process, so each
(N, method) runs in a fresh interpreter and reports its own peak. The data, a logistic
regression with K = 3 covariates simulated with a fixed seed, are written once per N to
`.npy` files; the minibatch runs open them with `np.load(mmap_mode="r")` and read B rows
per step (inference/minibatch.py `fit_streaming`), the full-batch runs load them whole.

    .venv/bin/python -m benchmarks.minibatch [--sizes 100000 1000000 10000000]
        [--full-up-to 1000000] [--batch 1000] [--steps 2000] [--full-steps 100] [--compare]

Time per epoch: minibatch, the time per step (fit seconds / steps, compilation excluded)
times N/B steps; full batch, the time per step (one step is one pass over the data).
Figures in docs/scaling.md ("Minibatch ADVI").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODEL = """
data N: int
data K: int
data X: real[N, K]
data y: int[N]

alpha ~ Normal(0, 5)
beta: real[K] ~ Normal(0, 5)

y ~ Bernoulli(logits=alpha + X @ beta)
"""
K = 3
TRUE = (0.3, 1.0, -0.5, 0.25)


def write_data(folder: Path, n: int) -> None:
    """X (n, K) and y (n,) as .npy, written in chunks of a million rows."""
    rng = np.random.default_rng(1)
    X = np.lib.format.open_memmap(folder / "X.npy", "w+", np.float64, (n, K))
    y = np.lib.format.open_memmap(folder / "y.npy", "w+", np.int64, (n,))
    for lo in range(0, n, 1_000_000):
        hi = min(n, lo + 1_000_000)
        x = rng.normal(size=(hi - lo, K))
        X[lo:hi] = x
        p = 1 / (1 + np.exp(-(TRUE[0] + x @ np.array(TRUE[1:]))))
        y[lo:hi] = rng.random(hi - lo) < p
    X.flush()
    y.flush()


def child(folder: str, how: str, batch: int, steps: int) -> dict:
    """One run in this process; prints a JSON line."""
    import pplc
    from pplc.inference.advi import fit_advi
    from pplc.inference.minibatch import fit_streaming

    model = pplc.compile(MODEL)
    X = np.load(Path(folder) / "X.npy", mmap_mode="r")
    y = np.load(Path(folder) / "y.npy", mmap_mode="r")
    n = int(X.shape[0])
    began = time.perf_counter()
    if how == "minibatch":   # a fixed number of steps: the time per step
        result, _ = fit_streaming(model, {"N": n, "K": K, "X": X, "y": y}, batch,
                                  learning_rate=1.0, max_iterations=steps, tol_rel_obj=0.0)
        per_epoch = result.seconds / result.iterations * n / batch
    elif how.startswith("minibatch-"):   # as `pplc fit --batch-size` runs: Stan's rule, then
        # the averaging phase with the control variate (cv) or without it (plain)
        result, _ = fit_streaming(model, {"N": n, "K": K, "X": X, "y": y}, batch,
                                  learning_rate=1.0, control_variate=how.endswith("cv"),
                                  max_iterations=steps or 10000)
        per_epoch = result.seconds / result.iterations * n / batch
    else:
        conditioned = model.condition({"N": n, "K": K, "X": np.asarray(X), "y": np.asarray(y)})
        converge = how == "full-converged"   # Stan's rule, as `pplc fit` runs it
        result = fit_advi(conditioned.lowered.log_density, conditioned.data,
                          np.zeros(conditioned.dim), __import__("jax").random.key(0),
                          learning_rate=1.0, max_iterations=10000 if converge else steps,
                          tol_rel_obj=0.01 if converge else 0.0, num_draws=100)
        per_epoch = result.seconds / result.iterations
    return {"n": n, "how": how, "batch": batch if how.startswith("minibatch") else n,
            "steps": result.iterations, "fit_seconds": result.seconds,
            "n_grad_evals": result.n_grad_evals, "converged": bool(result.converged),
            "compile_seconds": result.compile_seconds,
            "wall_seconds": time.perf_counter() - began, "seconds_per_epoch": per_epoch,
            "mean": [round(float(m), 5) for m in result.mean],
            "sd": [round(float(s), 5) for s in np.ravel(result.scale_or_cov)],
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            **_rss_now()}


def _rss_now() -> dict:
    """Resident memory at the end, split as the kernel counts it: anonymous (the
    process's own arrays) and file-backed (pages of the memory-mapped .npy files touched,
    clean, which the kernel drops under pressure)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            fields[key.lower() + "_mib"] = int(value.split()[0]) / 1024
    return fields


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000,
                                                                  10_000_000])
    parser.add_argument("--full-up-to", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--full-steps", type=int, default=100)
    parser.add_argument("--compare", action="store_true",
                        help="at each size, minibatch ADVI as `pplc fit --batch-size` runs it "
                             "(Stan's rule, then the averaging phase with the control "
                             "variate, and without it), full-batch ADVI run to convergence "
                             "(up to --full-up-to), and the minibatch means' distance from "
                             "it in its sds")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--write", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        write_data(Path(args.write[0]), int(args.write[1]))
        return
    if args.child:
        folder, how, batch, steps = args.child
        print(json.dumps(child(folder, how, int(batch), int(steps))), flush=True)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            folder = Path(tmp) / str(n)
            folder.mkdir()
            # in a process of its own: a child's ru_maxrss counts the peak RSS of the
            # process it was forked from (Linux, up to the exec), and writing maps the files
            subprocess.run([sys.executable, "-m", "benchmarks.minibatch", "--write",
                            str(folder), str(n)], check=True,
                           cwd=Path(__file__).resolve().parent.parent)
            runs = [("minibatch", args.steps)]
            if n <= args.full_up_to:
                runs.append(("full", args.full_steps))
            if args.compare:
                runs += [("minibatch-cv", 0), ("minibatch-plain", 0)]
                if n <= args.full_up_to:
                    runs.append(("full-converged", 0))
            for how, steps in runs:
                out = subprocess.run([sys.executable, "-m", "benchmarks.minibatch", "--child",
                                      str(folder), how, str(args.batch), str(steps)],
                                     capture_output=True, text=True,
                                     cwd=Path(__file__).resolve().parent.parent,
                                     env={**os.environ, "PYTHONWARNINGS": "ignore"})
                if out.returncode:
                    sys.exit(out.stderr[-3000:])
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
                r = rows[-1]
                print(f"N={r['n']:>9,} {r['how']:>15} B={r['batch']:>9,}: "
                      f"{r['seconds_per_epoch']:8.2f} s/epoch, "
                      f"{r['fit_seconds'] / r['steps'] * 1e3:7.2f} ms/step, "
                      f"compile {r['compile_seconds']:5.1f} s, "
                      f"peak RSS {r['peak_rss_mib']:7.0f} MiB (at the end: anonymous "
                      f"{r.get('rssanon_mib', 0):.0f}, file {r.get('rssfile_mib', 0):.0f}), "
                      f"mean {r['mean']}", flush=True)
    for r in rows:
        if r["how"] != "full-converged":
            continue
        for m in (x for x in rows if x["how"].startswith("minibatch") and x["n"] == r["n"]):
            off = (np.array(m["mean"]) - np.array(r["mean"])) / np.array(r["sd"])
            print(f"N={r['n']:,}: {m['how']} minus converged full batch ({r['steps']} "
                  f"iterations, {r['fit_seconds']:.1f} s): means {np.round(off, 2).tolist()} "
                  f"sd, sds x {np.round(np.array(m['sd']) / np.array(r['sd']), 2).tolist()}; "
                  f"{m['steps']} steps, {m['fit_seconds']:.1f} s")
    for how in ("minibatch", "minibatch-cv"):
        mini = [r for r in rows if r["how"] == how]
        if len(mini) > 1:
            print(f"{how} peak RSS from N={mini[0]['n']:,} to N={mini[-1]['n']:,} "
                  f"({mini[-1]['n'] / mini[0]['n']:.0f}x rows): "
                  f"{mini[0]['peak_rss_mib']:.0f} -> {mini[-1]['peak_rss_mib']:.0f} MiB")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
