"""The model suite: pplc and NumPyro on the same models, data, seeds and run lengths.

Protocol (/work/shared/PERFORMANCE.md): 4 chains x (1000 warmup + 1000 draws); every
(model, system, chain method, seed) in a FRESH process (`python -m benchmarks.worker`), pplc
and NumPyro alternating; float64 in both (pplc always computes in float64, so NumPyro runs
with `jax_enable_x64`); ESS from ArviZ; 3 seeds, medians reported. pplc chooses its chain
method itself ("auto"). NumPyro runs "vectorized" and "sequential" on the first seed, then
only the method with the better ESS/s on the others, and each NumPyro figure is credited
with the better of its two methods.

Per worker (one configuration):
  first run s      process launch -> draws in hand (interpreter, imports, model build,
                   every compilation, warmup, sampling): what a user waits for the first time
  compiled run s   a second run of the same configuration (same seed) in the same process:
                   pplc reuses its compiled programs; NumPyro re-runs `mcmc.run` (which
                   recompiles some programs: PERFORMANCE.md, "re-running recompiles")
  exec s           warmup + sampling without compilation: pplc's `sampling_seconds`;
                   NumPyro: the first run's wall minus every JAX compile-pipeline event
  grads            leapfrog steps over all chains, warmup included (pplc's n_grad_evals;
                   NumPyro: sum of `num_steps` over warmup and sampling)
  min ESS          ArviZ bulk ESS, minimum over every element of the model's parameters
  ESS/s, ESS/grad  min ESS / exec, min ESS / grads
  ms per grad      exec / grads: what one gradient costs inside the sampler
  bare grad        one value-and-gradient of the system's own density inside a compiled
                   loop (`gradfloor`), the floor a sampler compiled end to end can reach
  overhead         exec / (grads x bare grad)
  peak RSS         `ru_maxrss` of the worker process at the end of its runs

NumPyro's warmup gradients are counted by a third, untimed `mcmc.warmup(collect_warmup=True)`
with the same key, whose trajectory is the first run's warmup.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks import best_peer, datasets, pymc_models
from benchmarks._common import min_bulk_ess, run_worker

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
CONFORMANCE = Path("/work/shared/conformance")
MODELS_DIR = Path(__file__).resolve().parent / "models"

NUMPYRO_METHODS = ("vectorized", "sequential")
PEERS = ("BlackJAX", "nutpie")
PEER_MODES = {"BlackJAX": "suite_blackjax", "nutpie": "suite_nutpie"}


@dataclass(frozen=True)
class ModelSpec:
    """One benchmark model: its .ppl, how to make its data, its NumPyro twin."""

    name: str
    ppl: Path
    numpyro: str                                   # key of numpyro_models.MODELS
    params: tuple[str, ...]                        # ESS over every element of these
    make_data: Callable[[Path, bool], Path]        # (folder, quick) -> data.json
    centered: bool = False                         # held to the >= 3x ESS/s target
    perturb: tuple[str, ...] = ()                  # real arrays varied for warm-cache runs
    note: str = ""


def _shipped(path: Path) -> Callable[[Path, bool], Path]:
    return lambda folder, quick: path


def _linreg(folder: Path, quick: bool) -> Path:
    n, k = (50, 3) if quick else (1000, 10)
    return datasets.write_linreg_data(folder / "linreg.json", n=n, k=k)


def _hier(folder: Path, quick: bool) -> Path:
    n, g = (200, 10) if quick else (5000, 50)
    return datasets.write_hier_logistic_data(folder / "hier.json", n=n, groups=g, k=5)


def _gauss(folder: Path, quick: bool) -> Path:
    return datasets.write_corr_gaussian_data(folder / "gauss.json", dim=10 if quick else 100)


def _sv(folder: Path, quick: bool) -> Path:
    return datasets.write_stochastic_volatility_data(folder / "sv.json", t=50 if quick else 500)


SPECS: tuple[ModelSpec, ...] = (
    ModelSpec("eight_schools_centered", EXAMPLES / "eight_schools" / "model.ppl",
              "eight_schools_centered", ("mu", "tau", "theta"),
              _shipped(EXAMPLES / "eight_schools" / "data.json"), centered=True,
              perturb=("y",), note="as in LANGUAGE.md (examples/eight_schools)"),
    ModelSpec("eight_schools_noncentered",
              CONFORMANCE / "eight_schools-eight_schools_noncentered" / "model.ppl",
              "eight_schools_noncentered", ("theta_trans", "mu", "tau", "theta"),
              _shipped(CONFORMANCE / "eight_schools-eight_schools_noncentered" / "data.json"),
              perturb=("y",)),
    ModelSpec("linear_regression_1000x10", EXAMPLES / "linear_regression" / "model.ppl",
              "linear_regression", ("alpha", "beta", "sigma"), _linreg, perturb=("y",)),
    ModelSpec("hier_logistic_5000_G50", EXAMPLES / "hierarchical_logistic" / "model.ppl",
              "hier_logistic_centered", ("mu_a", "sigma_a", "a", "beta"), _hier,
              centered=True, note="centered as written, 5 covariates"),
    ModelSpec("corr_gaussian_100", MODELS_DIR / "corr_gaussian.ppl", "corr_gaussian", ("x",),
              _gauss, note="random rotation, eigen-sd 0.1..10"),
    ModelSpec("stochastic_volatility_500",
              EXAMPLES / "stochastic_volatility" / "model_noncentered.ppl",
              "stochastic_volatility_noncentered", ("mu", "phi", "sigma", "h_std", "h"), _sv,
              note="noncentered, as PERFORMANCE.md (g)"),
    ModelSpec("supernova_union21", EXAMPLES / "supernova" / "model.ppl", "supernova",
              ("H0", "Om"), _shipped(EXAMPLES / "supernova" / "data.json"), perturb=("mu",)),
    ModelSpec("gaussian_mixture_3", EXAMPLES / "gaussian_mixture" / "model.ppl",
              "gaussian_mixture", ("w", "mu", "sigma"),
              _shipped(EXAMPLES / "gaussian_mixture" / "data.json"),
              note="assignments marginalized; NumPyro enumerates them"),
    ModelSpec("damped_oscillator_ode", EXAMPLES / "damped_oscillator" / "model.ppl",
              "damped_oscillator", ("zeta", "w", "sigma"),
              _shipped(EXAMPLES / "damped_oscillator" / "data.json"),
              note="Tsit5, rtol = atol = 1e-6 in both"),
)
SPEC_BY_NAME = {s.name: s for s in SPECS}


# ---------------------------------------------------------------------------------------
# worker modes (run inside `python -m benchmarks.worker`)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _ess(draws: dict[str, Any], params: list[str]) -> dict[str, Any]:
    ess, where = min_bulk_ess({k: np.asarray(draws[k], float) for k in params})
    return {"min_ess_bulk": ess, "min_ess_where": where}


def suite_pplc(config: dict) -> dict:
    """Cold run, compiled re-run, ESS, peak RSS and (optionally) the bare gradient."""
    from benchmarks.worker import clock, setup

    import time

    jax, counter, _ = setup(config)
    import pplc

    cm = pplc.compile(config["model"]).condition(config["data"])
    kw = dict(chains=config["chains"], warmup=config["warmup"], draws=config["draws"],
              seed=config["seed"], chain_method=config.get("chain_method", "auto"))
    post = cm.sample(**kw)
    draws = dict(post.draws)
    out = {"first_draws_at_s": clock(), "first_xla": counter.since(0),
           "exec_s": post.sampling_seconds, "compile_s": post.compile_seconds,
           "n_grad_evals": int(post.n_grad_evals), "divergences": int(post.divergences),
           "dim": int(cm.dim), "chain_method": _pplc_method(kw["chain_method"], kw["chains"])}
    snap = counter.snapshot()
    t = time.perf_counter()
    cm.sample(**kw)
    out["compiled_run_s"] = time.perf_counter() - t
    out["compiled_run_xla"] = counter.since(snap)
    out["peak_rss_mb"] = _peak_rss_mb()
    out.update(_ess(draws, config["params"]))
    if config.get("floor"):
        from benchmarks import gradfloor

        out["grad_in_loop_s"] = gradfloor.calibrated_in_loop_seconds(
            cm.lowered.log_density, np.full(cm.dim, 0.1), cm.data)
    return out


def _pplc_method(method: str, chains: int) -> str:
    """The chain method "auto" resolves to on this machine (recorded, not chosen here)."""
    if method != "auto":
        return method
    try:
        from pplc.inference.nuts_programs import auto_method

        return f"auto ({auto_method(chains)})"
    except (ImportError, TypeError):
        return "auto"


def suite_numpyro(config: dict) -> dict:
    """The same in NumPyro: run, re-run, then an untimed warmup to count its gradients."""
    from benchmarks.worker import clock, numpyro_mcmc, setup

    import time

    jax, counter, _ = setup(dict(config, x64=True))
    numpyro, model, kwargs, mcmc = numpyro_mcmc(config)
    key = jax.random.PRNGKey(config["seed"])
    fields = ("num_steps", "diverging")
    snap = counter.snapshot()
    t = time.perf_counter()
    mcmc.run(key, extra_fields=fields, **kwargs)
    draws = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    wall = time.perf_counter() - t
    out = {"first_draws_at_s": clock(), "first_xla": counter.since(0)}
    xla = counter.since(snap)
    extra = mcmc.get_extra_fields()
    sampling_steps = int(np.asarray(extra["num_steps"]).sum())
    out.update(exec_s=wall - xla["pipeline_s"], compile_s=xla["pipeline_s"],
               divergences=int(np.asarray(extra["diverging"]).sum()),
               chain_method=config["chain_method"], x64=bool(jax.config.jax_enable_x64))
    snap = counter.snapshot()
    t = time.perf_counter()
    mcmc.run(key, extra_fields=fields, **kwargs)
    jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
    out["compiled_run_s"] = time.perf_counter() - t
    out["compiled_run_xla"] = counter.since(snap)
    out["peak_rss_mb"] = _peak_rss_mb()
    mcmc.warmup(key, extra_fields=("num_steps",), collect_warmup=True, **kwargs)
    out["n_grad_evals"] = int(np.asarray(mcmc.get_extra_fields()["num_steps"]).sum()) \
        + sampling_steps
    out.update(_ess(draws, config["params"]))
    if config.get("floor"):
        logdensity, x0 = _numpyro_flat_logdensity(jax, model, kwargs)
        from benchmarks import gradfloor

        out["dim"] = int(x0.shape[0])
        out["grad_in_loop_s"] = gradfloor.calibrated_in_loop_seconds(logdensity, x0, None)
    return out


def _numpyro_flat_logdensity(jax, model, kwargs):
    """NumPyro's log density (minus its potential) on a flat unconstrained vector."""
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs)
    flat, unravel = ravel_pytree(info.param_info.z)
    potential = info.potential_fn
    return (lambda x, data: -potential(unravel(x))), np.full(flat.shape[0], 0.1)


