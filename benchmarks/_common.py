"""Shared helpers: paths, fresh-process workers, compile counting, data, ESS, machine info.

Nothing here imports JAX at module level: the driver process never runs JAX itself, so
every measured number comes from a fresh worker process.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
LINREG_DIR = REPO / "examples" / "linear_regression"
EIGHT_SCHOOLS_DIR = Path("/work/shared/conformance/eight_schools-eight_schools_noncentered")

# name -> (model.ppl, data.json, NumPyro model name in benchmarks.numpyro_models)
MODELS: dict[str, tuple[Path, Path, str]] = {
    "eight_schools_noncentered": (EIGHT_SCHOOLS_DIR / "model.ppl", EIGHT_SCHOOLS_DIR / "data.json",
                                  "eight_schools_noncentered"),
    "linear_regression_100x3": (LINREG_DIR / "model.ppl", LINREG_DIR / "data.json",
                                "linear_regression"),
}

BACKEND_COMPILE = "/jax/core/compile/backend_compile_duration"
TRACE = "/jax/core/compile/jaxpr_trace_duration"
TO_MLIR = "/jax/core/compile/jaxpr_to_mlir_module_duration"


class CompileCounter:
    """Counts JAX compile-pipeline events (XLA backend compiles, traces, MLIR lowerings).

    Registered through `jax.monitoring`, so it sees every compilation in the process,
    whoever triggers it (jit, AOT `.lower().compile()`, eager op-by-op dispatch).
    `snapshot()` / `since(snap)` attribute events to phases of a run.
    """

    def __init__(self) -> None:
        import jax.monitoring

        self.events: list[tuple[str, float]] = []
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event: str, duration: float, **_: Any) -> None:
        if event in (BACKEND_COMPILE, TRACE, TO_MLIR):
            self.events.append((event, float(duration)))

    def snapshot(self) -> int:
        return len(self.events)

    def since(self, snap: int = 0) -> dict[str, float]:
        """{"compiles", "compile_s" (XLA backend), "pipeline_s" (trace + MLIR + backend)}."""
        ev = self.events[snap:]
        backend = [d for e, d in ev if e == BACKEND_COMPILE]
        return {"compiles": len(backend), "compile_s": sum(backend),
                "pipeline_s": sum(d for _, d in ev)}


def python() -> str:
    return sys.executable


def run_worker(mode: str, config: dict, timeout: float = 600) -> dict:
    """Run `python -m benchmarks.worker MODE CONFIG` in a fresh process.

    Returns the worker's JSON result plus `process_wall_s` (launch to exit, measured
    here) and `interpreter_s` (launch to the worker's first line, measured by the worker).
    """
    config = dict(config, launched_at=time.time())
    start = time.perf_counter()
    proc = subprocess.run([python(), "-m", "benchmarks.worker", mode, json.dumps(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=_env())
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"worker {mode} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    result = json.loads(line)
    result["process_wall_s"] = wall
    return result


def run_cli(model: Path, data: Path, out_dir: Path, *, chains: int, warmup: int, draws: int,
            seed: int = 0, chain_method: str = "auto", timeout: float = 600,
            cache_dir: Path | None = None, no_cache: bool = False, tag: str = "") -> dict:
    """The real `pplc sample` command in a fresh process: wall time and its summary JSON.

    `cache_dir` points pplc's persistent compilation cache somewhere (`PPLC_CACHE_DIR`);
    `no_cache` passes `--no-cache`. Without either, pplc uses the user's cache folder."""
    exe = Path(python()).parent / "pplc"
    cmd = [str(exe)] if exe.exists() else [python(), "-m", "pplc.cli"]
    summary = out_dir / f"cli-summary-{model.parent.name}-{chain_method}{tag}.json"
    cmd += ["sample", str(model), "--data", str(data), "--chains", str(chains),
            "--warmup", str(warmup), "--draws", str(draws), "--seed", str(seed),
            "--chain-method", chain_method, "--summary", str(summary), "--quiet", "--force"]
    cmd += ["--no-cache"] if no_cache else []
    env = _env()
    if cache_dir is not None:
        env["PPLC_CACHE_DIR"] = str(cache_dir)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"pplc sample failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    result = json.loads(summary.read_text())
    return {"process_wall_s": wall, "compile_seconds": result["compile_seconds"],
            "sampling_seconds": result["sampling_seconds"],
            "n_grad_evals": result["n_grad_evals"], "divergences": result["divergences"]}


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("PYTHONWARNINGS", "ignore")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def min_bulk_ess(draws: dict[str, Any]) -> tuple[float, str]:
    """Smallest ArviZ bulk ESS over every scalar element of every (chain, draw, ...) array."""
    import arviz as az

    worst, where = np.inf, ""
    for name, value in draws.items():
        value = np.asarray(value, dtype=float)
        flat = value.reshape(value.shape[0], value.shape[1], -1)
        for i in range(flat.shape[2]):
            x = flat[:, :, i]
            if np.ptp(x) == 0:  # constants (e.g. a deterministic of data only)
                continue
            ess = float(az.ess(x, method="bulk"))
            if np.isnan(ess):  # too few draws: no estimate at all
                return float("nan"), name
            if ess < worst:
                worst, where = ess, name if flat.shape[2] == 1 else f"{name}[{i}]"
    return (worst if np.isfinite(worst) else float("nan")), where


def machine() -> dict[str, str]:
    import importlib.metadata as md

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    versions = {}
    for pkg in ("pplc", "jax", "jaxlib", "numpyro", "arviz", "numpy"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "absent"
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory": mem,
            "python": platform.python_version(), "os": platform.platform(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            **{f"v_{k}": v for k, v in versions.items()}}
