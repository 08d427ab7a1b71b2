"""The gradient floor: what one log-density gradient costs, two ways (PERFORMANCE.md).

* `in_loop_seconds`: one `value_and_grad` inside a compiled `lax.fori_loop`, each
  iteration's input depending on the previous gradient (x <- x + 1e-12 * g, value summed
  into the carry), so XLA can neither hoist nor dead-code-eliminate it. This is what a
  sampler compiled end to end pays per leapfrog step at best. The fixed cost of one call
  is removed by timing two loop lengths and dividing the difference.
* `python_call_seconds`: the median of single `jit(value_and_grad)` calls from Python,
  dispatch included. A compiled sampler beats this, so an "overhead" against it can come
  out below 1; it is reported only next to the in-loop figure.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np


def gradient_loop(logdensity: Callable[[Any, Any], Any]) -> Callable:
    """jit((x, data, n) -> ...): n value-and-gradients in one compiled loop, each input moved
    by the last gradient, so that no iteration can be hoisted or skipped."""
    import jax
    import jax.numpy as jnp

    vg = jax.value_and_grad(logdensity)

    @jax.jit
    def loop(x, data, n):
        def body(_, carry):
            x, acc = carry
            v, g = vg(x, data)
            return x + 1e-12 * g, acc + v

        return jax.lax.fori_loop(0, n, body, (x, jnp.zeros((), x.dtype)))

    return loop


def in_loop_seconds(logdensity: Callable[[Any, Any], Any], x0, data, *,
                    repeats: int = 5, target_s: float = 0.05, n0: int = 1000,
                    clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds per gradient in a compiled loop. `n0` is the first loop length tried: lower
    it for expensive gradients (milliseconds each), where 1000 iterations take too long.
    `clock=time.process_time` gives CPU seconds (all threads), steadier on a shared machine."""
    import jax
    import jax.numpy as jnp

    loop = gradient_loop(logdensity)
    x0 = jnp.asarray(x0)

    def best(n):
        jax.block_until_ready(loop(x0, data, n))
        times = []
        for _ in range(repeats):
            t = clock()
            jax.block_until_ready(loop(x0, data, n))
            times.append(clock() - t)
        return min(times)

    # Calibrate the loop length so the long run takes about target_s.
    n = max(int(n0), 2)
    t = best(n)
    while t < target_s / 4 and n < 10_000_000:
        n *= 4
        t = best(n)
    short = max(n // 10, 1)
    return max(best(n) - best(short), 1e-12) / (n - short)


# What keeps XLA:CPU from compiling a while loop as one function (SmallWhileLoopHoistingPass;
# pplc/jax_x64.py opens it to loops under 64 MiB): found in the loop's optimized HLO text.
HOISTING_BLOCKERS = {"scatter": " scatter(", "custom call": " custom-call(",
                     "YNNPACK fusion": "__ynn_fusion", "convolution": " convolution(",
                     "sort": " sort(", "fft": " fft("}


def loop_hoisting(logdensity: Callable[[Any, Any], Any], x0, data) -> dict:
    """{"hoisted": whether XLA:CPU compiled `gradient_loop`'s loop as one function, and for
    each kind of op that keeps a loop from that, its occurrences in the optimized HLO text}
    (`python -m benchmarks.gradfloor --hoisting model,...`). A loop that is not
    hoisted runs each fused op of its body as a thunk per iteration, ~30 ns each: ~2 µs on
    the mixture's ~60 fusions (profile_notes.md, "Summed-out mixture")."""
    import jax.numpy as jnp

    text = gradient_loop(logdensity).lower(jnp.asarray(x0), data, 10).compile().as_text()
    out = {"hoisted": 'xla_cpu_small_call="true"' in text}
    out.update({what: text.count(pattern) for what, pattern in HOISTING_BLOCKERS.items()
                if pattern in text})
    return out


def python_call_seconds(logdensity: Callable[[Any, Any], Any], x0, data, calls: int = 1000) -> float:
    import jax
    import jax.numpy as jnp

    fn = jax.jit(jax.value_and_grad(logdensity))
    x0 = jnp.asarray(x0)
    jax.block_until_ready(fn(x0, data))
    times = np.empty(calls)
    for i in range(calls):
        t = time.perf_counter()
        jax.block_until_ready(fn(x0, data))
        times[i] = time.perf_counter() - t
    return float(np.median(times))


def calibrated_in_loop_seconds(logdensity: Callable[[Any, Any], Any], x0, data) -> float:
    """`in_loop_seconds` with the first loop length fitted to one call's cost (about
    0.05 s per loop): 1000 iterations of a millisecond gradient (an ODE solve, N = 1e6
    rows) would spend seconds on calibration alone."""
    import jax
    import jax.numpy as jnp

    fn = jax.jit(jax.value_and_grad(logdensity))
    x0 = jnp.asarray(x0)
    jax.block_until_ready(fn(x0, data))
    t = time.perf_counter()
    for _ in range(3):
        jax.block_until_ready(fn(x0, data))
    one = (time.perf_counter() - t) / 3
    n0 = int(min(1000, max(4, 0.05 / max(one, 1e-9))))
    return in_loop_seconds(logdensity, x0, data, n0=n0)


# ---------------------------------------------------------------------------------------
# python -m benchmarks.gradfloor: linear regression's bare gradient against NumPyro's
# (issue 16 item 6), the model written over whole arrays and as loops reading X[n] and
# X[n, k], with the loops' rows mapped along them (backends/rows.py) and read by gathers.

LINREG_HEAD = """data N: int
data K: int
data X: real[N, K]
data y: real[N]
alpha ~ Normal(0, 10)
beta: real[K] ~ Normal(0, 10)
sigma ~ HalfNormal(5)
"""
LINREG_FORMS = {
    "whole arrays (the example)": "y ~ Normal(alpha + X @ beta, sigma)\n",
    "loop over rows, X[n] @ beta": "for n in range(N):\n"
                                   "    y[n] ~ Normal(alpha + X[n] @ beta, sigma)\n",
    "loops over rows and columns, X[n, k]": "for n in range(N):\n    for k in range(K):\n"
                                            "        Xb[n, k] = X[n, k] * beta[k]\n"
                                            "for n in range(N):\n"
                                            "    y[n] ~ Normal(alpha + sum(Xb[n]), sigma)\n",
}


def linear_regression(n: int = 1000, k: int = 10, rounds: int = 3) -> dict[str, float]:
    """Microseconds per in-loop gradient, best of `rounds` interleaved rounds."""
    import json
    import tempfile
    from dataclasses import replace
    from pathlib import Path

    import jax
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    import pplc
    from benchmarks import datasets
    from benchmarks.numpyro_models import model_and_kwargs

    with tempfile.TemporaryDirectory() as tmp:
        data = json.loads(datasets.write_linreg_data(Path(tmp) / "d.json", n=n, k=k)
                          .read_text())
    cases = {}
    for label, body in LINREG_FORMS.items():
        cm = pplc.compile(LINREG_HEAD + body).condition(data)
        x0 = np.full(cm.dim, 0.1)
        cases[f"pplc, {label}"] = (cm.lowered.log_density, x0, cm.data)
        if cm.lowered.plan.rows:
            gathers = replace(cm.lowered, plan=replace(cm.lowered.plan, rows={}))
            cases[f"pplc, {label}, read by gathers"] = (gathers.log_density, x0, cm.data)
    model, kwargs = model_and_kwargs("linear_regression", data)
    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs)
    flat, unravel = ravel_pytree(info.param_info.z)
    cases["NumPyro (data as constants)"] = (lambda x, _: -info.potential_fn(unravel(x)),
                                            np.full(flat.shape[0], 0.1), None)
    best = {label: np.inf for label in cases}
    for _ in range(rounds):
        for label, (fn, x, d) in cases.items():
            best[label] = min(best[label], calibrated_in_loop_seconds(fn, x, d))
    return {label: 1e6 * t for label, t in best.items()}


