"""Which XLA programs a `fit` compiles, and what each costs (issue 16, item 5).

Why: ADVI's start-up was mostly compilation; to cut it one must first see which programs
are built, how big each is and how long each takes, including the small ones that eager
JAX operations compile one by one. Run in a FRESH process per configuration (nothing
cached in memory, no persistent cache):

    python -m benchmarks.advi_compile [MODEL_DIR ...] [--method advi] [--hlo]

Per program, from `jax.monitoring` events (public API): the trace and MLIR-lowering time
and the CPU seconds (user + sys, `time.process_time`, all threads) from the end of its
lowering to the end of its XLA compile. CPU, not wall: the machine is shared. `--hlo`
also counts the instructions of each optimized HLO module (XLA's `--xla_dump_to`, which
itself costs a little compile time), shown as before/after optimization. Totals: the process CPU from launch to exit and the
fit's `compile_seconds`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BACKEND = "/jax/core/compile/backend_compile_duration"
TRACE = "/jax/core/compile/jaxpr_trace_duration"
TO_MLIR = "/jax/core/compile/jaxpr_to_mlir_module_duration"


def worker(model_dir: str, method: str, warm_dir: str | None) -> dict:
    """In this process: compile, condition and fit; one row per XLA program."""
    import jax.monitoring

    programs: list[dict] = []
    mark = [time.process_time()]
    traces: list[float] = []

    def on_duration(event, duration, **kwargs):
        now = time.process_time()
        if event == TRACE:
            traces.append(duration)
        elif event == TO_MLIR:
            mark[0] = now
        elif event == BACKEND:
            programs.append({"name": str(kwargs.get("fun_name", "?")), "wall_s": duration,
                             "cpu_s": now - mark[0]})

    jax.monitoring.register_event_duration_secs_listener(on_duration)
    import pplc
    if warm_dir:
        from pplc.cache import enable_executable_cache
        enable_executable_cache(warm_dir)
    from pplc.inference import programs as pplc_programs
    model_dir = Path(model_dir)
    start = time.process_time()
    conditioned = pplc.compile(model_dir / "model.ppl").condition(model_dir / "data.json")
    before_fit = len(programs)
    fit_start = time.process_time()
    posterior = conditioned.fit(method=method, seed=1)
    fit_cpu = time.process_time() - fit_start
    return {"model": model_dir.name, "method": method, "programs": programs,
            "programs_before_fit": before_fit, "trace_s": sum(traces),
            "condition_cpu_s": fit_start - start, "fit_cpu_s": fit_cpu,
            "compile_seconds": posterior.compile_seconds,
            "pplc_counts": pplc_programs.counts(), "attrs": {
                k: v for k, v in posterior.attrs.items()
                if k in ("iterations", "converged", "pareto_k")}}


def hlo_sizes(folder: Path) -> list[tuple[str, int, int]]:
    """(module name, instructions before, after XLA's optimizations) per compiled module, in
    the order they were compiled (XLA numbers its dump files so)."""
    sizes = []
    for before in sorted(folder.glob("module_*.before_optimizations.txt")):
        name = before.name[len("module_0000."):-len(".before_optimizations.txt")]
        after = before.with_name(before.name.replace("before_optimizations",
                                                     "cpu_after_optimizations"))
        count = lambda path: sum(1 for line in path.read_text().splitlines()
                                 if " = " in line) if path.exists() else 0
        sizes.append((name, count(before), count(after)))
    return sizes


def run(model_dir: str, method: str, hlo: bool = False, warm_dir: str | None = None) -> dict:
    """A fresh process: its rows, and the process CPU from launch to exit."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory() as dump:
        if hlo:
            env["XLA_FLAGS"] = f"--xla_dump_to={dump} --xla_dump_hlo_as_text"
        before = os.times()
        proc = subprocess.run([sys.executable, "-m", "benchmarks.advi_compile", "--worker",
                               model_dir, method, warm_dir or ""], cwd=REPO, env=env,
                              capture_output=True, text=True)
        after = os.times()
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        result["process_cpu_s"] = (after.children_user - before.children_user
                                   + after.children_system - before.children_system)
        sizes = hlo_sizes(Path(dump)) if hlo else []
        for program, size in zip(result["programs"], sizes):
            if program["name"].replace("(", "_").rstrip(")") == size[0]:
                program["hlo"] = f"{size[1]}/{size[2]}"
    return result


def report(r: dict) -> str:
    rows = [f"{r['model']} {r['method']}: process CPU {r['process_cpu_s']:.2f} s, "
            f"fit CPU {r['fit_cpu_s']:.2f} s, {len(r['programs'])} XLA programs "
            f"({r['programs_before_fit']} before the fit), compile CPU "
            f"{sum(p['cpu_s'] for p in r['programs']):.2f} s, trace {r['trace_s']:.2f} s, "
            f"pplc {r['pplc_counts']}, {r['attrs']}"]
    for p in r["programs"]:   # in the order they were compiled
        rows.append(f"  {p['cpu_s']:7.3f} s CPU {p['wall_s']:7.3f} s wall  "
                    f"{p.get('hlo', ''):>11}  "
                    f"{p['name']}")
    return "\n".join(rows)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "--worker":
        print(json.dumps(worker(argv[1], argv[2], argv[3] or None)))
        return
    method = argv[argv.index("--method") + 1] if "--method" in argv else "advi"
    hlo = "--hlo" in argv
    warm = "--warm" in argv
    dirs = [a for a in argv if not a.startswith("--") and a != method] or \
        ["examples/eight_schools"]
    for model_dir in dirs:
        if warm:
            with tempfile.TemporaryDirectory() as cache:
                cold = run(model_dir, method, hlo, cache)
                print("cold (empty cache):\n" + report(cold))
                print("warm:\n" + report(run(model_dir, method, hlo, cache)))
        else:
            print(report(run(model_dir, method, hlo)))


if __name__ == "__main__":
    main(sys.argv[1:])
