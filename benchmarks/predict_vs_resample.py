"""Time to predict 1000 new rows from a 4000-draw fit, against re-sampling (issue 13).

The linear regression example (100 rows, 3 covariates) is fitted once with NUTS (4 chains x
1000 draws after 1000 warmup). Then 1000 new rows are predicted:

  predictions, cold  `model.condition(new).posterior_predictive(fit)` the first time
                     (lowering with the observations left out, compiling the mapping of
                     the draws and the predictive program)
  predictions, warm  the same on other new rows of the same size (nothing to compile)
  pplc predict       the command in a new process: imports, loading FIT.nc, predicting,
                     writing PRED.nc
  re-sampling        NUTS again, as without this feature: the fit itself again (warm
                     program), and NUTS with the 1000 new y as missing entries of the data
                     (imputed as latents, the way to predict by sampling)

    .venv/bin/python benchmarks/predict_vs_resample.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import pplc

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "linear_regression"


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def main() -> None:
    model = pplc.compile(EXAMPLE / "model.ppl")
    conditioned = model.condition(EXAMPLE / "data.json")
    fit, fit_seconds = timed(lambda: conditioned.sample(chains=4, warmup=1000, draws=1000,
                                                        seed=0))
    _, refit_seconds = timed(lambda: conditioned.sample(chains=4, warmup=1000, draws=1000,
                                                        seed=1))
    rng = np.random.default_rng(0)
    rows = [{"N": 1000, "K": 3, "X": rng.normal(size=(1000, 3))} for _ in range(2)]
    _, cold = timed(lambda: model.condition(rows[0]).posterior_predictive(fit, seed=0))
    predicted, warm = timed(lambda: model.condition(rows[1]).posterior_predictive(fit, seed=0))
    assert predicted["y"].shape == (4, 1000, 1000)

    with tempfile.TemporaryDirectory() as folder:
        fit_path, new_path = Path(folder) / "fit.nc", Path(folder) / "new.json"
        fit.to_netcdf(fit_path)
        new_path.write_text(json.dumps({"N": 1000, "K": 3, "X": rows[0]["X"].tolist()}))
        command = [sys.executable, "-m", "pplc.cli", "predict", str(EXAMPLE / "model.ppl"),
                   "--data", str(new_path), "--draws", str(fit_path), "-o",
                   str(Path(folder) / "pred.nc")]
        result, cli_seconds = timed(lambda: subprocess.run(command, capture_output=True,
                                                           text=True))
        assert result.returncode == 0, result.stderr

    data = json.loads((EXAMPLE / "data.json").read_text())
    imputing = model.condition({"N": 1100, "K": 3, "X": data["X"] + rows[0]["X"].tolist(),
                                "y": data["y"] + [None] * 1000})
    _, impute_seconds = timed(lambda: imputing.sample(chains=4, warmup=1000, draws=1000,
                                                      seed=0))
    print(f"fit (4 x 1000 draws, 1000 warmup), first: {fit_seconds:.2f} s; "
          f"again, compiled: {refit_seconds:.2f} s")
    print(f"predict 1000 new rows from the 4000 draws: cold {cold:.2f} s, warm {warm:.3f} s")
    print(f"pplc predict in a new process (imports, load, predict, write): "
          f"{cli_seconds:.2f} s")
    print(f"re-sampling with the 1000 new y as missing data (NUTS, 1004 dims): "
          f"{impute_seconds:.2f} s")


if __name__ == "__main__":
    main()
