"""One benchmark configuration in a fresh process: `python -m benchmarks.worker MODE JSON`.

Prints exactly one JSON line (the last line of stdout starting with "{"). Times are
`time.perf_counter()` differences inside the process; `interpreter_s` is the time from the
driver's launch of the process to this module's first line (Python start-up plus
`import benchmarks`). The compile counter is registered right after `import jax`, before
pplc or NumPyro is imported, so it sees every XLA compilation either of them triggers.

Modes:
  pplc_api        the public API, as a user runs it: import, compile, condition, sample,
                  then a second `sample` with a new seed (must compile nothing).
  pplc_breakdown  the same work split where the time goes: import, parse+check,
                  condition (graph, passes, lowering), initial points (their compile
                  included), sampler compile, warmup+sampling, constraining the draws.
                  Uses pplc internals (initial_positions, sample_nuts).
  numpyro_run     the same model in NumPyro: MCMC(NUTS).run twice (second with a new seed).
  suite_pplc, suite_numpyro, density_check
                  defined in `benchmarks.suite` (the model suite, side by side).
  suite_blackjax, suite_nutpie
                  defined in `benchmarks.peers` (the suite's other peers).
  pplc_scaling, numpyro_scaling
                  defined in `benchmarks.scaling` (cost against the data size N).
  pplc_mcmc, numpyro_mcmc
                  defined in `benchmarks.passes` (automatic reparameterization).
"""

import time

_T0 = time.perf_counter()
_WALL0 = time.time()

import json  # noqa: E402
import sys  # noqa: E402


def clock() -> float:
    return time.perf_counter() - _T0


def setup(config: dict) -> tuple:
    """Import JAX, register the compile counter; returns (jax, counter, import seconds)."""
    t = time.perf_counter()
    import jax

    if config.get("x64"):
        jax.config.update("jax_enable_x64", True)
    from benchmarks._common import CompileCounter

    counter = CompileCounter()
    return jax, counter, time.perf_counter() - t


def pplc_api(config: dict) -> dict:
    jax, counter, t_jax = setup(config)
    out = {"import_jax_s": t_jax}
    t = time.perf_counter()
    import pplc

    out["import_pplc_s"] = time.perf_counter() - t
    snap = counter.snapshot()
    t = time.perf_counter()
    model = pplc.compile(config["model"])
    cm = model.condition(config["data"])
    out["compile_condition_s"] = time.perf_counter() - t
    out["compile_condition_xla"] = counter.since(snap)
    kw = dict(chains=config["chains"], warmup=config["warmup"], draws=config["draws"],
              chain_method=config.get("chain_method", "auto"))
    snap = counter.snapshot()
    t = time.perf_counter()
    posterior = cm.sample(seed=config.get("seed", 0), **kw)
    first = {name: v[:, 0] for name, v in posterior.draws.items()}  # the draws in hand
    out["sample_s"] = time.perf_counter() - t
    out["sample_xla"] = counter.since(snap)
    out["first_draw_at_s"] = clock()
    out["pplc_compile_seconds"] = posterior.compile_seconds
    out["pplc_sampling_seconds"] = posterior.sampling_seconds
    out["n_grad_evals"] = posterior.n_grad_evals
    out["divergences"] = posterior.divergences
    out["total_xla"] = counter.since(0)
    assert all(v.size for v in first.values())
    snap = counter.snapshot()
    t = time.perf_counter()
    again = cm.sample(seed=config.get("seed", 0) + 1, **kw)
    out["second_sample_s"] = time.perf_counter() - t
    out["second_xla"] = counter.since(snap)
    out["second_sampling_seconds"] = again.sampling_seconds
    return out


def pplc_breakdown(config: dict) -> dict:
    jax, counter, t_jax = setup(config)
    out = {"import_jax_s": t_jax}

    def phase(name, fn):
        snap = counter.snapshot()
        t = time.perf_counter()
        value = fn()
        out[name + "_s"] = time.perf_counter() - t
        out[name + "_xla"] = counter.since(snap)
        return value

    pplc = phase("import_pplc", lambda: __import__("pplc"))
    from pplc.inference.initialize import initial_positions
    from pplc.inference.mcmc import sample_nuts

    model = phase("parse_check", lambda: pplc.compile(config["model"]))
    cm = phase("condition_lower", lambda: model.condition(config["data"]))
    key = jax.random.PRNGKey(config.get("seed", 0))
    init_key, run_key = jax.random.split(key)
    chains = config["chains"]
    log_density = cm.lowered.log_density   # one object: the compiled programs' key
    init = phase("init_points", lambda: initial_positions(
        log_density, cm.data, cm.dim, chains, init_key))
    result = phase("sampler", lambda: sample_nuts(
        log_density, cm.data, init, run_key, num_warmup=config["warmup"],
        num_samples=config["draws"], chain_method=config.get("chain_method", "auto")))
    out["sampler_compile_s"] = result.compile_seconds
    out["warmup_s"] = result.warmup_seconds
    out["sampling_s"] = result.sampling_seconds
    phase("constrain", lambda: cm.constrain_draws(result.positions))
    out["first_draw_at_s"] = clock()
    out["total_xla"] = counter.since(0)
    return out


def numpyro_mcmc(config: dict):
    import numpyro
    from numpyro.infer import MCMC, NUTS

    from benchmarks.numpyro_models import model_and_kwargs

    data = json.loads(open(config["data"]).read())
    model, kwargs = model_and_kwargs(config["numpyro_model"], data)
    mcmc = MCMC(NUTS(model), num_warmup=config["warmup"], num_samples=config["draws"],
                num_chains=config["chains"], chain_method=config["chain_method"],
                progress_bar=False)
    return numpyro, model, kwargs, mcmc


def numpyro_run(config: dict) -> dict:
    jax, counter, t_jax = setup(config)
    out = {"import_jax_s": t_jax}
    t = time.perf_counter()
    import numpy as np

    numpyro, model, kwargs, mcmc = numpyro_mcmc(config)
    out["import_numpyro_s"] = time.perf_counter() - t
    seed = config.get("seed", 0)
    snap = counter.snapshot()
    t = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed), **kwargs)
    draws = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    out["run_s"] = time.perf_counter() - t
    out["run_xla"] = counter.since(snap)
    out["first_draw_at_s"] = clock()
    out["total_xla"] = counter.since(0)
    snap = counter.snapshot()
    t = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(seed + 1), **kwargs)
    {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    out["second_run_s"] = time.perf_counter() - t
    out["second_xla"] = counter.since(snap)
    out["x64"] = bool(jax.config.jax_enable_x64)
    assert draws
    return out


MODES = {f.__name__: f for f in (pplc_api, pplc_breakdown, numpyro_run)}


def _other_modes() -> dict:
    """Modes defined next to the benchmarks that use them, imported only when asked for."""
    from benchmarks import passes, peers, scaling, suite

    return {**passes.WORKER_MODES, **scaling.WORKER_MODES, **peers.WORKER_MODES,
            **{f.__name__: f for f in (suite.suite_pplc, suite.suite_numpyro,
                                       suite.density_check)}}


def main() -> None:
    mode, config = sys.argv[1], json.loads(sys.argv[2])
    interpreter_s = _WALL0 - config["launched_at"] if "launched_at" in config else None
    fn = MODES[mode] if mode in MODES else _other_modes()[mode]
    result = fn(config)
    result["interpreter_s"] = interpreter_s
    result["worker_s"] = clock()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
