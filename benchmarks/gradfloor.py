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


def in_loop_seconds(logdensity: Callable[[Any, Any], Any], x0, data, *,
                    repeats: int = 5, target_s: float = 0.05, n0: int = 1000) -> float:
    """Seconds per gradient in a compiled loop. `n0` is the first loop length tried: lower
    it for expensive gradients (milliseconds each), where 1000 iterations take too long."""
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

    x0 = jnp.asarray(x0)

    def best(n):
        jax.block_until_ready(loop(x0, data, n))
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            jax.block_until_ready(loop(x0, data, n))
            times.append(time.perf_counter() - t)
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
