"""The other peers in the suite: BlackJAX and nutpie, each in a fresh worker process.

* **BlackJAX** (`suite_blackjax`): NUTS with Stan's window adaptation (target accept 0.8,
  max tree depth 10, diagonal metric) on NumPyro's own flat log density of the model's
  twin (benchmarks/numpyro_models.py), so the density is the one the density check
  verified and the row measures BlackJAX's sampler. The 4 chains run vectorized (`vmap`
  over warmup and sampling, as PERFORMANCE.md measured it), from uniform(-2, 2) points on
  the unconstrained scale. The whole run (warmup, sampling, constraining the draws) is one
  program compiled ahead of time, so compile and exec are timed apart exactly.
* **nutpie** (`suite_nutpie`): the PyMC twin (benchmarks/pymc_models.py) compiled with
  nutpie's numba backend and sampled with nutpie's defaults (its diagonal gradient-based
  adaptation, one thread per chain, `cores` = the machine's cores). Its exec is the second
  `nutpie.sample` with the same seed: that call compiles nothing and, as the worker
  checks, draws exactly what the first did.

Both return the figures `suite_numpyro` returns (benchmarks/suite.py), so the suite
summarizes all peers alike. float64 throughout (JAX with `jax_enable_x64`; PyTensor's
floatX is float64 by default).
"""

from __future__ import annotations

import json
import time

import numpy as np


def _draws_ess(draws: dict, params: list[str]) -> dict:
    from benchmarks._common import min_bulk_ess

    ess, where = min_bulk_ess({k: np.asarray(draws[k], float) for k in params})
    return {"min_ess_bulk": ess, "min_ess_where": where}


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


# ---------------------------------------------------------------------------------------
# BlackJAX


def blackjax_program(jax, logdensity, constrain, chains: int, warmup: int, draws: int):
    """run(key, init (chains, dim)) -> (constrained draws {name: (chains, draws, ...)},
    gradients per chain (warmup included), divergences per chain after warmup and during
    it), vectorized over chains."""
    import blackjax

    jnp = jax.numpy

    def one_warmup(key, x):
        adapt = blackjax.window_adaptation(blackjax.nuts, logdensity,
                                           target_acceptance_rate=0.8)
        (state, params), info = adapt.run(key, x, num_steps=warmup)
        return (state, params, info.info.num_integration_steps.sum(),
                info.info.is_divergent.sum())

    def step(states_params, key):
        states, params = states_params

        def one(k, s, p):
            return blackjax.nuts(logdensity, **p).step(k, s)

        states, info = jax.vmap(one)(jax.random.split(key, chains), states, params)
        return (states, params), (states.position, info.num_integration_steps,
                                  info.is_divergent)

    def run(key, init):
        warm_key, draw_key = jax.random.split(key)
        states, params, w_steps, w_div = jax.vmap(one_warmup)(
            jax.random.split(warm_key, chains), init)
        _, (pos, steps, div) = jax.lax.scan(step, (states, params),
                                            jax.random.split(draw_key, draws))
        pos = jnp.swapaxes(pos, 0, 1)                                  # (chains, draws, dim)
        values = jax.vmap(jax.vmap(constrain))(pos)
        return values, w_steps + steps.sum(0), div.sum(0), w_div

    return run


def _numpyro_density(jax, config: dict):
    """NumPyro's flat log density and a constrain function (deterministic sites included)."""
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    from benchmarks.numpyro_models import model_and_kwargs

    data = json.loads(open(config["data"]).read())
    model, kwargs = model_and_kwargs(config["numpyro_model"], data)
    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs)
    flat, unravel = ravel_pytree(info.param_info.z)
    potential, post = info.potential_fn, info.postprocess_fn

    def logdensity(x):
        return -potential(unravel(x))

    def constrain(x):
        return post(unravel(x))

    return logdensity, constrain, int(flat.shape[0])


def suite_blackjax(config: dict) -> dict:
    """Cold run (AOT compile, then exec), compiled re-run, ESS, peak RSS, bare gradient."""
    from benchmarks.worker import clock, setup

    jax, counter, _ = setup(dict(config, x64=True))
    import blackjax  # noqa: F401  (its import is part of the cold run)

    chains = config["chains"]
    logdensity, constrain, dim = _numpyro_density(jax, config)
    run = blackjax_program(jax, logdensity, constrain, chains, config["warmup"],
                           config["draws"])
    rng = np.random.default_rng(config["seed"])
    init = jax.numpy.asarray(rng.uniform(-2.0, 2.0, (chains, dim)))
    key = jax.random.PRNGKey(config["seed"])
    t = time.perf_counter()
    program = jax.jit(run).lower(key, init).compile()
    compile_wall = time.perf_counter() - t
    t = time.perf_counter()
    values, grads, div, warm_div = jax.block_until_ready(program(key, init))
    exec_s = time.perf_counter() - t
    draws = {k: np.asarray(v) for k, v in values.items()}
    out = {"first_draws_at_s": clock(), "first_xla": counter.since(0), "exec_s": exec_s,
           "compile_s": compile_wall, "n_grad_evals": int(np.asarray(grads).sum()),
           "divergences": int(np.asarray(div).sum()),
           "warmup_divergences": int(np.asarray(warm_div).sum()), "dim": dim,
           "chain_method": "vectorized", "x64": bool(jax.config.jax_enable_x64)}
    snap = counter.snapshot()
    t = time.perf_counter()
    jax.block_until_ready(program(key, init))
    out["compiled_run_s"] = time.perf_counter() - t
    out["compiled_run_xla"] = counter.since(snap)
    out["peak_rss_mb"] = _peak_rss_mb()
    out.update(_draws_ess(draws, config["params"]))
    if config.get("floor"):
        from benchmarks import gradfloor

        out["grad_in_loop_s"] = gradfloor.calibrated_in_loop_seconds(
            lambda x, _: logdensity(x), np.full(dim, 0.1), None)
    return out


