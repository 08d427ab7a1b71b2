"""A slow recursive reference NUTS visits the same trees, steps and draws as the iterative kernel.

Why: the kernel (pplc/inference/nuts.py) builds its trees with two while loops and arrays of
checkpoints, and the moment tests of test_nuts.py pass with many wrong U-turn rules (a rule
that stops too late or too early still samples the target, only less efficiently). Here the
same transitions are run by the textbook recursion, in plain NumPy: Hoffman & Gelman (2014)
Algorithm 6's `build_tree`, with multinomial sampling, biased progressive sampling at the top
level and the generalized criterion on p_sharp = M^{-1} p (Betancourt 2017, appendix A), and
the two extra checks across the halves of every merge that Stan added in 2.24 (stan-dev/stan
#2800, `base_nuts.hpp`). At every transition both must agree on the number of leapfrog steps,
the tree depth, divergence, depth saturation, the chosen point, its energy and the
acceptance statistic (a mean over every leaf built, so it also says the same leaves were
built).

The reference shares with the kernel only the log density and its gradient (the same jitted
JAX function: this checks tree building, not gradients) and the randomness, mapped as follows:
  * key -> (momentum_key, tree_key) = jax.random.split(key); p = z / sqrt(M^{-1}) (diagonal)
    or S z with S S^T = M (dense), z = jax.random.normal(momentum_key, shape, float64); the
    seed is jax.random.bits(tree_key, (2,), uint32).
  * u(c) = (lowbias32(seed0 ^ lowbias32(c * 0x9E3779B9 + seed1)) + 1/2) / 2^32 (uint32
    arithmetic) is the c-th uniform of the transition: doubling d takes c = 2d for its
    direction (forward iff u < 1/2) and c = 2d + 1 for the top-level draw; leaf i (0-based, in
    the order of integration) of doubling d takes c = 2 max_depth + 2^d - 1 + i.
  * The kernel draws one uniform per leaf, not one per merge, so the textbook merge "take the
    final half's proposal with probability W_final / W_subtree" is written as a coupling on
    the leaf uniforms: leaf i fires when u_i < w_i / W_{<=i} (W_{<=i}: the weight of the
    doubling's leaves up to i), and a merge takes the final half's proposal iff one of its
    leaves fired. Leaf j is then the subtree's draw with probability
    (w_j / W_{<=j}) prod_{i>j} W_{<=i-1} / W_{<=i} = w_j / W, the multinomial law.

The comparison can fail: `test_reference_detects_a_wrong_uturn_rule` runs the reference with
wrong criteria (Stan's before 2.24, without the extra checks; momenta instead of M^{-1} p) and
requires a mismatch on some transition. Breaking the reference's criterion by hand (e.g.
`>=` -> `<`, or dropping a check) makes `test_same_trees_steps_and_draws` fail too.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pplc.inference import build_kernel, init

_M32 = 0xFFFFFFFF


def _lowbias32(x: int) -> int:
    """Wellons' lowbias32 integer hash, on Python ints masked to 32 bits."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & _M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & _M32
    return x ^ (x >> 16)


def _uniform(seed: tuple[int, int], counter: int) -> float:
    h = _lowbias32(seed[0] ^ _lowbias32((counter * 0x9E3779B9 + seed[1]) & _M32))
    return (h + 0.5) / 2.0**32


class _Leaf(NamedTuple):
    x: np.ndarray
    p: np.ndarray
    logp: float
    grad: np.ndarray


class _Tree(NamedTuple):
    beg: _Leaf  # first leaf built (next to the trajectory it extends)
    end: _Leaf  # last leaf built
    rho: np.ndarray  # sum of the momenta of its leaves
    log_w: float  # log sum of exp(H0 - H) over its leaves
    proposal: _Leaf | None  # the last leaf that fired (module docstring), None if none did
    valid: bool  # no divergence, no U-turn inside


def _no_uturn(v_minus, v_plus, rho) -> bool:
    """Stan's compute_criterion: both ends still move along the summed momentum."""
    return float(v_plus @ rho) > 0 and float(v_minus @ rho) > 0


