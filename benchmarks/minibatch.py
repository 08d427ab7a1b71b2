"""Minibatch ADVI against full-batch ADVI as N grows: time per epoch and peak RSS.

Why a subprocess per run: peak RSS (`ru_maxrss`) only grows within a process, so each
(N, method) runs in a fresh interpreter and reports its own peak. The data, a logistic
regression with K = 3 covariates simulated with a fixed seed, are written once per N to
`.npy` files; the minibatch runs open them with `np.load(mmap_mode="r")` and read B rows
per step (inference/minibatch.py `fit_streaming`), the full-batch runs load them whole.

    .venv/bin/python -m benchmarks.minibatch [--sizes 1000000 10000000]
        [--full-up-to 1000000] [--batch 1000] [--steps 500] [--full-steps 300] [--compare]
        [--seeds 0 1] [--plain]

Time per epoch, in CPU seconds (the machine is shared: wall time is not the cost):
minibatch, the CPU of a step (the difference between runs of 2S and S steps, so that
compiling cancels) times N/B steps; full batch, the CPU of a step (one step is one pass
over the data), between its compiled chunks. With --compare, the fits' means and sds
against the Laplace approximation's (`oracle`), the truth ADVI should find here.
Figures in docs/scaling.md ("Minibatch ADVI") and benchmarks/minibatch.md.
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


def narrow_data(n: int, scale: float, k: int = K) -> dict:
    """The logistic regression's data with its covariates times `scale` (seed 1): the
    posterior narrows as scale grows, as it does as N grows, so a small N stands in for a
    large one in the tests of ADVI's steps (tests/inference/test_advi_narrow_posterior.py,
    test_minibatch_scales.py, benchmarks/advi_steps.py)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, k))
    y = (rng.random(n) < 1 / (1 + np.exp(-(TRUE[0] + X @ np.array(TRUE[1:]))))
         ).astype(np.int64)
    return dict(N=n, K=k, X=scale * X, y=y)


def laplace_in_memory(data: dict, steps: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """(mode, H): Newton's method on the log posterior (concave: the priors N(0, 5^2)) of
    data in memory; H is the negative Hessian at the last step's start. `oracle` below is
    the same over files read a million rows at a time."""
    rows = np.column_stack([np.ones(len(data["y"])), data["X"]])
    mode = np.zeros(rows.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(rows @ mode)))
        grad = rows.T @ (data["y"] - p) - mode / 25
        H = (rows * (p * (1 - p))[:, None]).T @ rows + np.eye(rows.shape[1]) / 25
        mode = mode + np.linalg.solve(H, grad)
    return mode, H


def oracle(folder: Path) -> dict:
    """The Laplace approximation at the mode, from a few Newton steps over all rows read a
    million at a time: the posterior of a logistic regression with 10^6 rows or more is
    close to Gaussian, and the mean-field Gaussian closest to a Gaussian with precision H
    (in KL(q || p), what ADVI minimizes) has sds 1 / sqrt(H_ii): the sds meanfield ADVI
    should find. `sd_full`: sqrt(diag(H^-1)), the posterior's marginal sds."""
    X = np.load(folder / "X.npy", mmap_mode="r")
    y = np.load(folder / "y.npy", mmap_mode="r")
    n, mode = int(X.shape[0]), np.zeros(K + 1)
    for _ in range(8):
        grad, H = -mode / 25.0, np.eye(K + 1) / 25.0   # the priors N(0, 5^2)
        for lo in range(0, n, 1_000_000):
            hi = min(n, lo + 1_000_000)
            rows = np.column_stack([np.ones(hi - lo), X[lo:hi]])
            p = 1 / (1 + np.exp(-(rows @ mode)))
            grad += rows.T @ (y[lo:hi] - p)
            H += (rows * (p * (1 - p))[:, None]).T @ rows
        mode = mode + np.linalg.solve(H, grad)
    return {"mode": mode.tolist(), "sd_meanfield": (1 / np.sqrt(np.diag(H))).tolist(),
            "sd_full": np.sqrt(np.diag(np.linalg.inv(H))).tolist()}


