"""Cold and warm start: `pplc sample` in a fresh process, with and without the persistent
compilation cache (pplc/cache.py, JAX's cache under the user's cache folder).

Per model, three fresh `pplc sample` processes (4 chains x (1000 + 1000), seed 0):

  no cache     `--no-cache`: every program compiled in the process
  cache, cold  an EMPTY cache folder (`PPLC_CACHE_DIR`): compiles, and fills the cache
  cache, warm  the same folder, NEW data of the same shapes (small noise on the observed
               arrays): the compiled programs come from disk, XLA compiles nothing

Wall time is the process's, launch to exit; `compile s` is pplc's own `compile_seconds`
(everything but warmup and sampling: imports after start-up, parse, condition, compile,
initial points). NumPyro has no such cache here; its cold start is the suite's first-run time.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks import datasets
from benchmarks._common import run_cli
from benchmarks.suite import SPEC_BY_NAME

MODELS = ("eight_schools_noncentered", "eight_schools_centered", "linear_regression_1000x10",
          "supernova_union21")
MODES = (("no cache", {"no_cache": True}), ("cache, cold", {}), ("cache, warm", {}))


def run(data_paths: dict[str, dict], folder: Path, *, models=MODELS, chains: int = 4,
        warmup: int = 1000, draws: int = 1000, log=print, modes=MODES) -> list[dict]:
    """One row per (model, mode). `data_paths` is the suite's model -> {"data": path}.
    `--quick` leaves out "no cache" (`modes`): it compiles what "cache, cold" compiles."""
    rows = []
    for name in models:
        spec = SPEC_BY_NAME[name]
        data = Path(data_paths[name]["data"])
        new_data = datasets.write_perturbed(data, folder / f"{name}-new.json", spec.perturb)
        cache = folder / f"cache-{name}"
        for mode, options in modes:
            log(f"  cold/warm {name}: {mode} ...")
            try:
                r = run_cli(spec.ppl, new_data if mode == "cache, warm" else data, folder,
                            chains=chains, warmup=warmup, draws=draws,
                            cache_dir=None if options else cache, tag=f"-{name}-{len(rows)}",
                            **options)
                r["cache_files"] = sum(1 for p in cache.rglob("*") if p.is_file()) \
                    if cache.exists() else 0
            except Exception as exc:  # one failed configuration must not end the run
                r = {"error": f"{type(exc).__name__}: {str(exc)[-400:]}"}
            rows.append({"model": name, "mode": mode, **r})
    return rows
