"""The dense and low-rank metrics' window-end update runs outside the loop of iterations
(`adaptive_step.scan_between_window_ends`: XLA:CPU then compiles that loop as one function, since it
holds no LAPACK call). It must be the computation the update inside each step does: same
draws, same metric, the update after the window's last draw and before the next iteration.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from pplc.inference import build_kernel
from pplc.inference.adaptation import build_schedule, initial_chain_state
from pplc.inference.adaptive_step import build_adaptive_step, scan_between_window_ends

COV = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.3], [0.0, 0.3, 4.0]])


def test_the_update_outside_the_loop_gives_the_scans_draws_and_metric():
    # "low-rank" on 3 parameters: the dense form `auto` runs up to 100 parameters (the
    # update's "dense" branch, with the window's low-rank estimate). One case: each costs
    # two compilations of the NUTS kernel (~2.6 CPU-s each).
    metric = "low-rank"
    precision = jnp.asarray(np.linalg.inv(COV))
    f = jax.value_and_grad(lambda x: -0.5 * x @ precision @ x)
    kernel = build_kernel(f)
    rows = jax.tree.map(jnp.asarray, build_schedule(150, 10, metric))
    assert int(rows.window_end.sum()) >= 3   # several windows end inside the one chunk
    states = initial_chain_state(np.random.default_rng(0).uniform(-2, 2, (2, 3)),
                                 jax.random.split(jax.random.key(1), 2), metric)
    assert states.adaptation.low_rank is None and states.adaptation.mass_matrix_sqrt is not None

    def body(step):
        def run(cs, row):
            cs, (nuts_state, info, eps) = step(cs, row)
            return cs, (nuts_state.position, info.num_steps, eps)
        return run

    inline = body(build_adaptive_step(kernel, f))
    deferred = body(build_adaptive_step(kernel, f, metric_update=False))
    # vmapped over the chains, as the vectorized method runs them: there XLA emits the same
    # arithmetic for both loops, so the draws agree bit for bit (unbatched, XLA:CPU compiles
    # the new loop as one function and may round differently in the last bit).
    scanned = jax.jit(jax.vmap(lambda cs: lax.scan(inline, cs, rows)))(states)
    split = jax.jit(jax.vmap(lambda cs: scan_between_window_ends(deferred, cs, rows)))(states)
    for a, b in zip(jax.tree.leaves(scanned[1]), jax.tree.leaves(split[1])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(scanned[0].adaptation.inverse_mass_matrix,
                                  split[0].adaptation.inverse_mass_matrix)
    assert not np.allclose(split[0].adaptation.inverse_mass_matrix, np.eye(3))   # it adapted