# ---------------------------------------------------------------------------------------
# nutpie


def suite_nutpie(config: dict) -> dict:
    """Import, build the PyMC model, compile (numba), sample; sample again for exec."""
    from benchmarks.worker import clock

    t = time.perf_counter()
    import nutpie

    from benchmarks import pymc_models

    import_s = time.perf_counter() - t
    data = json.loads(open(config["data"]).read())
    t = time.perf_counter()
    model = pymc_models.build(config["numpyro_model"], data)
    compiled = nutpie.compile_pymc_model(model)
    compile_s = time.perf_counter() - t
    kw = dict(draws=config["draws"], tune=config["warmup"], chains=config["chains"],
              seed=config["seed"], progress_bar=False, save_warmup=True)
    t = time.perf_counter()
    trace = nutpie.sample(compiled, **kw)
    first_sample_s = time.perf_counter() - t
    draws = {k: np.asarray(trace.posterior[k]) for k in config["params"]}
    out = {"first_draws_at_s": clock(), "import_s": import_s, "compile_s": compile_s,
           "first_sample_s": first_sample_s, "chain_method": "threads (nutpie)",
           "dim": int(sum(np.size(v) for v in model.initial_point().values()))}
    stats, warm = trace.sample_stats, trace.warmup_sample_stats
    out["n_grad_evals"] = int(stats.n_steps.sum()) + int(warm.n_steps.sum())
    # as for pplc and NumPyro, divergences after warmup; warmup's apart
    out["divergences"] = int(stats.diverging.sum())
    out["warmup_divergences"] = int(warm.diverging.sum())
    t = time.perf_counter()
    again = nutpie.sample(compiled, **kw)
    out["compiled_run_s"] = time.perf_counter() - t
    out["exec_s"] = out["compiled_run_s"]
    out["repeat_identical"] = all(
        np.array_equal(np.asarray(again.posterior[k]), draws[k]) for k in config["params"])
    out["peak_rss_mb"] = _peak_rss_mb()
    out.update(_draws_ess(draws, config["params"]))
    return out


# ---------------------------------------------------------------------------------------
# the PyMC twins' densities against pplc's


def pymc_density_check(config: dict) -> dict:
    """Does each PyMC twin define pplc's density? As `suite.density_check` does for the
    NumPyro twins: both log densities on the constrained scale without Jacobians, at pplc's
    uniform(-2, 2) points constrained, compared as differences from the first point."""
    from benchmarks.suite import SPEC_BY_NAME
    from benchmarks.worker import setup

    jax, _, _ = setup(dict(config, x64=True))
    import pplc

    from benchmarks import pymc_models

    out = {}
    for name, paths in config["models"].items():
        spec = SPEC_BY_NAME[name]
        if spec.numpyro in pymc_models.NO_TWIN:
            out[name] = {"skipped": pymc_models.NO_TWIN[spec.numpyro]}
            continue
        try:
            out[name] = _pymc_gap(jax, pplc, pymc_models, spec, paths["data"],
                                  config.get("points", 4))
        except Exception as exc:  # one model's failure must not hide the others
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}
    return {"models": out}


def _pymc_gap(jax, pplc, pymc_models, spec, data_path: str, points: int) -> dict:
    cm = pplc.compile(spec.ppl).condition(data_path, disabled_passes=("reparameterize",))
    model = pymc_models.build(spec.numpyro, json.loads(open(data_path).read()))
    theirs_fn = model.compile_logp(jacobian=False)
    ours_fn = jax.jit(cm.log_density)
    rvs = model.free_RVs
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for _ in range(points):
        values = cm.constrain(rng.uniform(-2, 2, cm.dim))
        point = {}
        for rv in rvs:
            value = np.asarray(values[rv.name], float)
            transform = model.rvs_to_transforms.get(rv)
            if transform is not None:
                value = transform.forward(value, *rv.owner.inputs).eval()
            point[model.rvs_to_values[rv].name] = value
        ours.append(float(ours_fn({rv.name: jax.numpy.asarray(values[rv.name])
                                   for rv in rvs})))
        theirs.append(float(theirs_fn(point)))
    d_ours, d_theirs = np.array(ours) - ours[0], np.array(theirs) - theirs[0]
    return {"max_abs_diff": float(np.max(np.abs(d_ours - d_theirs))),
            "spread": float(np.max(np.abs(d_ours))), "points": points}


WORKER_MODES = {f.__name__: f for f in (suite_blackjax, suite_nutpie, pymc_density_check)}