def density_check(config: dict) -> dict:
    """Do pplc and NumPyro define the same density? Both log densities, on the constrained
    scale and without Jacobians, at a few random points (pplc's uniform(-2, 2) starting
    points, constrained); compared as differences from the first point, which cancels
    normalizing constants either system may drop. Returns {model: max |difference|}."""
    from benchmarks.worker import setup

    jax, _, _ = setup(dict(config, x64=True))
    import pplc

    out = {}
    for name, paths in config["models"].items():
        spec = SPEC_BY_NAME[name]
        try:
            out[name] = _density_gap(jax, pplc, spec, paths["data"], config.get("points", 4))
        except Exception as exc:  # one model's failure must not hide the others
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}
    return {"models": out}


def _density_gap(jax, pplc, spec: ModelSpec, data_path: str, points: int) -> dict:
    """The model as written (pplc's reparameterization off: a change of variables would
    add its own Jacobian); both densities jitted, since op-by-op evaluation of an ODE solve
    or a 5000-row likelihood would take minutes."""
    from numpyro.infer.util import initialize_model

    from benchmarks.numpyro_models import model_and_kwargs

    cm = pplc.compile(spec.ppl).condition(data_path, disabled_passes=("reparameterize",))
    model, kwargs = model_and_kwargs(spec.numpyro, json.loads(Path(data_path).read_text()))
    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs)
    latent = list(info.param_info.z)
    ours_fn = jax.jit(cm.log_density)
    theirs_fn = jax.jit(lambda p: _numpyro_constrained_log_density(model, kwargs, info, p))
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for _ in range(points):
        values = cm.constrain(rng.uniform(-2, 2, cm.dim))
        params = {k: jax.numpy.asarray(values[k]) for k in latent}
        ours.append(float(ours_fn(params)))
        theirs.append(float(theirs_fn(params)))
    d_ours = np.array(ours) - ours[0]
    d_theirs = np.array(theirs) - theirs[0]
    return {"max_abs_diff": float(np.max(np.abs(d_ours - d_theirs))),
            "spread": float(np.max(np.abs(d_ours))), "points": points}


