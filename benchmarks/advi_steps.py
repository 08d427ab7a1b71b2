"""Full-batch ADVI before and after its averaging phase in q's sds (advi_steps.py):
narrow posteriors fixed, and the fits that were right still right.

Why: advi.py's step, eta / sqrt(t) in the parameters' units, is tens of posterior sds
where the posterior is narrow, and the fit came out wrong but converged. The fix changes
every full-batch fit's last phase, so the fits that were right (eight schools, the
linear-regression example) are compared too, seed by seed.

    .venv/bin/python -m benchmarks.advi_steps [--before PATH] [--seeds 0 1 2 3]
        [--only narrow10 narrow30 eight linreg]

`--before PATH`: an advi.py from an earlier commit (e.g. `git show a6323a4:pplc/inference/
advi.py > /tmp/advi_before.py`), loaded as a module of its own beside the checkout's, so
both run in one process on the same compiled log densities. Per (model, method, seed,
version): iterations, converged, the Pareto k-hat, the warnings, and the error against
an oracle: for the narrow logistic regressions (N = 10^4, covariates x10 or x30, as
tests/inference/test_advi_narrow_posterior.py) the Laplace approximation at the mode
(meanfield's oracle sds 1/sqrt(H_ii)); for the linear regression NUTS's means and sds
(tests/test_fit_models.py); for eight schools the reference's mu (Stan, 10 chains).
Results are counts and errors, not times: the machine is shared. benchmarks/advi_steps.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import jax
import numpy as np

import pplc
import pplc.inference.advi as checkout
from benchmarks.minibatch import MODEL as LOGREG, laplace_in_memory, narrow_data

REPO = Path(__file__).resolve().parent.parent
EIGHT = REPO.parent / "shared" / "conformance" / "eight_schools-eight_schools_noncentered"
NUTS_MEAN = np.array([1.491, 2.078, -1.092, 0.639])   # alpha, beta (tests/test_fit_models.py)
NUTS_SD = np.array([0.067, 0.064, 0.061, 0.071])


def narrow(scale: float, n: int = 10_000, k: int = 3):
    """The logistic regression with covariates x scale, and its Laplace oracle (mode, H)."""
    data = narrow_data(n, scale, k)
    mode, H = laplace_in_memory(data, steps=15)
    return pplc.compile(LOGREG).condition(data), mode, H


def errors(name: str, method: str, r, oracle) -> dict:
    """The fit's error against the model's oracle (module docstring)."""
    sd = r.scale_or_cov if method == "meanfield" else np.sqrt(np.diag(r.scale_or_cov))
    if name.startswith("narrow"):
        mode, H = oracle
        want = (1 / np.sqrt(np.diag(H)) if method == "meanfield"
                else np.sqrt(np.diag(np.linalg.inv(H))))
        off, ratio = (r.mean - mode) / want, sd / want
    elif name == "linreg":
        off, ratio = (r.mean[:4] - NUTS_MEAN) / NUTS_SD, sd[:4] / NUTS_SD
    else:   # eight schools: mu (index 8) against the reference, in its sd
        off, ratio = np.array([(r.mean[8] - oracle[0]) / oracle[1]]), sd[8:9] / oracle[1]
    return {"max_off_sds": float(np.max(np.abs(off))),
            "sd_ratio": [float(ratio.min()), float(ratio.max())]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", help="an earlier advi.py to compare with")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--only", nargs="+", default=["narrow10", "narrow30", "eight",
                                                      "linreg"])
    args = parser.parse_args()
    versions = {"after": checkout}
    if args.before:
        spec = importlib.util.spec_from_file_location("advi_before", args.before)
        before = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = before
        spec.loader.exec_module(before)
        versions = {"before": before, **versions}
    rows = []
    for name in args.only:
        if name.startswith("narrow"):
            cm, mode, H = narrow(float(name[6:]))
            oracle = (mode, H)
        elif name == "eight":
            cm = pplc.compile(str(EIGHT / "model.ppl")).condition(str(EIGHT / "data.json"))
            ref = json.loads((EIGHT / "reference.json").read_text())["parameters"]["mu"]
            oracle = (ref["mean"], ref["sd"])
        else:
            ex = REPO / "examples" / "linear_regression"
            cm = pplc.compile(str(ex / "model.ppl")).condition(str(ex / "data.json"))
            oracle = None
        log_density = cm.lowered.log_density   # one object: the compiled programs' key
        for method in ("meanfield", "fullrank"):
            for seed in args.seeds:
                for label, module in versions.items():
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        r = module.fit_advi(log_density, cm.data, np.zeros(cm.dim),
                                            jax.random.key(seed), method=method,
                                            num_draws=100)
                    row = {"model": name, "method": method, "seed": seed, "version": label,
                           "iterations": r.iterations, "converged": bool(r.converged),
                           "pareto_k": round(float(r.pareto_k), 2),
                           "warnings": [str(w.message)[:80] for w in caught],
                           **errors(name, method, r, oracle)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
