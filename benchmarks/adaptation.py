"""ESS per gradient of pplc's warmup options against nutpie's, seed by seed (issue 16).

Why per seed and per gradient: ESS per gradient does not depend on the machine's load (the
2-core machine is shared), and one seed is not enough: on the Gaussian mixture a chain can
wander for a few hundred draws into the wide, low-density region where two components
merge (sigma ~2.3, lp ~14 below the mode), with pplc and with nutpie alike, and the
minimum ESS of that run falls 10-20x. So every configuration runs on several seeds and
both the minimum and the median bulk ESS over the parameters' elements are reported.

pplc: 4 chains x (1000 warmup + 1000 draws), float64, chains "sequential", in this process,
through the Python API; `--configs` entries are RESTARTS:METRIC, RESTARTS being "every"
(Stan's: the step size searched and its dual averaging restarted after every metric
window) or "first" (after the first window only; `schedule.STEP_SIZE_RESTARTS`).
nutpie: the PyMC twin (benchmarks/pymc_models.py), its default diagonal adaptation, 4 chains
x (1000 + 1000), `cores=1`. Gradients count the whole run, warmup and step-size searches
included (pplc's `n_grad_evals`, nutpie's `n_steps` of warmup and draws).

Run: python -m benchmarks.adaptation --models a,b [--configs every:diag,first:diag,...]
     [--seeds 0,1,2] [--nutpie]
Prints one markdown row per run as it goes:
| model | system | restarts | metric | seed | gradients | min ESS | median ESS | min ESS/grad
| median ESS/grad | step size | mean accept | steps/draw | divergences |
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import suite
from benchmarks._common import min_bulk_ess

DEFAULT_CONFIGS = "every:diag,first:diag,every:low-rank,first:low-rank"


def ess_min_median(draws: dict, params) -> tuple[float, float]:
    """(minimum, median) ArviZ bulk ESS over every non-constant element of `params`."""
    import arviz as az

    ess_min, _ = min_bulk_ess({k: np.asarray(draws[k]) for k in params})
    values = []
    for k in params:
        x = np.asarray(draws[k], float)
        x = x.reshape(x.shape[0], x.shape[1], -1)
        values += [float(az.ess(x[:, :, i], method="bulk")) for i in range(x.shape[2])
                   if np.ptp(x[:, :, i]) > 0]
    return ess_min, float(np.median(values))


def row(name, system, restarts, metric, seed, grads, ess, eps, accept, steps, div) -> str:
    lo, med = ess
    return (f"| {name} | {system} | {restarts} | {metric} | {seed} | {grads:,} | {lo:.0f} | "
            f"{med:.0f} | {lo / grads * 1e3:.2f}e-3 | {med / grads * 1e3:.2f}e-3 | {eps:.3f} | "
            f"{accept:.2f} | {steps:.1f} | {div} |")


def run_pplc(name: str, configs, seeds, folder: Path) -> None:
    import pplc
    from pplc.inference import schedule

    spec = suite.SPEC_BY_NAME[name]
    cm = pplc.compile(spec.ppl).condition(str(spec.make_data(folder, False)))
    default = schedule.STEP_SIZE_RESTARTS
    try:
        for seed in seeds:
            for restarts, metric in configs:
                schedule.STEP_SIZE_RESTARTS = restarts   # read by build_schedule at call time
                post = cm.sample(chains=4, warmup=1000, draws=1000, seed=seed, metric=metric,
                                 chain_method="sequential", progress=False)
                st = post.sample_stats
                print(row(name, "pplc", restarts, post.attrs["metric"], seed, post.n_grad_evals,
                          ess_min_median(post.draws, spec.params),
                          float(np.mean(st["step_size"][:, -1])),
                          float(np.mean(st["acceptance_rate"])), float(np.mean(st["n_steps"])),
                          post.divergences), flush=True)
    finally:
        schedule.STEP_SIZE_RESTARTS = default


def run_nutpie(name: str, seeds, folder: Path) -> None:
    import nutpie

    from benchmarks import pymc_models

    spec = suite.SPEC_BY_NAME[name]
    data = json.loads(open(spec.make_data(folder, False)).read())
    compiled = nutpie.compile_pymc_model(pymc_models.build(spec.numpyro, data))
    for seed in seeds:
        trace = nutpie.sample(compiled, draws=1000, tune=1000, chains=4, seed=seed,
                              progress_bar=False, save_warmup=True, cores=1)
        st, warm = trace.sample_stats, trace.warmup_sample_stats
        grads = int(st.n_steps.sum()) + int(warm.n_steps.sum())
        draws = {k: np.asarray(trace.posterior[k]) for k in spec.params}
        print(row(name, "nutpie", "–", "diag (nutpie's)", seed, grads,
                  ess_min_median(draws, spec.params), float(st.step_size[:, -1].mean()),
                  float(st.mean_tree_accept.mean()), float(st.n_steps.mean()),
                  int(st.diverging.sum())), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", required=True)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--nutpie", action="store_true", help="nutpie instead of pplc")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    configs = [tuple(c.split(":")) for c in args.configs.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            if args.nutpie:
                run_nutpie(name, seeds, Path(folder))
            else:
                run_pplc(name, configs, seeds, Path(folder))


if __name__ == "__main__":
    main()
