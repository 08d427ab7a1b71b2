"""Overhead: how close NUTS gets to the cost of its gradients, and ESS per second.

Model: linear regression N=1000, K=10 (12 unconstrained parameters), data simulated with a
fixed seed. Both systems run 4 chains x (1000 warmup + 1000 draws), seed 0, in float64
(`jax_enable_x64` is set for NumPyro as well, since pplc always computes in float64), each
configuration in a fresh process.

    overhead (in-loop)   = exec seconds / (n_grad_evals x in-loop gradient seconds)
    overhead (py-call)   = exec seconds / (n_grad_evals x median Python-call seconds)
    machinery per step   = (exec seconds - n_grad_evals x in-loop gradient) / n_grad_evals

`exec` is warmup + sampling without compilation: pplc reports it directly (its programs
are compiled ahead of time); for NumPyro it is the wall time of warmup+run minus every
JAX compile-pipeline event (trace, MLIR lowering, XLA compile) seen during them.
`n_grad_evals` counts leapfrog steps over all chains, warmup included (pplc also counts
the step-size searches; NumPyro's figure is the sum of `num_steps`). The in-loop gradient
is the floor a compiled sampler can approach (see `gradfloor`); the Python-call ratio is
given because it is the literal definition, but it comes out below 1 for any sampler
compiled end to end. Each system's ratio uses its own gradient (same density, different
lowering). ESS is ArviZ's bulk ESS, minimum over all parameters; ESS/s = min ESS / exec.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import LINREG_DIR, run_worker, write_linreg_data


def run(*, n: int = 1000, k: int = 10, chains: int = 4, warmup: int = 1000, draws: int = 1000,
        seed: int = 0, methods=("sequential", "auto"), numpyro: bool = True,
        log=print) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="pplc-bench-") as tmp:
        data = write_linreg_data(Path(tmp) / "data.json", n=n, k=k, seed=seed)
        base = {"model": str(LINREG_DIR / "model.ppl"), "data": str(data), "chains": chains,
                "warmup": warmup, "draws": draws, "seed": seed, "x64": True}
        configs = [(f"pplc {m}", "pplc_overhead", dict(base, chain_method=m, floor=i == 0))
                   for i, m in enumerate(methods)]
        if numpyro:
            configs.append(("NumPyro sequential", "numpyro_overhead",
                            dict(base, chain_method="sequential", numpyro_model="linear_regression")))
        for system, mode, cfg in configs:
            log(f"  overhead linreg {n}x{k}: {system} ...")
            try:
                r = run_worker(mode, cfg)
            except Exception as exc:
                r = {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}
            rows.append({"model": f"linear_regression_{n}x{k}", "system": system, **r})
    # pplc's gradient floor is measured once (same density whatever the chain method)
    floor = next((r for r in rows if r["system"].startswith("pplc") and "grad_in_loop_s" in r), None)
    for r in rows:
        if "error" in r:
            continue
        if "grad_in_loop_s" not in r and floor is not None:
            r["grad_in_loop_s"], r["grad_call_median_s"] = floor["grad_in_loop_s"], floor["grad_call_median_s"]
        g = r["n_grad_evals"]
        if "grad_in_loop_s" in r and g:
            r["overhead_in_loop"] = r["exec_s"] / (g * r["grad_in_loop_s"])
            r["overhead_py_call"] = r["exec_s"] / (g * r["grad_call_median_s"])
            r["machinery_us_per_step"] = (r["exec_s"] - g * r["grad_in_loop_s"]) / g * 1e6
        r["ess_per_s"] = r["min_ess_bulk"] / r["exec_s"] if r["exec_s"] > 0 else float("nan")
        r["ess_per_grad"] = r["min_ess_bulk"] / g if g else float("nan")
    return rows
