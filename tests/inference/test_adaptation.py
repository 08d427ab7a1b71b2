"""Stan's warmup: the window schedule matches Stan's counters; the adapted metric and step size work."""

import jax
import jax.numpy as jnp
import numpy as np

from pplc.inference.adaptation import (
    DualAveragingState,
    build_schedule,
    dual_averaging_init,
    dual_averaging_update,
    regularized_variance,
    warmup_schedule,
    welford_init,
    welford_update,
)
from pplc.inference import sample_nuts


def _windows(num_warmup):
    in_window, end = warmup_schedule(num_warmup)
    starts = [i for i in range(num_warmup) if in_window[i] and (i == 0 or not in_window[i - 1] or end[i - 1])]
    ends = list(np.flatnonzero(end))
    return list(zip(starts, ends))


def test_default_windows_match_stan():
    # Stan, num_warmup = 1000: fast 0-74, slow 75-99, 100-149, 150-249, 250-449, 450-949, fast 950-999.
    assert _windows(1000) == [(75, 99), (100, 149), (150, 249), (250, 449), (450, 949)]


def test_short_warmup_uses_15_75_10():
    # 75 + 25 + 50 > 100: Stan uses init 15, term 10, one slow window 15..89.
    assert _windows(100) == [(15, 89)]


def test_tiny_warmup_adapts_only_step_size():
    in_window, end = warmup_schedule(19)
    assert not in_window.any() and not end.any()
    rows = build_schedule(19, 5)
    assert rows.adapt[:19].all() and not rows.adapt[19:].any()
    assert list(np.flatnonzero(rows.reinit)) == [0]


def test_step_size_restarts_after_the_first_window_only_by_default():
    # The default (schedule.STEP_SIZE_RESTARTS, measured in benchmarks/adaptation.md): the
    # step size is searched at the start and after the first metric update; its dual
    # averaging runs on across the later windows.
    rows = build_schedule(1000, 10)
    assert list(np.flatnonzero(rows.reinit)) == [0, 100]


def test_stans_restart_after_each_window_is_kept_as_an_option():
    rows = build_schedule(1000, 10, restarts="every")
    assert list(np.flatnonzero(rows.reinit)) == [0, 100, 150, 250, 450, 950]


def test_welford_and_regularization():
    x = np.random.default_rng(0).normal(size=(50, 3)) * [1.0, 2.0, 3.0]
    w = welford_init(3)
    for row in x:
        w = welford_update(w, jnp.asarray(row))
    n = 50
    expected = (n / (n + 5)) * x.var(axis=0, ddof=1) + 1e-3 * (5 / (n + 5))
    np.testing.assert_allclose(regularized_variance(w), expected, rtol=1e-12)


def test_dual_averaging_converges_to_target():
    # A toy acceptance curve a(eps) = exp(-eps): the fixed point of dual averaging is
    # a = 0.8, i.e. eps = -log(0.8).
    state = dual_averaging_init(jnp.asarray(1.0))
    update = jax.jit(dual_averaging_update)
    for _ in range(2000):
        state = update(state, jnp.exp(-jnp.exp(state.log_step_size)))
    assert isinstance(state, DualAveragingState)
    np.testing.assert_allclose(np.exp(state.log_step_size_avg), -np.log(0.8), rtol=0.02)


def _diag_gaussian(x, data):
    return -0.5 * jnp.sum((x / data["scale"]) ** 2)


def test_adapted_metric_and_step_size():
    scales = np.array([0.1, 1.0, 10.0])
    r = sample_nuts(_diag_gaussian, {"scale": scales}, np.zeros((4, 3)), jax.random.key(0),
                    num_warmup=1000, num_samples=500)
    # The final metric is the regularized variance of the last slow window's 500 draws.
    # For n_eff draws the relative standard error of a variance is sqrt(2 / n_eff); NUTS on
    # a Gaussian with a nearly adapted metric gives n_eff >= ~250 of those 500 (early draws
    # of the window still use the previous metric), i.e. <= 9%, so 30% is > 3 SE per check.
    ratio = r.inverse_mass_matrix / scales**2
    assert np.all(np.abs(ratio - 1.0) < 0.3), ratio
    assert np.all(np.isfinite(r.step_size)) and np.all(r.step_size > 0)
    # Dual averaging targets a mean acceptance statistic of 0.8; the x_bar average and the
    # Jensen gap between the two make the realised mean a bit higher (Stan: ~0.85-0.9).
    accept = r.stats["acceptance_rate"].mean()
    assert 0.6 < accept < 0.95, accept
    np.testing.assert_allclose(r.stats["step_size"], np.broadcast_to(r.step_size[:, None], (4, 500)), rtol=1e-12)
