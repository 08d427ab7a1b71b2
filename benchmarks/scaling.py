"""Scaling in N: what a regression's log density costs to compile and to differentiate as
the data grow from 1e2 to 1e6 rows, pplc against NumPyro.

    python -m benchmarks --only scaling

Model: `y ~ Normal(X @ beta + alpha, sigma)`, K = 5 covariates (the examples/ linear
regression), data simulated with a fixed seed. Each (N, system) runs in a fresh process,
float64. pplc: `jax.jit(jax.value_and_grad(cm.lowered.log_density)).lower(u, cm.data)
.compile()`, the data a runtime argument. NumPyro: `initialize_model`, then `potential_fn`,
which closes over the data (they become constants of the traced program). Per N: setup
(pplc `condition` / NumPyro `initialize_model`), trace+lower seconds, XLA compile seconds,
jaxpr equation count (recursive), one gradient inside a compiled loop
(`gradfloor.in_loop_seconds`), and peak-RSS growth over the process's state after its imports.
Targets (PERFORMANCE.md): XLA compile time and IR size flat in N; gradient time linear in N.
"""

from __future__ import annotations

import math

from benchmarks._common import run_worker
from benchmarks.datasets import linreg_arrays
from benchmarks.report import fmt as _f

LINREG_SOURCE = """\
data N: int
data K: int
data X: real[N, K]
data y: real[N]

alpha ~ Normal(0, 10)
beta: real[K] ~ Normal(0, 10)
sigma ~ HalfNormal(5)

y ~ Normal(X @ beta + alpha, sigma)
"""

NS = (100, 1_000, 10_000, 100_000, 1_000_000)
K = 5


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _count_eqns(jaxpr) -> int:
    """Equations of a jaxpr, those of its sub-jaxprs (pjit, custom_jvp, scan ...) included."""
    n = 0
    for eqn in jaxpr.eqns:
        n += 1
        for p in eqn.params.values():
            for sub in (p if isinstance(p, (list, tuple)) else (p,)):
                if hasattr(sub, "eqns"):
                    n += _count_eqns(sub)
                elif hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    n += _count_eqns(sub.jaxpr)
    return n


def _gradient_costs(jax, counter, logdensity, x0, data) -> dict:
    """Trace+lower and XLA compile of jit(value_and_grad), jaxpr size, in-loop gradient."""
    import time

    from benchmarks import gradfloor

    vg = jax.value_and_grad(logdensity)
    out = {}
    snap = counter.snapshot()
    t = time.perf_counter()
    lowered = jax.jit(vg).lower(x0, data)
    out["lower_s"] = time.perf_counter() - t
    t = time.perf_counter()
    lowered.compile()
    out["compile_s"] = time.perf_counter() - t
    out["compile_xla"] = counter.since(snap)
    out["jaxpr_eqns"] = _count_eqns(jax.make_jaxpr(vg)(x0, data).jaxpr)
    out["grad_in_loop_s"] = gradfloor.calibrated_in_loop_seconds(logdensity, x0, data)
    return out


def pplc_scaling(config: dict) -> dict:
    from benchmarks.worker import setup

    jax, counter, _ = setup(dict(config, x64=True))
    import time

    import pplc

    rss0 = _rss_mb()
    X, y = linreg_arrays(config["n"], config["k"], config.get("seed", 0))
    # pplc's data dict takes JSON-like values (nested lists), not NumPy arrays
    t = time.perf_counter()
    data = {"N": config["n"], "K": config["k"], "X": X.tolist(), "y": y.tolist()}
    tolist_s = time.perf_counter() - t
    t = time.perf_counter()
    cm = pplc.compile(LINREG_SOURCE).condition(data)
    condition_s = time.perf_counter() - t
    del data
    x0 = jax.numpy.full(cm.dim, 0.1)
    out = {"dim": int(cm.dim), "tolist_s": tolist_s, "condition_s": condition_s}
    out.update(_gradient_costs(jax, counter, cm.lowered.log_density, x0, cm.data))
    out["rss_after_imports_mb"] = rss0
    out["rss_growth_mb"] = _rss_mb() - rss0
    return out