def _numpyro_constrained_log_density(model, kwargs, info, params):
    """-potential(u) minus NumPyro's own log|Jacobian| at u = its unconstrain(params):
    the constrained log density, with discrete sites enumerated as NUTS does."""
    import jax.numpy as jnp
    from numpyro.distributions.transforms import biject_to
    from numpyro.handlers import seed, substitute, trace

    tr = trace(seed(substitute(model, data=params), 0)).get_trace(**kwargs)
    unconstrained, log_jac = {}, 0.0
    for name, value in params.items():
        transform = biject_to(tr[name]["fn"].support)
        u = transform.inv(value)
        unconstrained[name] = u
        log_jac = log_jac + jnp.sum(transform.log_abs_det_jacobian(u, value))
    return -info.potential_fn(unconstrained) - log_jac


# ---------------------------------------------------------------------------------------
# driver


@dataclass
class Settings:
    chains: int = 4
    warmup: int = 1000
    draws: int = 1000
    seeds: tuple[int, ...] = (0, 1, 2)
    # models whose later seeds are skipped to keep the run inside its time budget
    single_seed: tuple[str, ...] = ()
    numpyro: bool = True
    # NumPyro's chain methods on the first seed (the better one runs the later seeds);
    # `--quick` runs one: both are the same worker mode, differing in one option
    numpyro_methods: tuple[str, ...] = NUMPYRO_METHODS
    # the other peers (benchmarks/peers.py), each run right after pplc on every seed
    peers: tuple[str, ...] = PEERS
    density_check: bool = True     # the twins' log densities against pplc's, first
    models: tuple[str, ...] = field(default_factory=lambda: tuple(s.name for s in SPECS))