def stan_merge_ok(sharp, a_out, a_in, rho_a, b_in, b_out, rho_b) -> bool:
    """Merging adjacent trees A and B (either order in time): Stan >= 2.24's three checks.

    a_out/a_in are A's leaves away from/next to B, b_in/b_out likewise; `sharp` is p -> M^{-1} p.
    The whole tree, A plus B's first leaf, and A's last leaf plus B (stan-dev/stan#2800).
    """
    return (
        _no_uturn(sharp(a_out.p), sharp(b_out.p), rho_a + rho_b)
        and _no_uturn(sharp(a_out.p), sharp(b_in.p), rho_a + b_in.p)
        and _no_uturn(sharp(a_in.p), sharp(b_out.p), a_in.p + rho_b)
    )


class Reference:
    """One NUTS transition by recursion, in NumPy float64, for a fixed step size and metric."""

    def __init__(self, logdensity_and_grad, step_size, inv_mass, max_depth, threshold, merge_ok=stan_merge_ok):
        self.f = lambda x: tuple(np.asarray(a, np.float64) for a in logdensity_and_grad(x))
        self.eps, self.inv_mass = float(step_size), np.asarray(inv_mass, np.float64)
        self.max_depth, self.threshold, self.merge_ok = max_depth, threshold, merge_ok
        if self.inv_mass.ndim == 2:  # S = L^{-T} with M^{-1} = L L^T, so S S^T = M
            self.sqrt_mass = np.linalg.inv(np.linalg.cholesky(self.inv_mass)).T

    def sharp(self, p):
        return self.inv_mass @ p if self.inv_mass.ndim == 2 else self.inv_mass * p

    def energy(self, z: _Leaf) -> float:
        h = -float(z.logp) + 0.5 * float(z.p @ self.sharp(z.p))
        return np.inf if np.isnan(h) else h

    def leapfrog(self, z: _Leaf, eps: float) -> _Leaf:
        p = z.p + 0.5 * eps * z.grad  # p(t + eps/2)
        x = z.x + eps * self.sharp(p)  # x(t + eps)
        logp, grad = self.f(x)
        return _Leaf(x, p + 0.5 * eps * grad, logp, grad)  # p(t + eps)

    def build_tree(self, z: _Leaf, depth: int, sign: float, t) -> _Tree:
        """Hoffman & Gelman's build_tree: 2^depth leaves after z, stopping at the first failure."""
        if depth == 0:
            leaf = self.leapfrog(z, sign * self.eps)
            t.n_leapfrog += 1
            h = self.energy(leaf)
            t.divergent = h - t.h0 > self.threshold
            log_w = t.h0 - h
            t.sum_metro += min(1.0, np.exp(log_w))
            t.log_w_run = np.logaddexp(t.log_w_run, log_w)
            u = _uniform(t.seed, 2 * self.max_depth + 2**t.doubling - 1 + t.leaf)
            t.leaf += 1
            fired = t.log_w_run > -np.inf and u < np.exp(log_w - t.log_w_run)
            return _Tree(leaf, leaf, leaf.p, log_w, leaf if fired else None, not t.divergent)
        init_ = self.build_tree(z, depth - 1, sign, t)
        if not init_.valid:
            return init_
        final = self.build_tree(init_.end, depth - 1, sign, t)
        if not final.valid:
            return final
        valid = self.merge_ok(self.sharp, init_.beg, init_.end, init_.rho, final.beg, final.end, final.rho)
        proposal = final.proposal if final.proposal is not None else init_.proposal
        log_w = np.logaddexp(init_.log_w, final.log_w)
        return _Tree(init_.beg, final.end, init_.rho + final.rho, log_w, proposal, valid)

    def transition(self, key, x) -> dict:
        momentum_key, tree_key = jax.random.split(key)
        z = np.asarray(jax.random.normal(momentum_key, x.shape, jnp.float64))
        p = self.sqrt_mass @ z if self.inv_mass.ndim == 2 else z / np.sqrt(self.inv_mass)
        seed = tuple(int(s) for s in np.asarray(jax.random.bits(tree_key, (2,), jnp.uint32)))
        start = _Leaf(x, p, *self.f(x))
        t = SimpleNamespace(h0=self.energy(start), seed=seed, n_leapfrog=0, sum_metro=0.0, divergent=False)
        left = right = sample = start  # left/right: earliest/latest leaf in time
        rho, log_w, depth, stopped = p, 0.0, 0, False
        while depth < self.max_depth:
            forward = _uniform(seed, 2 * depth) < 0.5
            t.doubling, t.leaf, t.log_w_run = depth, 0, -np.inf
            sub = self.build_tree(right if forward else left, depth, 1.0 if forward else -1.0, t)
            if not sub.valid:
                stopped = True
                break
            # Biased progressive sampling: move to the new subtree w.p. min(1, W_new / W_old).
            if sub.log_w > log_w or _uniform(seed, 2 * depth + 1) < np.exp(sub.log_w - log_w):
                sample = sub.proposal
            depth += 1
            far, near = (left, right) if forward else (right, left)
            ok = self.merge_ok(self.sharp, far, near, rho, sub.beg, sub.end, sub.rho)
            rho, log_w = rho + sub.rho, np.logaddexp(log_w, sub.log_w)
            left, right = (left, sub.end) if forward else (sub.end, right)
            if not ok:
                stopped = True
                break
        return dict(
            position=sample.x,
            energy=self.energy(sample),
            num_steps=t.n_leapfrog,
            tree_depth=depth,
            is_divergent=t.divergent,
            acceptance_rate=t.sum_metro / t.n_leapfrog,
            hit_max_depth=not stopped,
        )


