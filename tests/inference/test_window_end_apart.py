"""sample_nuts runs a dense or low-rank metric's window-end update as a program of its own,
between chunks that stop at each window's end (`adaptive_step.window_end_program`): the
chunk program is then a plain scan, which compiles in about half the time
(benchmarks/startup.md, session 10). It must be the computation the update inside each step
does: the same draws, step sizes and metric as one scan over the whole schedule with the
update in the step.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from pplc.inference import build_kernel, sample_nuts
from pplc.inference.adaptation import build_schedule, initial_chain_state
from pplc.inference.adaptive_step import build_adaptive_step, window_end_rows
from pplc.inference.schedule import padded_chunks

COV = np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.3], [0.0, 0.3, 4.0]])
PRECISION = np.linalg.inv(COV)


def density(x, data):
    return -0.5 * x @ data["precision"] @ x


def test_chunks_stop_after_each_window_end_and_are_padded():
    rows = build_schedule(150, 10, "low-rank")
    ends = window_end_rows(rows)
    assert len(ends) >= 3
    chunks = padded_chunks(rows, 0, 150, 100, ends)
    assert all(len(part.iteration) == 100 for part, _ in chunks)
    stops = np.cumsum([n for _, n in chunks]) - 1
    assert set(ends) <= set(stops.tolist()) and stops[-1] == 149
    lo = 0
    for part, n in chunks:   # the real rows in order, then inactive padding
        np.testing.assert_array_equal(part.iteration[:n], rows.iteration[lo:lo + n])
        assert not part.active[n:].any()
        lo += n


def test_the_update_between_chunks_gives_one_scans_draws_step_sizes_and_metric():
    # vmapped (chain_method="vectorized"), where XLA emits the same arithmetic for the
    # chunked and the whole scan (tests/inference/test_window_end_update.py); 3 parameters,
    # so "low-rank" is the dense form `auto` runs up to 100.
    metric, warmup, draws, chains = "low-rank", 150, 10, 2
    starts = np.random.default_rng(0).uniform(-2, 2, (chains, 3))
    key = jax.random.key(4)
    data = {"precision": PRECISION}
    result = sample_nuts(density, data, starts, key, num_warmup=warmup, num_samples=draws,
                         chain_method="vectorized", metric=metric, chunk_size=40)

    f = jax.value_and_grad(lambda x: density(x, {"precision": jnp.asarray(PRECISION)}))
    step = build_adaptive_step(build_kernel(f), f)   # the update inside the step
    rows = jax.tree.map(jnp.asarray, build_schedule(warmup, draws, metric))
    states = initial_chain_state(starts, jax.random.split(key, chains), metric)

    def run(cs):
        def body(cs, row):
            cs, (nuts_state, info, eps) = step(cs, row)
            return cs, (nuts_state.position, info.num_steps, eps)
        return lax.scan(body, cs, rows)

    final, (positions, n_steps, eps) = jax.jit(jax.vmap(run))(states)
    np.testing.assert_array_equal(result.positions, np.asarray(positions)[:, warmup:])
    np.testing.assert_array_equal(result.stats["step_size"], np.asarray(eps)[:, warmup:])
    np.testing.assert_array_equal(result.inverse_mass_matrix,
                                  np.asarray(final.adaptation.inverse_mass_matrix))
    assert not np.allclose(result.inverse_mass_matrix[0], np.eye(3))   # it adapted
