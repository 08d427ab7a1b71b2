"""Startup: time from process launch to the first draws in hand, pplc against NumPyro.

What a user waits for on a small model is dominated by compilation, not sampling
(PERFORMANCE.md: NumPyro's cold eight schools takes about 6.5 s and 74 XLA compiles
for 0.4 s of sampling). Every configuration runs in a FRESH process, so nothing is
cached in memory, and the CLI runs with `--no-cache` (its persistent cache is the
`coldwarm` part's subject):

* `pplc CLI`: the real `pplc sample ... --summary` command; wall time from launch to exit,
  and pplc's own `compile_seconds` (everything but warmup+sampling) from its summary.
* `pplc API`: a worker calling `pplc.compile(...).condition(...).sample(...)`, counting
  XLA backend compilations; then a second `sample` with a new seed in the same process,
  which must compile nothing (pplc caches its compiled programs per model).
* `pplc breakdown`: the same work split into import / parse+check / condition+lower /
  initial points / sampler compile / warmup+sampling / constraining the draws.
* `NumPyro`: `MCMC(NUTS(model)).run` with chain_method "vectorized" and "sequential",
  float32 (JAX's default, as in PERFORMANCE.md's reference), and "vectorized" in float64
  (pplc always computes in float64); then a second `run` with a new seed.

Sizes: 4 chains, full warmup (default 1000) and a tiny number of draws (default 10), so
the figure is "time to the first usable draws", compile included.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import MODELS, run_cli, run_worker

NUMPYRO_CONFIGS = (("vectorized", False), ("sequential", False), ("vectorized", True))


def run(models: dict[str, tuple[Path, Path, str]] | None = None, *, chains: int = 4,
        warmup: int = 1000, draws: int = 10, seed: int = 0, numpyro: bool = True,
        log=print) -> list[dict[str, Any]]:
    """One row per (model, configuration); each row a flat dict of numbers."""
    models = models or MODELS
    rows = []
    with tempfile.TemporaryDirectory(prefix="pplc-bench-") as tmp:
        for name, (model, data, np_name) in models.items():
            base = {"model": str(model), "data": str(data), "chains": chains,
                    "warmup": warmup, "draws": draws, "seed": seed}

            def add(system, fn):
                log(f"  startup {name}: {system} ...")
                try:
                    r = fn()
                except Exception as exc:  # one failed configuration must not end the run
                    r = {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}
                rows.append({"model": name, "system": system, **r})
                return r

            add("pplc CLI", lambda: run_cli(model, data, Path(tmp), chains=chains,
                                            warmup=warmup, draws=draws, seed=seed,
                                            no_cache=True))
            add("pplc API", lambda: run_worker("pplc_api", base))
            add("pplc breakdown", lambda: run_worker("pplc_breakdown", base))
            if numpyro:
                for method, x64 in NUMPYRO_CONFIGS:
                    cfg = dict(base, numpyro_model=np_name, chain_method=method, x64=x64)
                    add(f"NumPyro {method[:3]} {'f64' if x64 else 'f32'}",
                        lambda cfg=cfg: run_worker("numpyro_run", cfg))
    return rows