# ---------------------------------------------------------------------------------------
# python -m benchmarks.gradfloor --peers supernova_union21,corr_gaussian_100: a suite
# model's bare gradient in pplc against NumPyro's and nutpie's compiled PyTensor one (issue
# 16 item 6), all in CPU time.

def nutpie_gradient_seconds(name: str, data: dict, calls: int = 2000, rounds: int = 5) -> float:
    """CPU seconds of one value-and-gradient of the model's PyMC twin as nutpie compiles it
    (numba), called through its C function pointer: the best of `rounds` means over `calls`
    calls, less the same for a C function that does nothing (the ctypes call itself)."""
    import ctypes

    import numba
    import nutpie

    from benchmarks.pymc_models import build

    compiled = nutpie.compile_pymc_model(build(name, data), backend="numba")
    dim = compiled.n_dim
    x = np.full(dim, 0.1)
    grad, logp = np.zeros(dim), np.zeros(())
    user = compiled.user_data.ctypes.data
    pointer = lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))

    @numba.cfunc(numba.types.int64(numba.types.uint64, numba.types.CPointer(numba.types.double),
                                   numba.types.CPointer(numba.types.double),
                                   numba.types.CPointer(numba.types.double), numba.types.voidptr))
    def nothing(n, x_, out_, logp_, user_):
        return 0

    def per_call(fn) -> float:
        args = (dim, pointer(x), pointer(grad), pointer(logp), ctypes.c_void_p(user))
        best = np.inf
        for _ in range(rounds):
            t = time.process_time()
            for _ in range(calls):
                fn(*args)
            best = min(best, (time.process_time() - t) / calls)
        return best

    logp_fn = compiled.compiled_logp_func.ctypes
    assert logp_fn(dim, pointer(x), pointer(grad), pointer(logp), ctypes.c_void_p(user)) == 0
    return max(per_call(logp_fn) - per_call(nothing.ctypes), 1e-12)


