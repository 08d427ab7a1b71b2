"""The No-U-Turn Sampler, iterative, with multinomial sampling (Stan's current NUTS).

Why this variant: Hoffman & Gelman's (2014) original NUTS samples uniformly among the points
of a slice; Betancourt (2017, "A Conceptual Introduction to HMC", appendix A) showed that
sampling each point in proportion to exp(-H) ("multinomial"), biased towards the newest
subtree at the top level, and a U-turn criterion on momentum sums with the inverse metric
("generalized no-U-turn"), give markedly better effective sample sizes. Stan added extra
U-turn checks across the two halves of every merged tree (stan-dev/stan#2800) because the
plain criterion misses U-turns that happen between two halves on some targets.

Why iterative: a recursive tree builder traced by JAX unrolls 2^max_depth calls into the
program. Here a trajectory is two nested `lax.while_loop`s: the outer one doubles the
trajectory (at most `max_tree_depth` times), the inner one adds the 2^depth leaves of the
new subtree one at a time. The U-turn checks of the new subtree's own sub-subtrees need
the leaves at their left edges, which are kept in fixed-size checkpoint arrays of
`max_tree_depth` rows (the scheme of numpyro's `_leaf_idx_to_ckpt_idxs`, from Phan et al.
2019): leaf i, when even, is stored at row popcount(i); when i is odd it closes the
sub-subtrees of sizes 2, 4, ..., 2^t (t = trailing ones of i) whose left edges are in rows
popcount(i >> 1) - t + 1 .. popcount(i >> 1). Only those rows are read (one per leaf on
average), and no row is read after it was overwritten in the same leaf, so that XLA keeps
the arrays in place: the machinery around a gradient costs ~0.2 us per leaf at dim 10 and
~0.8 at dim 100 once XLA compiles the loops as one function (pplc/jax_x64.py;
benchmarks/profile_notes.md, "Machinery per leapfrog step").

Conventions (Stan's):
  * `tree_depth` counts the doublings whose subtree was *accepted* (Stan's `treedepth__`);
    a doubling rejected for a U-turn or a divergence is not counted, but its leapfrog steps
    are. Hence tree_depth <= max_tree_depth and num_steps <= 2**(tree_depth + 1) - 1, and
    num_steps <= 2**max_tree_depth - 1 always.
  * a leaf is divergent when H - H0 > divergence_threshold (NaN counts as +inf); the
    subtree holding it is discarded and the trajectory stops.
  * `acceptance_rate` = mean over every leaf built (rejected subtrees included) of
    min(1, exp(H0 - H)), the statistic step-size adaptation targets.
  * `energy` is H at the selected point (Stan's `energy__`, used for E-BFMI).
  * `hit_max_depth`: the trajectory was stopped by the depth limit, not by a U-turn or a
    divergence: all `max_tree_depth` doublings were accepted and the last merge did not
    turn (then tree_depth == max_tree_depth). This is tree-depth saturation, the sign of a
    too small step size or a badly fitting metric. Stan's `diagnose` counts
    treedepth__ >= max_depth, which also includes the rarer trajectories whose last
    doubling was accepted and then U-turned at the merge.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from pplc.inference.integrator import (
    IntegratorState,
    LogDensityAndGrad,
    energy,
    is_dense,
    mass_matrix_sqrt,
    sample_momentum,
    velocity,
    velocity_verlet,
)
from pplc.inference.loop_primitives import set_row, uniform_from_counter

Array = jax.Array


class NUTSState(NamedTuple):
    """The chain's current point; the gradient is kept so that no step recomputes it."""

    position: Array
    logdensity: Array
    logdensity_grad: Array


class NUTSInfo(NamedTuple):
    """Per-transition diagnostics (see the module docstring for the conventions)."""

    is_divergent: Array
    num_steps: Array
    tree_depth: Array
    acceptance_rate: Array
    energy: Array
    hit_max_depth: Array


def init(position: Array, logdensity_and_grad: LogDensityAndGrad) -> NUTSState:
    """Evaluate the log density and its gradient at `position`."""
    logdensity, grad = logdensity_and_grad(position)
    return NUTSState(position, logdensity, grad)


class _Trajectory(NamedTuple):
    left: IntegratorState  # earliest leaf in time
    right: IntegratorState  # latest leaf in time
    momentum_sum: Array  # rho: sum of the momenta of all leaves
    log_weight: Array  # log sum_leaves exp(H0 - H)
    proposal: NUTSState  # the point drawn so far (its momentum is never needed)
    proposal_energy: Array


