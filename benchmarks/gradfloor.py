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


def main() -> None:
    import os

    import jax
    jax.config.update("jax_enable_x64", True)
    results = linear_regression()
    numpyro = results["NumPyro (data as constants)"]
    print(f"linear regression 1000 x 10, float64, in-loop gradient (best of 3 interleaved "
          f"rounds; load average {os.getloadavg()[0]:.1f}):")
    for label, us in results.items():
        print(f"  {label:58s} {us:8.2f} us   {us / numpyro:5.2f}x NumPyro")


if __name__ == "__main__":
    main()