def _attempt(log, label: str, mode: str, config: dict, timeout: float = 1800) -> dict:
    log(f"  {label} ...")
    try:
        return run_worker(mode, config, timeout=timeout)
    except Exception as exc:  # one failed configuration must not end the run
        return {"error": f"{type(exc).__name__}: {str(exc)[-600:]}"}


def write_data(folder: Path, quick: bool, models: tuple[str, ...]) -> dict[str, dict]:
    """Each model's data file (generated ones written into `folder`)."""
    return {name: {"model": str(SPEC_BY_NAME[name].ppl),
                   "data": str(SPEC_BY_NAME[name].make_data(folder, quick))}
            for name in models}


def run(settings: Settings, folder: Path, quick: bool = False, log=print) -> dict:
    """{"rows": one per worker, "density" / "density_pymc": the density checks of the
    NumPyro and PyMC twins against pplc, "data": model -> paths}."""
    paths = write_data(folder, quick, settings.models)
    density = {}
    if settings.numpyro and settings.density_check:
        log("  density check (pplc vs NumPyro log densities) ...")
        try:
            density = run_worker("density_check", {"models": paths})["models"]
        except Exception as exc:
            density = {"error": f"{type(exc).__name__}: {str(exc)[-400:]}"}
    if "nutpie" in settings.peers and settings.density_check:
        log("  density check (pplc vs the PyMC twins nutpie samples) ...")
        try:
            density_pymc = run_worker("pymc_density_check", {"models": paths})["models"]
        except Exception as exc:
            density_pymc = {"error": f"{type(exc).__name__}: {str(exc)[-400:]}"}
    else:
        density_pymc = {}
    rows = []
    for name in settings.models:
        rows += _run_model(SPEC_BY_NAME[name], paths[name]["data"], settings, log)
    return {"rows": rows, "density": density, "density_pymc": density_pymc, "data": paths}