class _Checkpoints(NamedTuple):
    """Left edges of the open sub-subtrees of a subtree, one row per level (see module doc).

    Row r holds, for the even leaf b last stored there: v_b = M^-1 p_b and the momentum sum
    of the leaves before b. When a later even leaf m closes the left half of the tree that
    starts at row r (m is that tree's midpoint), the half-merge data of Stan's extra checks
    are stored in the same row: the verdict of "left half + first leaf of the right half"
    (all of it is known at m) and, for "last leaf of the left half + right half", v_{m-1}
    and the momentum sum before m - 1. Stored this way the checks need no row shifts.

    The arrays have one row more than the deepest level: a leaf with nothing to store
    writes that spare row, so every leaf writes unconditionally (no select that reads a row
    back, no copy of a loop-carried buffer). No row is read before this subtree wrote it,
    so the arrays are never cleared: one set serves every doubling of a transition.
    """

    velocity: Array  # (max_depth + 1, dim) v_b
    sum_before: Array  # (max_depth + 1, dim) rho over leaves before b
    mid_ok: Array  # (max_depth + 1,) the first extra check passed
    mid_prev_velocity: Array  # (max_depth + 1, dim) v_{m-1}
    mid_sum_before_prev: Array  # (max_depth + 1, dim) rho over leaves before m - 1


class _Subtree(NamedTuple):
    """A subtree under construction, leaves appended in the direction of integration."""

    edge: IntegratorState  # the last leaf built
    edge_velocity: Array  # M^-1 p of that leaf (the next even leaf stores it as v_{m-1})
    first_momentum: Array  # momentum of the first leaf (next to the old trajectory)
    momentum_sum: Array
    log_weight: Array
    proposal: NUTSState
    proposal_energy: Array
    ckpt: _Checkpoints
    num_leaves: Array
    is_turning: Array
    is_diverging: Array
    sum_accept_prob: Array


class _Loop(NamedTuple):
    trajectory: _Trajectory
    ckpt: _Checkpoints  # scratch for the subtrees, handed from one doubling to the next
    depth: Array
    num_steps: Array
    sum_accept_prob: Array
    is_turning: Array
    is_diverging: Array


def _no_uturn(v_left: Array, v_right: Array, rho: Array) -> Array:
    """Generalized criterion (Betancourt 2017, A.4.2): keep going while both ends move apart."""
    return (jnp.dot(v_left, rho) > 0) & (jnp.dot(v_right, rho) > 0)


