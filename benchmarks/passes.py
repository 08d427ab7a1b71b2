"""Passes: what pplc's automatic reparameterization buys on models written centered, side
by side with NumPyro. (Scaling in N, formerly here, is `benchmarks.scaling`.)

    python -m benchmarks --only passes     # writes benchmarks/results_passes.md (+ .json)

Every configuration runs in a fresh process (`python -m benchmarks.worker MODE JSON`,
modes defined here in `WORKER_MODES`), float64 in both systems, seed 0.

1. **Eight schools, centered as written** (posteriordb's `eight_schools_centered`) and
2. **hierarchical logistic regression, centered as written** (N=5000 rows, 50 groups,
   5 covariates, varying intercepts `a[j] ~ Normal(mu_a, sigma_a)`, shared slopes,
   `y[n] ~ Bernoulli(logits=a[g[n]] + X[n] @ beta)` in a loop over n; data simulated
   with a fixed seed), each three ways: pplc with its passes (default), pplc with
   `disabled_passes=("reparameterize",)`, and NumPyro on the model as written (centered;
   its likelihood in NumPyro's vectorized idiom). Both systems run their chains one after
   another ("sequential"): pplc's default on a multi-core machine is threads, which would
   make the wall-clock comparison depend on how busy the other core is.

       exec       = warmup + sampling seconds, compilation excluded (pplc reports it;
                    NumPyro: wall of warmup+run minus every JAX compile-pipeline event)
       min ESS    = ArviZ bulk ESS, minimum over every element of the hierarchical
                    parameters (eight schools: mu, tau, theta; logistic: mu_a, sigma_a,
                    a, beta), computed the same way for both systems from the draws
       ESS/s      = min ESS / exec;  ESS/grad = min ESS / leapfrog steps (warmup included)
       R-hat max  = ArviZ rank-normalized split R-hat, maximum over the same elements
       divergences = post-warmup divergent transitions, all chains

"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import run_worker
from benchmarks.datasets import write_hier_logistic_data
from benchmarks.report import fmt as _f

EIGHT_CENTERED_DIR = Path("/work/shared/conformance/eight_schools-eight_schools_centered")

HIER_LOGISTIC_SOURCE = """\
# Hierarchical logistic regression written centered (benchmarks/passes.py): varying
# intercepts a[j] ~ Normal(mu_a, sigma_a), shared slopes, one statement per row.
data N: int
data G: int
data K: int
data g: int(lower=0, upper=G - 1)[N]
data X: real[N, K]
data y: int(lower=0, upper=1)[N]

mu_a ~ Normal(0, 2.5)
sigma_a ~ HalfNormal(2)
for j in range(G):
    a[j] ~ Normal(mu_a, sigma_a)
beta: real[K] ~ Normal(0, 2.5)
for n in range(N):
    y[n] ~ Bernoulli(logits=a[g[n]] + X[n] @ beta)