def _run_model(spec: ModelSpec, data: str, settings: Settings, log) -> list[dict]:
    base = {"model": str(spec.ppl), "data": data, "chains": settings.chains,
            "warmup": settings.warmup, "draws": settings.draws, "params": list(spec.params),
            "numpyro_model": spec.numpyro}
    seeds = settings.seeds[:1] if spec.name in settings.single_seed else settings.seeds
    rows, methods = [], settings.numpyro_methods
    for i, seed in enumerate(seeds):
        cfg = dict(base, seed=seed, floor=i == 0)
        r = _attempt(log, f"{spec.name} seed {seed}: pplc", "suite_pplc", cfg)
        rows.append(_finish({"model": spec.name, "system": "pplc", "seed": seed, **r}))
        rows += _run_peers(spec, cfg, settings, log)
        if not settings.numpyro:
            continue
        for method in methods:
            r = _attempt(log, f"{spec.name} seed {seed}: NumPyro {method}", "suite_numpyro",
                         dict(cfg, chain_method=method, floor=i == 0 and method == methods[0]))
            rows.append(_finish({"model": spec.name, "system": f"NumPyro {method}",
                                 "seed": seed, **r}))
        if i == 0:
            methods = (_better_numpyro_method(rows),)
    return rows


def _run_peers(spec: ModelSpec, cfg: dict, settings: Settings, log) -> list[dict]:
    """BlackJAX and nutpie on one seed; a peer that cannot run the model gets a row saying
    why ("skipped"), so the report shows the gap instead of hiding it."""
    rows = []
    for peer in settings.peers:
        row = {"model": spec.name, "system": peer, "seed": cfg["seed"]}
        if peer == "nutpie" and spec.numpyro in pymc_models.NO_TWIN:
            rows.append(dict(row, skipped=pymc_models.NO_TWIN[spec.numpyro]))
            continue
        r = _attempt(log, f"{spec.name} seed {cfg['seed']}: {peer}", PEER_MODES[peer], cfg)
        rows.append(_finish(dict(row, **r)))
    return rows


def _better_numpyro_method(rows: list[dict]) -> str:
    scored = [(r.get("ess_per_s", -1.0), r["system"].split()[1]) for r in rows
              if r["system"].startswith("NumPyro") and "error" not in r]
    scored = [(s if s == s else -1.0, m) for s, m in scored]  # NaN ranks last
    return max(scored)[1] if scored else NUMPYRO_METHODS[0]


def _finish(r: dict) -> dict:
    """Derived per-run figures (first run from launch, ESS/s, ESS/grad, ms per grad)."""
    if "error" in r:
        return r
    r["first_run_s"] = r["first_draws_at_s"] + (r.get("interpreter_s") or 0.0)
    g, ess, exec_s = r["n_grad_evals"], r["min_ess_bulk"], r["exec_s"]
    r["ess_per_s"] = ess / exec_s if exec_s > 0 else math.nan
    r["ess_per_grad"] = ess / g if g else math.nan
    r["ms_per_grad"] = exec_s / g * 1e3 if g else math.nan
    return r


# ---------------------------------------------------------------------------------------
# aggregation: medians over seeds, NumPyro's better method, ratios

FIGURES = ("first_run_s", "compiled_run_s", "ess_per_s", "ess_per_grad", "ms_per_grad",
           "exec_s", "overhead", "divergences", "peak_rss_mb", "min_ess_bulk", "n_grad_evals",
           "compile_s")