def build_kernel(
    logdensity_and_grad: LogDensityAndGrad,
    max_tree_depth: int = 10,
    divergence_threshold: float = 1000.0,
) -> Callable[..., tuple[NUTSState, NUTSInfo]]:
    """Build `kernel(rng_key, state, step_size, inverse_mass_matrix, sqrt_mass=None) -> (NUTSState, NUTSInfo)`.

    `logdensity_and_grad(x) -> (log p(x), grad)` is traced once; the kernel is pure and can
    be jitted, vmapped and scanned. `inverse_mass_matrix` is a (dim,) diagonal or a
    (dim, dim) dense M^{-1}; for a dense one, `sqrt_mass` is `integrator.mass_matrix_sqrt`
    of it, computed per call (O(dim^3)) when not given.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> f = jax.value_and_grad(lambda x: -0.5 * jnp.sum(x**2))
        >>> kernel = build_kernel(f)
        >>> state, info = kernel(jax.random.key(0), init(jnp.zeros(3), f), 0.5, jnp.ones(3))
    """
    step = velocity_verlet(logdensity_and_grad)
    max_depth = int(max_tree_depth)
    spare = max_depth  # the checkpoint row written by leaves that store nothing

    def closes_ok(ck: _Checkpoints, r, v, rho, is_half):
        """Stan's checks of the tree whose left edge is in row r and whose last leaf has
        velocity v and momentum sum rho; the two half-merge checks only when `is_half`
        is False (a 2-leaf tree has none beyond the plain one)."""
        rho_full = rho - ck.sum_before[r]
        ok = _no_uturn(ck.velocity[r], v, rho_full)
        rho_b = rho - ck.mid_sum_before_prev[r]  # last leaf of the left half + right half
        ok_b = ck.mid_ok[r] & _no_uturn(ck.mid_prev_velocity[r], v, rho_b)
        return ok & (is_half | ok_b)

    # Counters for uniform_from_counter: doubling d uses 2d (direction) and 2d + 1
    # (top-level accept); leaf i of doubling d uses 2 * max_depth + 2^d - 1 + i, distinct
    # over the transition.
    def build_subtree(seed, start, start_velocity, ckpt, direction, depth, step_size, inv_mass, h0):
        """Append 2**depth leaves after `start`; stop early at a U-turn or divergence."""
        dtype = start.position.dtype
        init_sub = _Subtree(
            edge=start,
            edge_velocity=start_velocity,
            first_momentum=start.momentum,
            momentum_sum=jnp.zeros_like(start.momentum),
            log_weight=jnp.array(-jnp.inf, dtype),
            proposal=NUTSState(start.position, start.logdensity, start.logdensity_grad),
            proposal_energy=jnp.array(jnp.inf, dtype),
            ckpt=ckpt,
            num_leaves=jnp.int32(0),
            is_turning=jnp.array(False),
            is_diverging=jnp.array(False),
            sum_accept_prob=jnp.array(0.0, dtype),
        )
        num_leaves_target = jnp.left_shift(jnp.int32(1), depth)
        leaf_counter0 = 2 * max_depth + num_leaves_target - 1
        signed_step = direction * step_size

        def cond(sub: _Subtree):
            return (sub.num_leaves < num_leaves_target) & ~sub.is_turning & ~sub.is_diverging

        def body(sub: _Subtree) -> _Subtree:
            i = sub.num_leaves
            prev = sub.edge
            leaf = step(prev, signed_step, inv_mass)
            h = energy(leaf, inv_mass)
            h = jnp.where(jnp.isnan(h), jnp.inf, h)
            delta = h - h0
            is_diverging = delta > divergence_threshold
            log_w_leaf = -delta
            accept_prob = jnp.minimum(1.0, jnp.exp(log_w_leaf))

            # Multinomial sampling within the subtree: after leaf i, each leaf so far is the
            # proposal with probability w_leaf / sum(w), as Stan's uniform merge gives.
            log_weight = jnp.logaddexp(sub.log_weight, log_w_leaf)
            u = uniform_from_counter(seed, leaf_counter0 + i, dtype)
            take = u < jnp.exp(log_w_leaf - log_weight)
            point = NUTSState(leaf.position, leaf.logdensity, leaf.logdensity_grad)
            proposal = jax.tree.map(lambda a, b: jnp.where(take, a, b), point, sub.proposal)
            proposal_energy = jnp.where(take, h, sub.proposal_energy)

            p = leaf.momentum
            v = velocity(p, inv_mass)
            rho_before = sub.momentum_sum
            rho = rho_before + p
            ck = sub.ckpt
            row = lax.population_count(i >> 1)

            # Even leaf i: open row `row`; if i > 0 it is also the midpoint of the tree that
            # starts at row - 1, whose half-merge checks are evaluated/stored now. Leaves
            # with nothing to store write the spare row instead.
            # Rows are read only after the writes of this leaf (row - 1 is never the row
            # written), so no old version of an array stays live and XLA copies nothing.
            is_even = (i & 1) == 0
            is_mid = is_even & (i > 0)
            srow = jnp.where(is_even, row, spare)
            velocities = set_row(ck.velocity, srow, v)
            sums_before = set_row(ck.sum_before, srow, rho_before)
            mrow = jnp.where(is_mid, row - 1, spare)
            rho_a = rho - sums_before[mrow]  # left half + leaf i
            ok_a = _no_uturn(velocities[mrow], v, rho_a)
            ck = _Checkpoints(
                velocity=velocities,
                sum_before=sums_before,
                mid_ok=set_row(ck.mid_ok, mrow, ok_a),
                mid_prev_velocity=set_row(ck.mid_prev_velocity, mrow, sub.edge_velocity),
                mid_sum_before_prev=set_row(ck.mid_sum_before_prev, mrow, rho_before - prev.momentum),
            )

            # Odd leaf i closes the trees of sizes 2, 4, ..., 2^t starting at rows
            # row - t + 1 .. row (t = trailing ones of i; none for an even leaf). Only
            # those rows are read, one at a time, from the 2-leaf tree (row) up, until one
            # turns: on average one row per leaf, instead of every row at every leaf.
            trailing_ones = lax.population_count(i ^ (i + 1)) - 1
            row_min = row - trailing_ones + 1

            def check_cond(c):
                r, turning = c
                return (r >= row_min) & ~turning

            def check_body(c):
                r, _ = c
                return r - 1, ~closes_ok(ck, r, v, rho, r == row)

            is_turning = lax.while_loop(check_cond, check_body, (row, jnp.array(False)))[1]

            return _Subtree(
                edge=leaf,
                edge_velocity=v,
                first_momentum=jnp.where(i == 0, p, sub.first_momentum),
                momentum_sum=rho,
                log_weight=log_weight,
                proposal=proposal,
                proposal_energy=proposal_energy,
                ckpt=ck,
                num_leaves=i + 1,
                is_turning=is_turning,
                is_diverging=is_diverging,
                sum_accept_prob=sub.sum_accept_prob + accept_prob,
            )

        return lax.while_loop(cond, body, init_sub)

    def kernel(rng_key, state: NUTSState, step_size, inverse_mass_matrix, sqrt_mass=None):
        inv_mass = jnp.asarray(inverse_mass_matrix, state.position.dtype)
        step_size = jnp.asarray(step_size, state.position.dtype)
        momentum_key, tree_key = jax.random.split(rng_key)
        if is_dense(inv_mass) and sqrt_mass is None:
            sqrt_mass = mass_matrix_sqrt(inv_mass)
        momentum = sample_momentum(momentum_key, state.position, inv_mass, sqrt_mass)
        seed = jax.random.bits(tree_key, (2,), jnp.uint32)
        start = IntegratorState(state.position, momentum, state.logdensity, state.logdensity_grad)
        h0 = energy(start, inv_mass)
        dtype = state.position.dtype
        dim = state.position.shape[0]
        rows = jnp.zeros((max_depth + 1, dim), dtype)
        init_loop = _Loop(
            trajectory=_Trajectory(start, start, momentum, jnp.array(0.0, dtype), state, h0),
            ckpt=_Checkpoints(rows, rows, jnp.ones(max_depth + 1, bool), rows, rows),
            depth=jnp.int32(0),
            num_steps=jnp.int32(0),
            sum_accept_prob=jnp.array(0.0, dtype),
            is_turning=jnp.array(False),
            is_diverging=jnp.array(False),
        )

        def cond(loop: _Loop):
            return (loop.depth < max_depth) & ~loop.is_turning & ~loop.is_diverging

        def body(loop: _Loop) -> _Loop:
            traj = loop.trajectory
            forward = uniform_from_counter(seed, 2 * loop.depth, dtype) < 0.5
            direction = jnp.where(forward, 1.0, -1.0).astype(dtype)
            near = jax.tree.map(lambda r, l: jnp.where(forward, r, l), traj.right, traj.left)
            far = jax.tree.map(lambda r, l: jnp.where(forward, l, r), traj.right, traj.left)
            v_near = velocity(near.momentum, inv_mass)
            sub = build_subtree(seed, near, v_near, loop.ckpt, direction, loop.depth, step_size, inv_mass, h0)
            valid = ~sub.is_turning & ~sub.is_diverging

            # Biased progressive sampling at the top level (Betancourt 2017, A.3.2): move to
            # the new subtree's proposal with probability min(1, W_new / W_old).
            u = uniform_from_counter(seed, 2 * loop.depth + 1, dtype)
            take = valid & (u < jnp.exp(sub.log_weight - traj.log_weight))
            proposal = jax.tree.map(lambda a, b: jnp.where(take, a, b), sub.proposal, traj.proposal)
            proposal_energy = jnp.where(take, sub.proposal_energy, traj.proposal_energy)

            rho = traj.momentum_sum + sub.momentum_sum
            new_end = sub.edge
            left = jax.tree.map(lambda n, o: jnp.where(forward, o, n), new_end, traj.left)
            right = jax.tree.map(lambda n, o: jnp.where(forward, n, o), new_end, traj.right)
            # The merged tree is [old][new] (or [new][old]); Stan checks the whole, the old
            # part plus the new subtree's first leaf, and the old part's last leaf plus the new.
            v_far = velocity(far.momentum, inv_mass)
            v_end = sub.edge_velocity
            rho_a = traj.momentum_sum + sub.first_momentum
            rho_b = sub.momentum_sum + near.momentum
            no_uturn = (
                _no_uturn(v_far, v_end, rho)
                & _no_uturn(v_far, velocity(sub.first_momentum, inv_mass), rho_a)
                & _no_uturn(v_near, v_end, rho_b)
            )
            log_weight = jnp.logaddexp(traj.log_weight, sub.log_weight)
            new_traj = _Trajectory(left, right, rho, log_weight, proposal, proposal_energy)
            trajectory = jax.tree.map(lambda a, b: jnp.where(valid, a, b), new_traj, traj)
            return _Loop(
                trajectory=trajectory,
                ckpt=sub.ckpt,
                depth=loop.depth + valid.astype(jnp.int32),
                num_steps=loop.num_steps + sub.num_leaves,
                sum_accept_prob=loop.sum_accept_prob + sub.sum_accept_prob,
                is_turning=sub.is_turning | (valid & ~no_uturn),
                is_diverging=sub.is_diverging,
            )

        out = lax.while_loop(cond, body, init_loop)
        new_state = out.trajectory.proposal
        info = NUTSInfo(
            is_divergent=out.is_diverging,
            num_steps=out.num_steps,
            tree_depth=out.depth,
            acceptance_rate=out.sum_accept_prob / jnp.maximum(out.num_steps, 1),
            energy=out.trajectory.proposal_energy,
            hit_max_depth=(out.depth >= max_depth) & ~out.is_turning & ~out.is_diverging,
        )
        return new_state, info

    return kernel