"""

# ---------------------------------------------------------------------------------------
# worker modes (run inside `python -m benchmarks.worker`)


def _diagnostics(draws: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """min bulk ESS (and where), max R-hat over every element of `names`."""
    import arviz as az

    from benchmarks._common import min_bulk_ess

    picked = {k: np.asarray(draws[k], float) for k in names}
    ess, where = min_bulk_ess(picked)
    rhat = -math.inf
    for v in picked.values():
        flat = v.reshape(v.shape[0], v.shape[1], -1)
        for i in range(flat.shape[2]):
            r = float(az.rhat(flat[:, :, i]))
            if not math.isnan(r):
                rhat = max(rhat, r)
    return {"min_ess_bulk": ess, "min_ess_where": where,
            "rhat_max": rhat if math.isfinite(rhat) else float("nan")}


def pplc_mcmc(config: dict) -> dict:
    from benchmarks.worker import setup

    jax, counter, _ = setup(config)
    import time

    import pplc

    source = config.get("source") or Path(config["model"]).read_text()
    t = time.perf_counter()
    cm = pplc.compile(source).condition(config["data"],
                                        disabled_passes=tuple(config.get("disabled", ())))
    condition_s = time.perf_counter() - t
    snap = counter.snapshot()
    t = time.perf_counter()
    post = cm.sample(chains=config["chains"], warmup=config["warmup"], draws=config["draws"],
                     seed=config.get("seed", 0), chain_method=config["chain_method"])
    out = {"cold_s": time.perf_counter() - t, "cold_xla": counter.since(snap),
           "condition_s": condition_s, "exec_s": post.sampling_seconds,
           "compile_s": post.compile_seconds, "n_grad_evals": int(post.n_grad_evals),
           "divergences": int(post.divergences), "dim": int(cm.dim),
           "notes": [f"[{n.pass_name}] {n.message}" for n in cm.graph.notes]}
    out.update(_diagnostics(post.draws, config["params"]))
    if config.get("floor", True):
        from benchmarks import gradfloor

        out["grad_in_loop_s"] = gradfloor.in_loop_seconds(
            cm.lowered.log_density, np.full(cm.dim, 0.1), cm.data)
    return out


def numpyro_mcmc(config: dict) -> dict:
    from benchmarks.worker import numpyro_mcmc, setup

    jax, counter, _ = setup(config)
    import time

    numpyro, model, kwargs, mcmc = numpyro_mcmc(config)
    key = jax.random.PRNGKey(config.get("seed", 0))
    fields = ("num_steps", "diverging")
    snap = counter.snapshot()
    t = time.perf_counter()
    # warmup and run separately, so that warmup leapfrog steps can be counted too
    mcmc.warmup(key, extra_fields=fields, collect_warmup=True, **kwargs)
    warm_steps = int(np.asarray(mcmc.get_extra_fields()["num_steps"]).sum())
    mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=fields, **kwargs)
    draws = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    extra = mcmc.get_extra_fields()
    cold = time.perf_counter() - t
    xla = counter.since(snap)
    out = {"cold_s": cold, "cold_xla": xla, "exec_s": cold - xla["pipeline_s"],
           "compile_s": xla["pipeline_s"],
           "n_grad_evals": warm_steps + int(np.asarray(extra["num_steps"]).sum()),
           "divergences": int(np.asarray(extra["diverging"]).sum()),
           "dim": int(sum(np.prod(v.shape[2:], dtype=int) for v in draws.values())),
           "x64": bool(jax.config.jax_enable_x64)}
    out.update(_diagnostics(draws, config["params"]))
    if config.get("floor", True):
        from jax.flatten_util import ravel_pytree
        from numpyro.infer.util import initialize_model

        from benchmarks import gradfloor

        info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs)
        flat, unravel = ravel_pytree(info.param_info.z)
        potential = info.potential_fn
        out["grad_in_loop_s"] = gradfloor.in_loop_seconds(
            lambda x, data: -potential(unravel(x)), np.full(flat.shape[0], 0.1), None)
    return out


WORKER_MODES = {f.__name__: f for f in (pplc_mcmc, numpyro_mcmc)}


# ---------------------------------------------------------------------------------------
# driver


def _attempt(log, label: str, mode: str, config: dict) -> dict:
    log(f"  passes {label} ...")
    try:
        return run_worker(mode, config)
    except Exception as exc:  # one failed configuration must not end the run
        return {"error": f"{type(exc).__name__}: {str(exc)[-400:]}"}


def run(*, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = 0,
        hier_n: int = 5000, hier_groups: int = 50, hier_k: int = 5,
        numpyro: bool = True,
        chain_method: str = "sequential", log=print) -> dict[str, list[dict]]:
    """{"mcmc": rows (model x system)}."""
    mcmc_rows = []
    with tempfile.TemporaryDirectory(prefix="pplc-bench-") as tmp:
        hier_data = write_hier_logistic_data(Path(tmp) / "hier.json", n=hier_n,
                                             groups=hier_groups, k=hier_k, seed=seed)
        models = [
            ("eight_schools_centered", {"model": str(EIGHT_CENTERED_DIR / "model.ppl")},
             str(EIGHT_CENTERED_DIR / "data.json"), "eight_schools_centered",
             ["mu", "tau", "theta"]),
            (f"hier_logistic_centered_{hier_n}x{hier_k}_G{hier_groups}",
             {"source": HIER_LOGISTIC_SOURCE}, str(hier_data), "hier_logistic_centered",
             ["mu_a", "sigma_a", "a", "beta"]),
        ]
        for name, model, data, np_name, params in models:
            base = {**model, "data": data, "chains": chains, "warmup": warmup,
                    "draws": draws, "seed": seed, "params": params, "x64": True,
                    "chain_method": chain_method}
            configs = [("pplc (passes on)", "pplc_mcmc", base),
                       ("pplc (reparameterize off)", "pplc_mcmc",
                        dict(base, disabled=["reparameterize"]))]
            if numpyro:
                configs.append(("NumPyro as written", "numpyro_mcmc",
                                dict(base, numpyro_model=np_name)))
            for system, mode, cfg in configs:
                r = _attempt(log, f"{name}: {system}", mode, cfg)
                mcmc_rows.append({"model": name, "system": system, **r})
    for r in mcmc_rows:
        if "error" in r:
            continue
        r["ess_per_s"] = r["min_ess_bulk"] / r["exec_s"] if r["exec_s"] > 0 else float("nan")
        g = r["n_grad_evals"]
        r["ess_per_grad"] = r["min_ess_bulk"] / g if g else float("nan")
        if r.get("grad_in_loop_s") and g:
            r["overhead_in_loop"] = r["exec_s"] / (g * r["grad_in_loop_s"])
    return {"mcmc": mcmc_rows}


# ---------------------------------------------------------------------------------------
# report


def mcmc_table(rows: list[dict]) -> str:
    out = ["| model | system | dim | exec s | compile s | grads (warmup incl.) | "
           "in-loop grad µs | exec ÷ (grads × grad) | "
           "min bulk ESS (where) | ESS/s | ESS/grad ×1e3 | divergences | R-hat max |",
           "|---" * 13 + "|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['system']} | error: {r['error'][-120:]} |"
                       + " |" * 10)
            continue
        out.append(
            f"| {r['model']} | {r['system']} | {r['dim']} | {_f(r['exec_s'], 3)} | "
            f"{_f(r['compile_s'])} | {_f(r['n_grad_evals'])} | "
            f"{_f(r['grad_in_loop_s'] * 1e6) if 'grad_in_loop_s' in r else '–'} | "
            f"{_f(r.get('overhead_in_loop'))} | "
            f"{_f(r['min_ess_bulk'], 0)} ({r['min_ess_where']}) | {_f(r['ess_per_s'], 1)} | "
            f"{_f(r['ess_per_grad'] * 1e3)} | {r['divergences']} | {_f(r['rhat_max'], 3)} |")
    return "\n".join(out)


def ratio_lines(rows: list[dict], target: float = 3.0) -> str:
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model and "error" not in r]
        ref = next((r for r in mine if r["system"].startswith("NumPyro")), None)
        if ref is None or not ref["ess_per_s"] > 0:
            continue
        for r in mine:
            if r is ref:
                continue
            ratio = r["ess_per_s"] / ref["ess_per_s"]
            verdict = "meets" if ratio >= target else "misses"
            out.append(f"- {model}, {r['system']} / NumPyro: ESS/s **{ratio:.2f}×** "
                       f"({verdict} the {target:g}× target); ESS/grad "
                       f"{r['ess_per_grad'] / ref['ess_per_grad']:.2f}×; exec "
                       f"{r['exec_s'] / ref['exec_s']:.2f}×")
    return "\n".join(out)


def notes_block(rows: list[dict]) -> str:
    out = []
    for r in rows:
        if r.get("system") == "pplc (passes on)" and "notes" in r:
            out.append(f"- {r['model']}:")
            out += [f"  - {n}" for n in r["notes"]] or ["  - (no pass changed anything)"]
    return "\n".join(out)


def render(machine: dict, settings: dict, results: dict) -> str:
    v = {k[2:]: x for k, x in machine.items() if k.startswith("v_")}
    parts = [
        "# pplc benchmarks: automatic reparameterization, side by side with NumPyro",
        "",
        f"Generated by `python -m benchmarks --only passes` on {machine['date']}.",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory']}, no GPU; "
        f"{machine['os']}; Python {machine['python']}.",
        "Versions: " + ", ".join(f"{k} {x}" for k, x in v.items()) + ".",
        f"Settings: {settings}.",
        "",
        "**Load caveat:** the 2 CPU cores were shared with other jobs while this ran, so every "
        "time (and so ESS/s) is noisy, easily ±30% between runs; one seed per configuration. "
        "ESS/grad, divergences, R-hat and compile counts do not depend on load; "
        "ratios under about 1.3× are within noise.",
        "",
        "Target (the figures decide, not the tests): ESS/s ≥ 3× NumPyro on the models "
        "written centered.",
    ]
    mcmc = results.get("mcmc") or []
    if mcmc:
        parts += [
            "", "## Models written centered: pplc with and without `reparameterize`, and "
            "NumPyro as written", "",
            "float64 in both systems; chains run one after another in both (`sequential`); "
            "same NUTS settings (Stan's warmup, target accept 0.8, max tree depth 10, "
            "uniform(-2, 2) initial points). exec = warmup + sampling, compilation excluded. "
            "min ESS is over every element of the hierarchical parameters, by ArviZ for both "
            "systems; divergences are post-warmup. In-loop grad: one value-and-gradient of "
            "each system's own density inside a compiled loop (`gradfloor`), the cost floor "
            "of one leapfrog step. NumPyro's compile s is every JAX "
            "compile-pipeline event during its run (trace, lowering, XLA).", "",
            mcmc_table(mcmc), "", ratio_lines(mcmc), "",
            "What pplc's passes decided (`cm.graph.notes`, passes on):", "",
            notes_block(mcmc),
        ]
    return "\n".join(parts) + "\n"


def write(output: Path, machine: dict, settings: dict, results: dict) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(machine, settings, results))
    output.with_suffix(".json").write_text(json.dumps(
        {"machine": machine, "settings": settings, **results}, indent=1, default=str))