HIGHER_IS_BETTER = {"ess_per_s", "ess_per_grad", "min_ess_bulk"}


def _median(values: list[float]) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else math.nan


def summarize(rows: list[dict]) -> list[dict]:
    """One entry per model: {"model", "pplc": figures, "numpyro": figures, "ratios"}.

    Figures are medians over seeds. The bare gradient (measured once per model and system)
    sets every seed's overhead. NumPyro's entry takes, figure by figure, the better of its
    two chain methods' medians (its "method" is the one with the better ESS/s)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model and "error" not in r
                and "skipped" not in r]
        entry = {"model": model, "errors": [f"{r['system']} seed {r['seed']}: {r['error']}"
                                            for r in rows if r["model"] == model and "error" in r]}
        entry["pplc"] = _system_figures([r for r in mine if r["system"] == "pplc"])
        numpyro_grad = _bare_grad([r for r in mine if r["system"].startswith("NumPyro")])
        per_method = {m: _system_figures([r for r in mine if r["system"] == f"NumPyro {m}"],
                                         numpyro_grad) for m in NUMPYRO_METHODS}
        entry["numpyro_methods"] = per_method
        entry["numpyro"] = _credit_better(per_method)
        entry["ratios"] = _ratios(entry["pplc"], entry["numpyro"])
        entry["peers"] = {"NumPyro": entry["numpyro"], **{
            p: _system_figures([r for r in mine if r["system"] == p]) for p in PEERS}}
        entry["skipped"] = {r["system"]: r["skipped"] for r in rows
                            if r["model"] == model and "skipped" in r}
        entry["best_peer"] = best_peer.compare(entry)
        out.append(entry)
    return out


def _bare_grad(runs: list[dict]) -> float | None:
    """The one bare-gradient measurement among a system's runs (first seed only)."""
    return next((r["grad_in_loop_s"] for r in runs if r.get("grad_in_loop_s")), None)


def _system_figures(runs: list[dict], grad: float | None = None) -> dict:
    if not runs:
        return {}
    grad = grad or _bare_grad(runs)
    for r in runs:
        if grad and r["n_grad_evals"]:
            r["overhead"] = r["exec_s"] / (r["n_grad_evals"] * grad)
    figures = {k: _median([r.get(k) for r in runs]) for k in FIGURES}
    figures.update(seeds=len(runs), grad_in_loop_s=grad, dim=runs[0].get("dim"),
                   chain_method=runs[0].get("chain_method"),
                   first_xla=runs[0].get("first_xla"),
                   compiled_run_xla=runs[0].get("compiled_run_xla"),
                   min_ess_where=runs[0].get("min_ess_where"),
                   divergences_all=[r["divergences"] for r in runs])
    return figures


def _credit_better(per_method: dict[str, dict]) -> dict:
    present = {m: f for m, f in per_method.items() if f}
    if not present:
        return {}
    best_method = max(present, key=lambda m: _nan_low(present[m].get("ess_per_s")))
    credited = dict(present[best_method], method=best_method)
    for k in FIGURES:
        values = [f[k] for f in present.values() if not math.isnan(f.get(k, math.nan))]
        if values:
            credited[k] = max(values) if k in HIGHER_IS_BETTER else min(values)
    credited["grad_in_loop_s"] = next((f["grad_in_loop_s"] for f in present.values()
                                       if f.get("grad_in_loop_s")), None)
    return credited


def _nan_low(x) -> float:
    return -math.inf if x is None or math.isnan(x) else x


RATIO_FIGURES = ("ess_per_s", "first_run_s", "compiled_run_s", "ess_per_grad", "ms_per_grad",
                 "peak_rss_mb", "overhead", "exec_s")


def _ratios(pplc: dict, numpyro: dict) -> dict:
    out = {}
    for k in RATIO_FIGURES:
        a, b = pplc.get(k, math.nan), numpyro.get(k, math.nan)
        out[k] = a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan
    ga, gb = pplc.get("grad_in_loop_s"), numpyro.get("grad_in_loop_s")
    out["bare_grad"] = ga / gb if ga and gb else math.nan
    return out