def numpyro_scaling(config: dict) -> dict:
    from benchmarks.worker import setup

    jax, counter, _ = setup(dict(config, x64=True))
    import time

    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    from benchmarks.numpyro_models import linear_regression

    rss0 = _rss_mb()
    X, y = linreg_arrays(config["n"], config["k"], config.get("seed", 0))
    t = time.perf_counter()
    info = initialize_model(jax.random.PRNGKey(0), linear_regression,
                            model_kwargs={"X": X, "y": y})
    init_s = time.perf_counter() - t
    flat, unravel = ravel_pytree(info.param_info.z)
    potential = info.potential_fn

    def logdensity(x, data):
        return -potential(unravel(x))

    x0 = jax.numpy.full(flat.shape[0], 0.1)
    out = {"dim": int(flat.shape[0]), "initialize_model_s": init_s}
    out.update(_gradient_costs(jax, counter, logdensity, x0, None))
    out["rss_after_imports_mb"] = rss0
    out["rss_growth_mb"] = _rss_mb() - rss0
    return out


WORKER_MODES = {f.__name__: f for f in (pplc_scaling, numpyro_scaling)}


def run(ns: tuple[int, ...] = NS, *, k: int = K, seed: int = 0, numpyro: bool = True,
        log=print, numpyro_ns: tuple[int, ...] | None = None) -> list[dict]:
    """One row per (N, system), systems alternating; NumPyro at `numpyro_ns` only when
    given (`--quick`: one N), at every N otherwise."""
    rows = []
    for n in ns:
        cfg = {"n": n, "k": k, "seed": seed, "x64": True}
        twin = numpyro and (numpyro_ns is None or n in numpyro_ns)
        systems = [("pplc", "pplc_scaling")] + ([("NumPyro", "numpyro_scaling")]
                                                if twin else [])
        for system, mode in systems:
            log(f"  scaling N={n:,}: {system} ...")
            try:
                r = run_worker(mode, cfg)
            except Exception as exc:  # one failed configuration must not end the run
                r = {"error": f"{type(exc).__name__}: {str(exc)[-400:]}"}
            rows.append({"n": n, "system": system, **r})
    return rows


def scaling_table(rows: list[dict]) -> str:
    out = ["| N | system | trace+lower s | XLA compile s | jaxpr eqns | in-loop grad µs | "
           "ns per row | setup s (pplc condition / NumPyro initialize_model) | "
           "peak RSS growth MB |", "|---" * 9 + "|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['n']:,} | {r['system']} | error: {r['error'][-120:]} |"
                       + " |" * 6)
            continue
        setup = r.get("condition_s", r.get("initialize_model_s"))
        out.append(
            f"| {r['n']:,} | {r['system']} | {_f(r['lower_s'], 3)} | {_f(r['compile_s'], 3)} | "
            f"{r['jaxpr_eqns']} | {_f(r['grad_in_loop_s'] * 1e6, 2)} | "
            f"{_f(r['grad_in_loop_s'] * 1e9 / r['n'], 2)} | {_f(setup)} | "
            f"{_f(r['rss_growth_mb'], 0)} |")
    return "\n".join(out)


def scaling_checks(rows: list[dict]) -> str:
    out = []
    for system in dict.fromkeys(r["system"] for r in rows):
        ok = sorted((r for r in rows if r["system"] == system and "error" not in r),
                    key=lambda r: r["n"])
        if len(ok) < 2:
            continue
        lo, hi = ok[0], ok[-1]
        eqns = {r["jaxpr_eqns"] for r in ok}
        span = hi["n"] / lo["n"]
        comp = hi["compile_s"] / lo["compile_s"]
        # gradient-time growth over the top decade(s), where fixed costs no longer dominate
        top = [r for r in ok if r["n"] >= 10_000] or ok
        slope = (math.log(top[-1]["grad_in_loop_s"] / top[0]["grad_in_loop_s"])
                 / math.log(top[-1]["n"] / top[0]["n"])) if len(top) > 1 else float("nan")
        out.append(
            f"- {system}: jaxpr equations {'flat' if len(eqns) == 1 else 'NOT flat'} in N "
            f"({', '.join(str(r['jaxpr_eqns']) for r in ok)}); XLA compile "
            f"{lo['compile_s']:.3f} s → {hi['compile_s']:.3f} s over a {span:,.0f}× range of N "
            f"({comp:.2f}×; target: flat); gradient time log-log slope over "
            f"N = {top[0]['n']:,}..{top[-1]['n']:,}: {slope:.2f} (target: 1, linear); "
            f"setup {ok[0].get('condition_s', ok[0].get('initialize_model_s')):.2f} s → "
            f"{hi.get('condition_s', hi.get('initialize_model_s')):.2f} s")
    return "\n".join(out)