def child(folder: str, how: str, batch: int, steps: int, seed: int = 0) -> dict:
    """One run in this process; prints a JSON line. CPU seconds (user + sys of this
    process, `time.process_time`): the machine is shared, so wall time is not the cost."""
    import jax
    import pplc
    from pplc.inference.advi import fit_advi
    from pplc.inference.minibatch import fit_streaming

    model = pplc.compile(MODEL)
    X = np.load(Path(folder) / "X.npy", mmap_mode="r")
    y = np.load(Path(folder) / "y.npy", mmap_mode="r")
    n = int(X.shape[0])
    streamed = {"N": n, "K": K, "X": X, "y": y}
    began, cpu0 = time.perf_counter(), time.process_time()
    cpu_per_step = None
    if how == "minibatch":   # fixed numbers of steps: the CPU of a step
        # steps and 2 * steps, after a first run that fills the compilation caches (in
        # memory and on disk: a second compile costs less than the first), so that both
        # compile alike: the difference of their CPU is `steps` steps' (batches read by
        # pread included)
        cpus = []
        for count in (steps, steps, 2 * steps):
            at = time.process_time()
            result, _ = fit_streaming(model, streamed, batch, learning_rate=1.0, seed=seed,
                                      max_iterations=count, tol_rel_obj=0.0)
            cpus.append(time.process_time() - at)
        cpu_per_step = (cpus[2] - cpus[1]) / steps
        per_epoch = cpu_per_step * n / batch
    elif how.startswith("minibatch-"):   # as `pplc fit --batch-size` runs: Stan's rule, then
        # the averaging phase with the control variate (cv) or without it (plain)
        result, _ = fit_streaming(model, streamed, batch, seed=seed,
                                  learning_rate=1.0, control_variate=how.endswith("cv"),
                                  max_iterations=steps or 10000)
        per_epoch = None
    else:
        conditioned = model.condition({"N": n, "K": K, "X": np.asarray(X), "y": np.asarray(y)})
        converge = how == "full-converged"   # Stan's rule, as `pplc fit` runs it
        marks = []   # (iterations, CPU) between compiled chunks: a step's CPU, no compiling
        result = fit_advi(conditioned.lowered.log_density, conditioned.data,
                          np.zeros(conditioned.dim), jax.random.key(seed),
                          learning_rate=1.0, max_iterations=10000 if converge else steps,
                          tol_rel_obj=0.01 if converge else 0.0, num_draws=100,
                          progress=lambda phase, done, total, skipped: marks.append(
                              (done, time.process_time())) if phase == "optimization"
                          else None)
        cpu_per_step = (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0])
        per_epoch = cpu_per_step   # one step reads every row
    return {"n": n, "how": how, "seed": seed,
            "batch": batch if how.startswith("minibatch") else n,
            "steps": result.iterations, "fit_seconds": result.seconds,
            "cpu_seconds": time.process_time() - cpu0, "cpu_per_step": cpu_per_step,
            "n_grad_evals": result.n_grad_evals, "converged": bool(result.converged),
            "compile_seconds": result.compile_seconds,
            "wall_seconds": time.perf_counter() - began, "cpu_per_epoch": per_epoch,
            "mean": [round(float(m), 6) for m in result.mean],
            "sd": [round(float(s), 7) for s in np.ravel(result.scale_or_cov)],
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


def _run(*args) -> dict:
    """`python -m benchmarks.minibatch ARGS` in a process of its own; its last JSON line."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.minibatch", *map(str, args)],
                         capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if out.returncode:
        sys.exit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--full-up-to", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=500,
                        help="the fixed-step runs' steps (run as steps and 2 * steps)")
    parser.add_argument("--full-steps", type=int, default=300,
                        help="the fixed-step full-batch run: at least 2 chunks of 100")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1],
                        help="seeds of the --compare minibatch fits")
    parser.add_argument("--compare", action="store_true",
                        help="at each size, minibatch ADVI as `pplc fit --batch-size` runs it "
                             "(Stan's rule, then the averaging phase with the control "
                             "variate), full-batch ADVI run to convergence (up to "
                             "--full-up-to), and their means and sds against the Laplace "
                             "approximation's (and the minibatch fits' against full batch's)")
    parser.add_argument("--plain", action="store_true",
                        help="with --compare, the minibatch fit without the control variate too")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--write", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--oracle", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        write_data(Path(args.write[0]), int(args.write[1]))
        return
    if args.oracle:
        print(json.dumps(oracle(Path(args.oracle))), flush=True)
        return
    if args.child:
        folder, how, batch, steps, seed = args.child
        print(json.dumps(child(folder, how, int(batch), int(steps), int(seed))), flush=True)
        return
    rows, oracles = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            folder = Path(tmp) / str(n)
            folder.mkdir()
            # in a process of its own: a child's ru_maxrss counts the peak RSS of the
            # process it was forked from (Linux, up to the exec), and writing maps the files
            subprocess.run([sys.executable, "-m", "benchmarks.minibatch", "--write",
                            str(folder), str(n)], check=True,
                           cwd=Path(__file__).resolve().parent.parent)
            oracles[n] = _run("--oracle", folder)
            runs = [("minibatch", args.steps, 0)]
            if n <= args.full_up_to:
                runs.append(("full", args.full_steps, 0))
            if args.compare:
                runs += [("minibatch-cv", 0, seed) for seed in args.seeds]
                runs += [("minibatch-plain", 0, 0)] if args.plain else []
                if n <= args.full_up_to:
                    runs.append(("full-converged", 0, 0))
            for how, steps, seed in runs:
                rows.append(_run("--child", folder, how, args.batch, steps, seed))
                r = rows[-1]
                step = (f"{r['cpu_per_step'] * 1e3:7.2f} ms CPU/step, "
                        f"{r['cpu_per_epoch']:8.2f} s CPU/epoch, "
                        if r["cpu_per_step"] is not None else "")
                print(f"N={r['n']:>10,} {r['how']:>15} seed {r['seed']} B={r['batch']:>10,}: "
                      f"{step}{r['steps']} steps, {r['n_grad_evals']} batch gradients, "
                      f"{r['cpu_seconds']:.1f} s CPU in all (compile {r['compile_seconds']:.1f}"
                      f" s wall), peak RSS {r['peak_rss_mib']:.0f} MiB, converged "
                      f"{r['converged']}", flush=True)
    for n, orc in oracles.items():
        mode, sd = np.array(orc["mode"]), np.array(orc["sd_meanfield"])
        print(f"N={n:,}: Laplace mode {np.round(mode, 4).tolist()}, mean-field sds "
              f"{np.round(sd, 5).tolist()} (marginal {np.round(orc['sd_full'], 5).tolist()})")
        full = [r for r in rows if r["n"] == n and r["how"] == "full-converged"]
        for r in (x for x in rows if x["n"] == n and x["how"] != "minibatch"
                  and x["how"] != "full"):
            off = (np.array(r["mean"]) - mode) / sd
            line = (f"  {r['how']} seed {r['seed']} ({r['steps']} steps): means - mode "
                    f"{np.round(off, 2).tolist()} sds, sds / Laplace "
                    f"{np.round(np.array(r['sd']) / sd, 3).tolist()}")
            if full and r is not full[0]:
                f = full[0]
                line += (f"; against full batch: means "
                         f"{np.round((np.array(r['mean']) - f['mean']) / f['sd'], 2).tolist()}"
                         f" full sds, sds x {np.round(np.array(r['sd']) / f['sd'], 3).tolist()}")
            print(line)
    for how in ("minibatch", "minibatch-cv"):
        mini = [r for r in rows if r["how"] == how and r["seed"] == 0]
        if len(mini) > 1:
            print(f"{how} peak RSS from N={mini[0]['n']:,} to N={mini[-1]['n']:,} "
                  f"({mini[-1]['n'] / mini[0]['n']:.0f}x rows): "
                  f"{mini[0]['peak_rss_mib']:.0f} -> {mini[-1]['peak_rss_mib']:.0f} MiB")
    print(json.dumps({"rows": rows, "oracles": {str(k): v for k, v in oracles.items()}}))


if __name__ == "__main__":
    main()
