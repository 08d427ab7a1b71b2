"""Tsitouras' 5(4) Runge-Kutta pair with adaptive steps, and its forward sensitivities, in
one `lax.while_loop`: the solver behind `ode` (runtime/ode.py).

Why not diffrax, which pplc used before: its generality (equinox modules, a loop per output
time, RecursiveCheckpointAdjoint's checkpoint buffers and their reverse loops) cost 5-6 s of
CPU to compile per copy of a solve and its gradient, and a sampler's programs hold several
copies (benchmarks/ode_compile.md: 30-45 s per ODE model). The systems the language targets
are small (a few states, a few parameters), where forward sensitivities are cheap: the
Jacobian S = dy/dp of the state in the inputs is carried beside the state through the same
steps, by `jax.jvp` of one Runge-Kutta step over S's columns (internal differentiation: the
exact derivative of the discrete solve for its sequence of steps). A reverse-mode gradient
is then S^T times the cotangent, outside any loop, so nothing needs reversing.

The method and its controller are diffrax's (`Tsit5`, `PIDController` with its defaults:
integral control, error order 5, safety 0.9, growth at most 10x, shrink at least 5x after a
rejection; the RMS norm of err / (atol + rtol max(|y0|, |y1|)); Hairer's first step):
the coefficients below are Tsitouras (2011) as diffrax writes them. The step sizes do not
depend on S: S is derived per step, not controlled, as with diffrax's discrete adjoint.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

Array = jax.Array

_A = (
    (0.161,),
    (-0.008480655492356988544426874250230774675121177393430391537369234245294192976164141156943,
     0.3354806554923569885444268742502307746751211773934303915373692342452941929761641411569),
    (2.897153057105493432130432594192938764924887287701866490314866693455023795137503079289,
     -6.359448489975074843148159912383825625952700647415626703305928850207288721235210244366,
     4.362295432869581411017727318190886861027813359713760212991062156752264926097707165077),
    (5.325864828439256604428877920840511317836476253097040101202360397727981648835607691791,
     -11.74888356406282787774717033978577296188744178259862899288666928009020615663593781589,
     7.495539342889836208304604784564358155658679161518186721010132816213648793440552049753,
     -0.09249506636175524925650207933207191611349983406029535244034750452930469056411389539635),
    (5.861455442946420028659251486982647890394337666164814434818157239052507339770711679748,
     -12.92096931784710929170611868178335939541780751955743459166312250439928519268343184452,
     8.159367898576158643180400794539253485181918321135053305748355423955009222648673734986,
     -0.07158497328140099722453054252582973869127213147363544882721139659546372402303777878835,
     -0.02826905039406838290900305721271224146717633626879770007617876201276764571291579142206),
)
# The 5th-order weights; the 7th stage is evaluated at the new state (first same as last).
_B = (0.09646076681806522951816731316512876333711995238157997181903319145764851595234062815396,
      0.01,
      0.4798896504144995747752495322905965199130404621990332488332634944254542060153074523509,
      1.379008574103741893192274821856872770756462643091360525934940067397245698027561293331,
      -3.290069515436080679901047585711363850115683290894936158531296799594813811049925401677,
      2.324710524099773982415355918398765796109060233222962411944060046314465391054716027841)
_B4 = (0.09468075576583945807478876255758922856117527357724631226139574065785592789071067303271,
       0.009183565540343253096776363936645313759813746240984095238905939532922955247253608687270,
       0.4877705284247615707855642599631228241516691959761363774365216240304071651579571959813,
       1.234297566930478985655109673884237654035539930748192848315425833500484878378061439761,
       -2.707712349983525454881109975059321670689605166938197378763992255714444407154902012702,
       1.866628418170587035753719399566211498666255505244122593996591602841258328965767580089,
       1 / 66)
_E = tuple(b - b4 for b, b4 in zip(_B + (0.0,), _B4))   # error weights: 5th minus 4th order
_C = (0.161, 0.327, 0.9,
      0.9800255409045096857298102862870245954942137979563024768854764293221195950761080302604,
      1.0, 1.0)
_SAFETY, _GROW, _SHRINK, _ERROR_ORDER = 0.9, 10.0, 0.2, 5.0


def _dense_weights(theta: Array) -> Array:
    """Tsit5's continuous extension: y(t + theta h) = y + h sum_i b_i(theta) k_i, for each
    theta in [0, 1]; shape (..., 7)."""
    t = theta
    return jnp.stack([
        -1.0530884977290216 * t * (t - 1.3299890189751412)
        * (t ** 2 - 1.4364028541716351 * t + 0.7139816917074209),
        0.1017 * t ** 2 * (t ** 2 - 2.1966568338249754 * t + 1.2949852507374631),
        2.490627285651252793 * t ** 2 * (t ** 2 - 2.38535645472061657 * t + 1.57803468208092486),
        -16.54810288924490272 * (t - 1.21712927295533244) * (t - 0.61620406037800089) * t ** 2,
        47.37952196281928122 * (t - 1.203071208372362603) * (t - 0.658047292653547382) * t ** 2,
        -34.87065786149660974 * (t - 1.2) * (t - 0.666666666666666667) * t ** 2,
        2.5 * (t - 1) * (t - 0.6) * t ** 2,
    ], axis=-1)


def _stages(f: Callable, t: Array, h: Array, y: Array, k1: Array, params) -> tuple:
    """One Tsit5 step of size h from (t, y) with f(t, y) = k1 known: (new state, local error
    estimate, the 7 stage derivatives (7, n))."""
    ks = [k1]
    for i, row in enumerate(_A):
        yi = y + h * sum(a * k for a, k in zip(row, ks))
        ks.append(f(t + _C[i] * h, yi, params))
    y1 = y + h * sum(b * k for b, k in zip(_B, ks))
    ks.append(f(t + h, y1, params))
    err = h * sum(e * k for e, k in zip(_E, ks))
    return y1, err, jnp.stack(ks)


def _rms(x: Array) -> Array:
    return jnp.sqrt(jnp.mean(jnp.square(x)))


def _first_step(f: Callable, t0, y0, f0, params, rtol, atol, span) -> Array:
    """Hairer's choice of the first step (as diffrax's PIDController, error order 5)."""
    scale = atol + jnp.abs(y0) * rtol
    d0, d1 = _rms(y0 / scale), _rms(f0 / scale)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = jnp.where(small, 1e-6, 0.01 * d0 / jnp.where(small, 1.0, d1))
    f1 = f(t0 + h0, y0 + h0 * f0, params)
    d2 = _rms((f1 - f0) / scale) / h0
    d = jnp.maximum(d1, d2)
    h1 = jnp.where(d <= 1e-15, jnp.maximum(1e-6, h0 * 1e-3),
                   (0.01 / jnp.where(d <= 1e-15, 1.0, d)) ** (1 / _ERROR_ORDER))
    return jnp.minimum(jnp.minimum(100 * h0, h1), span)


class Solution(NamedTuple):
    """`ys[k]` = y(ts[k]); `sens[k]` = dy(ts[k])/d(the K input directions), (m, n, K);
    `ok`: the solve reached ts[-1] in max_steps steps; `steps`/`accepted`: steps tried/kept."""

    ys: Array
    sens: Array
    ok: Array
    steps: Array
    accepted: Array


def solve(f: Callable, y0: Array, t0: Array, ts: Array, params, s0: Array, dparams,
          rtol: float, atol: float, max_steps: int) -> Solution:
    """Solve dy/dt = f(t, y, params) from y(t0) = y0, with the sensitivities in K directions.

    s0 (n, K): dy0 in each direction; dparams: a pytree like the differentiable part of
    `params` with a leading axis of K, each direction's change of the parameters. K = 0:
    the state alone. Outputs come from the dense interpolant at every `ts` a step passes,
    so output times don't shorten the steps. A solve that does not reach ts[-1] (max_steps
    spent, a step size that underflows or is not finite, as with NaN parameters) has
    ok = False; its outputs are whatever was reached, for the caller to replace.
    """
    n, num_dirs = y0.shape[0], s0.shape[1]
    t1 = ts[-1]

    def step_and_sens(t, h, y, k1, s, dk1):
        if num_dirs == 0:
            y1, err, ks = _stages(f, t, h, y, k1, params)
            return y1, err, ks, s, dk1
        def one(y_, k1_, p_):
            return _stages(f, t, h, y_, k1_, p_)
        def tangent(ds, dk, dp):
            return jax.jvp(one, (y, k1, params), (ds, dk, dp))
        (y1, err, ks), (ds1, _, dks) = jax.vmap(tangent, in_axes=(1, 0, 0),
                                                out_axes=((None, None, None), 0))(s, dk1, dparams)
        return y1, err, ks, ds1.T, dks   # ds1 (n, K); dks (K, 7, n)

    f0 = f(t0, y0, params)
    df0 = (jax.vmap(lambda ds, dp: jax.jvp(lambda y_, p_: f(t0, y_, p_), (y0, params), (ds, dp))[1],
                    in_axes=(1, 0))(s0, dparams) if num_dirs else jnp.zeros((0, n), y0.dtype))
    h0 = _first_step(f, t0, y0, f0, params, rtol, atol, t1 - t0)
    ys0 = jnp.broadcast_to(y0, (ts.shape[0], n))
    ss0 = jnp.broadcast_to(s0, (ts.shape[0], n, num_dirs))
    start = (t0, h0, y0, f0, s0, df0, ys0, ss0, jnp.int32(0), jnp.int32(0))

    def going(c):
        t, h, steps = c[0], c[1], c[8]
        return (t < t1) & (steps < max_steps) & (h > 0) & (t + h > t)

    def body(c):
        t, h, y, k1, s, dk1, ys, ss, steps, accepted = c
        y1, err, ks, s1, dks = step_and_sens(t, h, y, k1, s, dk1)
        scale = atol + rtol * jnp.maximum(jnp.abs(y), jnp.abs(jnp.where(jnp.isnan(y1), y, y1)))
        scaled = _rms(err / scale)
        keep = scaled < 1   # NaN: rejected
        inv = jnp.where(jnp.isnan(scaled), 0.0, 1 / scaled)
        factor = jnp.clip(_SAFETY * inv ** (1 / _ERROR_ORDER),
                          jnp.where(keep, 1.0, _SHRINK), jnp.where(keep, _GROW, _SAFETY))
        t_new = jnp.where(keep, jnp.where(t + h >= t1, t1, t + h), t)
        # Outputs in (t, t + h] from the dense interpolant, on accepted steps. Products
        # as broadcast sums, not matmuls: XLA fuses them, where a dot of these tiny shapes
        # is a library call that cost more than the whole step (2.6 against 1 us).
        hit = keep & (ts > t) & (ts <= t_new)
        w = _dense_weights(jnp.clip((ts - t) / h, 0.0, 1.0)) * h          # (m, 7)
        ys = jnp.where(hit[:, None], y + jnp.sum(w[:, :, None] * ks, axis=1), ys)
        if num_dirs:
            dks_by_stage = jnp.transpose(dks, (1, 2, 0))                   # (7, n, K)
            ss = jnp.where(hit[:, None, None],
                           s + jnp.sum(w[:, :, None, None] * dks_by_stage, axis=1), ss)
        pick = lambda new, old: jnp.where(keep, new, old)
        return (t_new, jnp.minimum(h * factor, t1 - t_new), pick(y1, y), pick(ks[-1], k1),
                pick(s1, s), pick(dks[:, -1], dk1) if num_dirs else dk1, ys, ss, steps + 1,
                accepted + keep.astype(jnp.int32))

    t, _, _, _, _, _, ys, ss, steps, accepted = lax.while_loop(going, body, start)
    return Solution(ys, ss, t >= t1, steps, accepted)


def directions(y0: Array, leaves: list, with_y0: bool) -> tuple[Array, list]:
    """The K input directions of `solve` for y0 (if `with_y0`) and each entry of `leaves`:
    (s0 (n, K), one (K, *shape) array per leaf), unit vectors in the order y0, leaves."""
    n = y0.shape[0]
    sizes = [n if with_y0 else 0] + [int(np.prod(np.shape(x))) for x in leaves]
    total = int(sum(sizes))
    eye = np.eye(total)
    s0 = jnp.asarray(eye[:n, :sizes[0]] if with_y0 else np.zeros((n, 0)), y0.dtype)
    s0 = jnp.concatenate([s0, jnp.zeros((n, total - sizes[0]), y0.dtype)], axis=1)
    out, offset = [], sizes[0]
    for x, size in zip(leaves, sizes[1:]):
        block = eye[offset:offset + size].T.reshape((total,) + tuple(np.shape(x)))
        out.append(jnp.asarray(block, jnp.result_type(x)))
        offset += size
    return s0, out
