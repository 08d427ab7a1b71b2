"""ODE models: where `pplc sample` spends its CPU, with pplc's Tsit5 solver or diffrax's.

    python -m benchmarks.ode_compile [--models osc lv] [--impls tsit5 diffrax] [--rounds 1]
                                     [--hlo] [--grad-rounds 12]

Why: an ODE model took 30-70 s of CPU to compile before pplc solved `ode` itself
(benchmarks/ode_compile.md). Each (model, implementation) runs the real API,
`pplc.compile(...).condition(...).sample()` (4 chains x 1000 + 1000, seed 0, no persistent
cache), in a FRESH worker process, the implementations interleaved; "diffrax" swaps in
the implementation pplc had before (`diffrax_ode` below: Tsit5, PIDController,
RecursiveCheckpointAdjoint, max_steps 4096) for `pplc.runtime.ode.ode`.

Everything is CPU time (user + sys of the process, every thread), since the machine is
shared: per program (trace + lower + XLA compile, timed around `programs.compiled`), warmup
+ sampling (from the chunk program's compile to the last progress report), and the rest of
`sample()` after it (constraining the draws: the deterministics' program, which solves the
ODE for every draw, is compiled there). `--hlo` adds each program's size: characters of
StableHLO and its while loops. Then, in one process, a bare value-and-gradient of each
model with each implementation in a compiled loop of 400 (benchmarks/gradfloor.py):
microseconds of CPU per gradient, minimum and median over interleaved rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LV = Path("/work/shared/conformance/hudson_lynx_hare-lotka_volterra")
MODELS = {
    "osc": (REPO / "examples/damped_oscillator/model.ppl",
            REPO / "examples/damped_oscillator/data.json"),
    "lv": (LV / "model.ppl", LV / "data.json"),
}


def diffrax_ode(f, y0, t0, ts, *args, rtol=1e-6, atol=1e-6, max_steps=4096):
    """pplc's `ode` before runtime/tsit5.py (commit b47a227), for before/after figures."""
    import diffrax
    import jax.numpy as jnp

    y0, t0, ts = jnp.asarray(y0), jnp.asarray(t0), jnp.asarray(ts)
    dtype = jnp.result_type(float, y0, t0, ts)
    y0, t0, ts = y0.astype(dtype), t0.astype(dtype), ts.astype(dtype)

    def vector_field(t, y, fargs):
        dy = f(t, y, *fargs)
        dy = jnp.stack(dy) if isinstance(dy, (list, tuple)) else jnp.asarray(dy)
        return jnp.reshape(dy, y.shape).astype(y.dtype)

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field), diffrax.Tsit5(), t0=t0, t1=ts[-1], dt0=None, y0=y0,
        args=tuple(args), saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        adjoint=diffrax.RecursiveCheckpointAdjoint(), max_steps=max_steps, throw=False)
    return jnp.where(sol.result == diffrax.RESULTS.successful, sol.ys, jnp.nan)


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(model: str, impl: str, hlo: bool) -> dict:
    """One sampling run in this (fresh) process; CPU seconds by phase."""
    c0 = _cpu()
    import jax
    import numpy as np

    import pplc
    import pplc.runtime.ode as ode_module
    from pplc.inference import programs
    from pplc.inference.convergence import ess_bulk

    if impl == "diffrax":
        ode_module.ode = diffrax_ode
    marks: dict = {"programs": {}}
    compiled = programs.compiled

    def timed(fn_key, static, build, *args, **options):
        start = _cpu()
        out = compiled(fn_key, static, build, *args, **options)
        name = static[0] if isinstance(static, tuple) else str(static)
        marks["programs"][name] = _cpu() - start
        marks["after_compile"] = _cpu()
        if hlo:
            text = jax.jit(build(), **options).lower(*args).as_text()
            marks.setdefault("hlo", {})[name] = {"kchars": len(text) // 1000,
                                                 "while": text.count("stablehlo.while")}
            marks["after_compile"] = _cpu()
        return out

    programs.compiled = timed
    c_import = _cpu()
    path, data = MODELS[model]
    conditioned = pplc.compile(path).condition(data)
    c_condition = _cpu()

    def progress(*_):
        marks["last_progress"] = _cpu()

    post = conditioned.sample(chains=4, warmup=1000, draws=1000, seed=0, progress=progress)
    c_end = _cpu()
    latents = [n for n, r in post.roles.items() if r == "latent"]
    ess = min(ess_bulk(np.asarray(v)[..., i]) for n in latents
              for v in [np.asarray(post.draws[n]).reshape(post.num_chains, post.num_draws, -1)]
              for i in range(v.shape[-1]))
    sampling = marks["last_progress"] - marks["after_compile"]
    return {"model": model, "impl": impl, "import_cpu": c_import - c0,
            "condition_cpu": c_condition - c_import, "programs_cpu": marks["programs"],
            "sampling_cpu": sampling, "after_sampling_cpu": c_end - marks["last_progress"],
            "total_cpu": c_end - c0, "n_grad": int(post.n_grad_evals),
            "us_per_grad": 1e6 * sampling / post.n_grad_evals, "min_ess_bulk": float(ess),
            "ess_per_grad": float(ess) / post.n_grad_evals,
            "divergences": int(post.divergences), "hlo": marks.get("hlo", {}),
            "load": os.getloadavg()[0]}


def gradients(models: list[str], impls: list[str], rounds: int, n: int = 400) -> list[dict]:
    """CPU microseconds per value-and-gradient in a compiled loop of `n`
    (gradfloor.gradient_loop), the implementations interleaved round by round."""
    import jax
    import jax.numpy as jnp

    import pplc
    import pplc.runtime.ode as ode_module
    from benchmarks.gradfloor import gradient_loop

    own = ode_module.ode
    loops = {}
    for model in models:
        for impl in impls:
            ode_module.ode = diffrax_ode if impl == "diffrax" else own
            c = pplc.compile(MODELS[model][0]).condition(MODELS[model][1])
            u = jnp.full(c.dim, 0.1)
            loop = gradient_loop(lambda x, data, c=c: c.unconstrained_log_density(x))
            start = _cpu()
            jax.block_until_ready(loop(u, None, n))
            loops[model, impl] = (loop, u, _cpu() - start, [])
    ode_module.ode = own
    for _ in range(rounds):
        for (loop, u, _, times) in loops.values():
            start = _cpu()
            jax.block_until_ready(loop(u, None, n))
            times.append((_cpu() - start) / n * 1e6)
    return [{"model": m, "impl": i, "loop_compile_cpu": c, "us_min": min(t),
             "us_median": sorted(t)[len(t) // 2], "load": os.getloadavg()[0]}
            for (m, i), (_, _, c, t) in loops.items()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ode_compile")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--impls", nargs="+", default=["tsit5", "diffrax"],
                   choices=["tsit5", "diffrax"])
    p.add_argument("--rounds", type=int, default=1, help="sampling runs per configuration")
    p.add_argument("--grad-rounds", type=int, default=12)
    p.add_argument("--hlo", action="store_true")
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "IMPL"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.hlo)))
        return 0
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS="ignore")
    rows = []
    for _ in range(args.rounds):
        for model in args.models:
            for impl in args.impls:
                cmd = [sys.executable, "-m", "benchmarks.ode_compile", "--worker", model, impl]
                cmd += ["--hlo"] if args.hlo else []
                start = time.perf_counter()
                out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                                     check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                row["wall"] = time.perf_counter() - start
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.grad_rounds:
        for row in gradients(args.models, args.impls, args.grad_rounds):
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