class Case(NamedTuple):
    logdensity: Callable
    x0: np.ndarray
    step_size: float
    inv_mass: np.ndarray
    max_depth: int = 10
    threshold: float = 1000.0
    num_transitions: int = 100


_COV2 = np.array([[9.0, 0.54], [0.54, 0.04]])  # sds 3 and 0.2, correlation 0.9
_SCALES5 = np.array([0.05, 0.2, 1.0, 3.0, 10.0])


def _correlated(x):
    return -0.5 * x @ jnp.linalg.solve(jnp.asarray(_COV2), x)


def _banana(x):
    # x0 ~ Normal(0, 2), x1 | x0 ~ Normal(x0^2 / 4, 0.5): curvature changes along the ridge.
    return -0.5 * (x[0] / 2.0) ** 2 - 0.5 * ((x[1] - 0.25 * x[0] ** 2) / 0.5) ** 2


def _funnel(x):
    # Neal's funnel, centered: v ~ Normal(0, 3), x_i ~ Normal(0, exp(v / 2)).
    v, z = x[0], x[1:]
    return -0.5 * (v / 3.0) ** 2 - 0.5 * jnp.sum(z**2) * jnp.exp(-v) - 0.5 * z.shape[0] * v


CASES = {
    "normal_1d": Case(lambda x: -0.5 * jnp.sum(x**2), np.array([0.3]), 0.3, np.ones(1)),
    "correlated_2d_diag": Case(_correlated, np.array([1.0, -0.1]), 0.15, np.diag(_COV2).copy()),
    "correlated_2d_dense": Case(_correlated, np.array([1.0, -0.1]), 0.6, 0.5 * _COV2 + 0.5 * np.diag(np.diag(_COV2))),
    # A diagonal metric that corrects only half of each scale (M^{-1} = sd, not sd^2).
    "ill_scaled_5d": Case(lambda x: -0.5 * jnp.sum((x / _SCALES5) ** 2), _SCALES5 / 2, 0.04, _SCALES5.copy()),
    "banana_2d": Case(_banana, np.array([1.0, 0.5]), 0.2, np.ones(2)),
    # A unit metric on scales 0.01..1 with a small step: depth 5 is reached and binds.
    "depth_cap_5d": Case(lambda x: -0.5 * jnp.sum((x / jnp.linspace(0.01, 1.0, 5)) ** 2), np.full(5, 0.01), 0.015,
                         np.ones(5), max_depth=5),
    # Starting in the neck with a step too large for it: divergences at various depths.
    "funnel_divergent_4d": Case(_funnel, np.array([-3.0, 0.1, -0.1, 0.2]), 0.6, np.ones(4), threshold=50.0),
}


