"""The metric and the warmup length on the suite models, through the Python API (issue 16 item 3).

Why: `--metric auto` may only become the default if it is never worse than Stan's `diag` on
the suite, and a shorter warmup only if it keeps the ESS; both are judged by ESS per gradient
with the *whole* run counted (warmup gradients and step-size searches included, pplc's
`n_grad_evals`), and by ESS per second of warmup + sampling (compile excluded), which also
charges a dense or low-rank metric its cost per leapfrog step.

Each configuration runs 4 chains x (warmup + 1000 draws), float64, chains "sequential" (one
core: the machine is shared, so per-step costs are not distorted by two threads fighting for
one core), in this one process; configurations are interleaved model by model, so a burst of
load from other jobs hits all of a model's configurations alike. ESS is the minimum ArviZ bulk
ESS over every element of the model's parameters (benchmarks/suite.py's lists).

Run: python -m benchmarks.metric_suite [--models a,b] [--configs diag:1000,low-rank:1000,...]
     [--seed 0]
Prints one markdown row per (model, configuration) as it goes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks import suite
from benchmarks._common import min_bulk_ess

DEFAULT_MODELS = ("eight_schools_centered,eight_schools_noncentered,linear_regression_1000x10,"
                  "supernova_union21,gaussian_mixture_3,corr_gaussian_100,hier_logistic_5000_G50")
DEFAULT_CONFIGS = "diag:1000,low-rank:1000,auto:1000,diag:300,low-rank:300"


def run_one(cm, spec, metric: str, warmup: int, seed: int) -> dict:
    t = time.perf_counter()
    post = cm.sample(chains=4, warmup=warmup, draws=1000, seed=seed, chain_method="sequential",
                     metric=metric, progress=False)
    wall = time.perf_counter() - t
    ess, where = min_bulk_ess({k: post.draws[k] for k in spec.params})
    grads = int(post.n_grad_evals)
    run_s = post.sampling_seconds
    return {"metric": post.attrs.get("metric", metric), "warmup": warmup, "grads": grads,
            "ess": ess, "where": where, "ess_per_grad": ess / grads, "run_s": run_s,
            "ess_per_s": ess / run_s, "divergences": int(post.divergences), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import pplc

    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    print("| model | dim | metric | warmup | gradients | min bulk ESS | ESS / grad | ESS / s "
          "| run s | divergences |")
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models.split(","):
            spec = suite.SPEC_BY_NAME[name]
            cm = pplc.compile(spec.ppl).condition(str(spec.make_data(Path(folder), False)))
            for metric, warmup in configs:
                r = run_one(cm, spec, metric, warmup, args.seed)
                print(f"| {name} | {cm.dim} | {r['metric']} | {warmup} | {r['grads']:,} "
                      f"| {r['ess']:.0f} | {r['ess_per_grad']:.2e} | {r['ess_per_s']:.0f} "
                      f"| {r['run_s']:.1f} | {r['divergences']} |", flush=True)


if __name__ == "__main__":
    main()