def peers(names: list[str], rounds: int = 3) -> dict[str, dict[str, float]]:
    """{model: {who: CPU µs per gradient}}: pplc and NumPyro in-loop (best of `rounds`
    interleaved), nutpie per C call."""
    import json
    import tempfile
    from pathlib import Path

    import jax
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    import pplc
    from benchmarks import suite
    from benchmarks.numpyro_models import model_and_kwargs

    out = {}
    for name in names:
        spec = suite.SPEC_BY_NAME[name]
        with tempfile.TemporaryDirectory() as tmp:
            data = json.loads(spec.make_data(Path(tmp), False).read_text())
        cm = pplc.compile(spec.ppl).condition(data)
        model, kwargs = model_and_kwargs(spec.numpyro, data)
        info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=kwargs)
        flat, unravel = ravel_pytree(info.param_info.z)
        cases = {"pplc": (cm.lowered.log_density, np.full(cm.dim, 0.1), cm.data),
                 "NumPyro": (lambda x, _: -info.potential_fn(unravel(x)),
                             np.full(flat.shape[0], 0.1), None)}
        best = {who: np.inf for who in cases}
        for _ in range(rounds):
            for who, (fn, x, d) in cases.items():
                best[who] = min(best[who], in_loop_seconds(fn, x, d, clock=time.process_time))
        best["nutpie"] = nutpie_gradient_seconds(spec.numpyro, data)
        out[name] = {who: 1e6 * t for who, t in best.items()}
    return out


def main(argv=None) -> None:
    import argparse
    import os

    import jax
    jax.config.update("jax_enable_x64", True)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", default="", help="suite models: pplc, NumPyro and nutpie")
    ap.add_argument("--hoisting", default="", help="suite models: is the gradient loop "
                    "compiled as one function, and what in it keeps it from that")
    args = ap.parse_args(argv)
    if args.hoisting:
        import tempfile
        from pathlib import Path

        from benchmarks.machinery import load
        with tempfile.TemporaryDirectory() as tmp:
            for name in args.hoisting.split(","):
                fn, data, dim = load(name, Path(tmp))
                print(f"{name}: {loop_hoisting(fn, np.full(dim, 0.1), data)}", flush=True)
        return
    if args.peers:
        for name, row in peers(args.peers.split(",")).items():
            print(f"{name}: CPU µs per value-and-gradient (load average "
                  f"{os.getloadavg()[0]:.1f}): " + ", ".join(f"{who} {us:.2f}"
                                                            for who, us in row.items()))
        return
    results = linear_regression()
    numpyro = results["NumPyro (data as constants)"]
    print(f"linear regression 1000 x 10, float64, in-loop gradient (best of 3 interleaved "
          f"rounds; load average {os.getloadavg()[0]:.1f}):")
    for label, us in results.items():
        print(f"  {label:58s} {us:8.2f} us   {us / numpyro:5.2f}x NumPyro")


if __name__ == "__main__":
    main()