@functools.lru_cache(maxsize=None)
def _run_kernel(name: str):
    """The iterative kernel's chain: keys, the input positions, and per-transition outputs."""
    case = CASES[name]
    f = jax.value_and_grad(case.logdensity)
    kernel = jax.jit(build_kernel(f, max_tree_depth=case.max_depth, divergence_threshold=case.threshold))
    base = jax.random.key(sum(map(ord, name)))
    keys = [jax.random.fold_in(base, i) for i in range(case.num_transitions)]  # cheaper than unstacking a split
    state = init(jnp.asarray(case.x0, jnp.float64), f)
    starts, outs = [], []
    for key in keys:
        starts.append(np.asarray(state.position))
        state, info = kernel(key, state, case.step_size, jnp.asarray(case.inv_mass))
        outs.append(dict(position=np.asarray(state.position), energy=float(info.energy),
                         num_steps=int(info.num_steps), tree_depth=int(info.tree_depth),
                         is_divergent=bool(info.is_divergent), acceptance_rate=float(info.acceptance_rate),
                         hit_max_depth=bool(info.hit_max_depth)))
    return keys, starts, outs, jax.jit(f)


def _reference(name: str, merge_ok=stan_merge_ok) -> Reference:
    case = CASES[name]
    f = _run_kernel(name)[3]
    return Reference(f, case.step_size, case.inv_mass, case.max_depth, case.threshold, merge_ok)


def _mismatch(ref: dict, out: dict) -> str | None:
    """What differs between a reference transition and a kernel transition, or None."""
    for k in ("num_steps", "tree_depth", "is_divergent", "hit_max_depth"):
        if ref[k] != out[k]:
            return f"{k}: reference {ref[k]}, kernel {out[k]}"
    if not np.allclose(ref["position"], out["position"], rtol=1e-10, atol=1e-10):
        return f"position: reference {ref['position']}, kernel {out['position']}"
    for k in ("energy", "acceptance_rate"):
        if not np.isclose(ref[k], out[k], rtol=1e-10, atol=1e-10):
            return f"{k}: reference {ref[k]!r}, kernel {out[k]!r}"
    return None


@pytest.mark.parametrize("name", CASES)
def test_same_trees_steps_and_draws(name):
    # One chain each, from the same start with the same keys: the reference's chain moves by
    # its own draws, so an early mismatch in the chosen point would show at every later step.
    keys, _, outs, _ = _run_kernel(name)
    reference = _reference(name)
    x = np.asarray(CASES[name].x0, np.float64)
    for i, (key, out) in enumerate(zip(keys, outs)):
        ref = reference.transition(key, x)
        problem = _mismatch(ref, out)
        assert problem is None, f"{name}, transition {i}: {problem}"
        x = ref["position"]


def test_cases_cover_depths_caps_and_divergences():
    # The comparison means something only if the runs reach the cases it is about.
    depths = {o["tree_depth"] for n in CASES for o in _run_kernel(n)[2]}
    assert set(range(1, 6)) <= depths, depths
    capped = _run_kernel("depth_cap_5d")[2]
    assert any(o["hit_max_depth"] for o in capped) and not all(o["hit_max_depth"] for o in capped)
    funnel = _run_kernel("funnel_divergent_4d")[2]
    divergent = [o for o in funnel if o["is_divergent"]]
    assert divergent and len(divergent) < len(funnel)
    assert any(o["num_steps"] > 2 for o in divergent), "no divergence inside a subtree"


def plain_merge_ok(sharp, a_out, a_in, rho_a, b_in, b_out, rho_b):
    """Stan before 2.24: the whole merged tree only."""
    return _no_uturn(sharp(a_out.p), sharp(b_out.p), rho_a + rho_b)


def momentum_merge_ok(sharp, *args):
    """Stan's three checks with the momenta p where M^{-1} p belongs."""
    return stan_merge_ok(lambda p: p, *args)


@pytest.mark.parametrize("merge_ok", [plain_merge_ok, momentum_merge_ok], ids=lambda f: f.__name__)
def test_reference_detects_a_wrong_uturn_rule(merge_ok):
    # Each wrong criterion, run from the kernel's own inputs, must disagree somewhere.
    for name in ("correlated_2d_diag", "correlated_2d_dense", "ill_scaled_5d", "banana_2d"):
        keys, starts, outs, _ = _run_kernel(name)
        reference = _reference(name, merge_ok)
        if any(_mismatch(reference.transition(k, x), o) for k, x, o in zip(keys, starts, outs)):
            return
    pytest.fail(f"no transition tells {merge_ok.__name__} from Stan's criterion")
