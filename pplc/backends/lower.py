"""Graph IR + data -> a log density over one flat unconstrained vector.

`analysis.lower(graph, data)` works out shapes, coverage and the layout of the latents
once; it returns the `LoweredModel` defined here, whose methods are pure JAX functions
of `(u, data)`: data are arguments, never constants baked into the program, so new data
of the same shapes reuse the compiled program.

The log density is Stan's: sum of the log densities of every `~` piece and every
`factor`, at x = T(u) for the latents, plus log |dT/du| (Stan Reference Manual,
"Constraint Transforms").

This module holds the model's values and densities; `LoweredModel` gets the rest from
mixins, split by job: each latent block's constraint transform, with bounds that move
with other variables (latent_transforms.py), predictive draws, pointwise
log-likelihoods and prior simulation (predictive.py), and recursions (recursions.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from pplc.backends import recurrence
from pplc.runtime import distributions as dists
from pplc.backends.data import BoundData
from pplc.backends.evaluate import Evaluator, call_params
from pplc.backends.latent_transforms import LatentTransforms
from pplc.backends.predictive import PredictiveQuantities
from pplc.backends.row_views import VIEWS, RowEvaluator, over_rows
from pplc.backends.rows import covers
from pplc.backends.plan import Block, Plan
from pplc.backends.recursions import RecursionRunner
from pplc.frontend import ast
from pplc.frontend.library import named_arguments
from pplc.ir.graph import Graph, Kind, Piece, Variable

Env = dict[str, Any]



@dataclass
class PieceInfo:
    """What analysis learned about one piece: loop ranges and its distribution's binding."""

    ranges: list[range]
    positional: tuple[str, ...] = ()   # parameter names of the distribution's positional args
    recursive: bool = False


@dataclass
class LoweredModel(RecursionRunner, PredictiveQuantities, LatentTransforms):
    graph: Graph
    data: BoundData
    order: list[str]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, Any]
    pieces: dict[tuple[str, int], PieceInfo]
    plan: Plan
    externs: Mapping[str, Callable] = field(default_factory=dict)

    # ------------------------------------------------------------ the plan's decisions
    @property
    def layout(self) -> tuple[Block, ...]:
        return self.plan.layout

    @property
    def data_only(self) -> tuple[str, ...]:
        return self.plan.data_only

    @property
    def states(self) -> Mapping[str, int]:
        return self.plan.states

    @property
    def groups(self) -> Mapping[str, recurrence.Group]:
        return self.plan.groups

    # ------------------------------------------------------------ public surface
    @property
    def dim(self) -> int:
        return sum(b.size for b in self.layout)

    @property
    def latent_names(self) -> list[str]:
        return [b.name for b in self.layout]

    @property
    def recorded_names(self) -> list[str]:
        """Latents, imputed entries and the deterministics that change from draw to draw."""
        return [n for n in self.order if (self.graph[n].kind is Kind.LATENT
                                          and not self.graph[n].internal)
                or n in self.data.missing
                or (self.graph[n].kind is Kind.DETERMINISTIC and n not in self.data_only)]

    def missing_indices(self, name: str) -> np.ndarray:
        """Flat (C-order) positions of the missing entries of an observed variable."""
        return np.flatnonzero(self.data.missing[name])

    def runtime_data(self) -> dict[str, jax.Array]:
        """The data as arguments of the compiled program, with data-only deterministics
        (Stan's transformed data) computed once here instead of in every evaluation. In a
        run of several processes a split array is the process's own rows, which the
        placement reads (pplc/row_shares.py: nothing else reads them)."""
        shares = getattr(self.data, "shares", {})
        arrays = {k: shares[k] if k in shares else jnp.asarray(v)
                  for k, v in self.data.arrays.items()}
        if self.data_only:
            env = {**self.data.sizes, **arrays}
            for name in self.data_only:
                env[name] = self._deterministic(self.graph[name], env)
                arrays[name] = env[name]
        arrays.update(self._factorized({**self.data.sizes, **arrays}))
        return arrays

    def _factorized(self, env: Env) -> dict[str, jax.Array]:
        """The plan's data-only covariances factorized once (factors.py), by data key."""
        out = {}
        for (name, i), factor in self.plan.factors.items():
            matrix = named_arguments(self.graph[name].pieces[i].distribution)[factor.param]
            out.update(factor.compute(jnp.asarray(self._evaluate(matrix, env), jnp.float64)))
        return out

    def log_density(self, u: jax.Array, data: Mapping[str, jax.Array]) -> jax.Array:
        """log p(T(u), data) + log|det dT/du|: the sampler's target."""
        env, log_jacobian = self._values(u, data, only_needed=True)
        return log_jacobian + self._log_prob(env)

    def weighted_log_density(self, u: jax.Array, data: Mapping[str, jax.Array],
                             weights: Mapping[str, float]) -> jax.Array:
        """`log_density` with each variable's terms times `weights.get(name, 1)`: minibatch
        ADVI weighs the observations of a subsampled plate N/B (inference/minibatch.py)."""
        env, log_jacobian = self._values(u, data, only_needed=True)
        return log_jacobian + self._log_prob(env, weights)

    def constrain(self, u: jax.Array, data: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
        """The latents and deterministics (`recorded_names`) at unconstrained point u.

        For a partly observed variable, only its imputed entries (in the order of
        `missing_indices`)."""
        env, _ = self._values(u, data)
        out = {}
        for name in self.recorded_names:
            if name in self.data.missing:
                out[name] = jnp.ravel(env[name])[self.missing_indices(name)]
            else:
                out[name] = env[name]
        return out

    def unconstrain(self, values: Mapping[str, Any], data: Mapping[str, jax.Array]) -> jax.Array:
        """The inverse of `constrain` for the latents: constrained values -> u."""
        env: Env = {**self.data.sizes, **data}
        given = {k: jnp.asarray(v, jnp.float64) for k, v in values.items()}
        parts = []
        for name in self.order:
            variable = self.graph[name]
            if variable.kind is Kind.LATENT or name in self.data.missing:
                block = self._block(name)
                if name not in values and variable.recover:  # made by a pass: from the user's
                    x = self._deterministic(replace(variable, pieces=variable.recover),
                                            {**env, **given})
                else:
                    x = jnp.broadcast_to(jnp.asarray(values[name], jnp.float64), block.shape)
                parts.append(jnp.ravel(self._transform(variable, block, env).inverse(x)))
                env[name] = self._with_imputed(name, env, x) if block.imputed else x
            elif variable.kind is Kind.DETERMINISTIC and name not in data:
                env[name] = self._deterministic(variable, env)
        return jnp.concatenate(parts) if parts else jnp.zeros(0)

    def element_names(self, name: str) -> list[str]:
        """`theta[0]`, `X[1,2]`: 0-based, no spaces, C order; for a partly observed
        variable, only its imputed entries."""
        shape = self.shapes[name]
        if name in self.data.missing:
            indices = [np.unravel_index(i, shape) for i in self.missing_indices(name)]
            return [f"{name}[{','.join(str(int(i)) for i in idx)}]" for idx in indices]
        if not shape:
            return [name]
        return [f"{name}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]

    @property
    def param_names(self) -> list[str]:
        return [n for b in self.layout for n in self.element_names(b.name)]

    # ------------------------------------------------------------ evaluation
    @property
    def _evaluate(self) -> Evaluator:
        return RowEvaluator(self.graph.source, self.graph.functions, self.externs)

    def _over(self, name: str, i: int, body, env):
        """A piece's body over its loops, reading the plan's rows (rows.py) without gathers."""
        piece, info = self.graph[name].pieces[i], self.pieces[(name, i)]
        return over_rows(body, piece.plates, info.ranges, env, self.plan.rows.get((name, i), ()))

    def _block(self, name: str) -> Block:
        return next(b for b in self.layout if b.name == name)

    def _values(self, u, data, only_needed: bool = False) -> tuple[Env, jax.Array]:
        """Every value at u; with `only_needed`, skip deterministics that only get recorded
        (the density never reads them, so the sampler need not compute them)."""
        env: Env = {**self.data.sizes, **data}
        log_jacobian = jnp.zeros(())
        for name in self.order:
            variable = self.graph[name]
            if variable.kind is Kind.LATENT or name in self.data.missing:
                block = self._block(name)
                u_block = jnp.reshape(u[block.offset:block.offset + block.size],
                                      block.unconstrained_shape)
                transform = self._transform(variable, block, env)
                x = transform.forward(u_block)
                env[name] = self._with_imputed(name, env, x) if block.imputed else x
                log_jacobian = log_jacobian + jnp.sum(transform.log_abs_det_jacobian(u_block))
            elif variable.kind is Kind.DETERMINISTIC and name not in data:
                if only_needed and name not in self.plan.needed:
                    continue
                env[name] = self._deterministic(variable, env)
        return env, log_jacobian

    def _with_imputed(self, name: str, env: Env, values) -> jax.Array:
        """The observed array with its missing entries filled by `values`."""
        observed = jnp.asarray(env[name], jnp.float64)
        filled = jnp.ravel(observed).at[self.missing_indices(name)].set(values)
        return jnp.reshape(filled, observed.shape)

    def _log_prob(self, env: Env, weights: Mapping[str, float] | None = None) -> jax.Array:
        total = jnp.zeros(())
        for name in self.order:
            variable = self.graph[name]
            if variable.stochastic or variable.kind is Kind.FACTOR:
                weight = 1.0 if weights is None else weights.get(name, 1.0)
                for i, piece in enumerate(variable.pieces):
                    total = total + weight * self._piece_log_prob(variable, i, piece, env)
        return total

    def terms(self, u: jax.Array, data: Mapping[str, jax.Array]) -> list[tuple[Piece, Any]]:
        """Each statement's term of the log density at u (value and gradient checks name
        the statement at fault when no finite starting point is found)."""
        env, _ = self._values(u, data)
        out = []
        for name in self.order:
            variable = self.graph[name]
            if variable.stochastic or variable.kind is Kind.FACTOR:
                for i, piece in enumerate(variable.pieces):
                    out.append((piece, self._piece_log_prob(variable, i, piece, env)))
        return out

    def _params(self, variable: Variable, i: int, call: ast.Call, env: Env) -> dict:
        return call_params(self._evaluate, call, env)

    def _piece_log_prob(self, variable: Variable, i: int, piece: Piece, env: Env):
        evaluate = self._evaluate
        if variable.kind is Kind.FACTOR:
            body = lambda local: jnp.sum(evaluate(piece.value, local))
        else:
            dist = dists.get(piece.distribution.func)
            factor = self.plan.factors.get((variable.name, i))

            def body(local):
                params = self._params(variable, i, piece.distribution, local)
                value = self._element(variable, piece, local)
                lp = None if factor is None else factor.log_prob(value, params, local)
                return jnp.sum(dist.log_prob(value, **params) if lp is None else lp)
        return jnp.sum(self._over(variable.name, i, body, env))

    def _element(self, variable: Variable, piece: Piece, env: Env):
        value = env[variable.name]
        if piece.indices is None:
            return value
        if env.get(VIEWS):   # the left side read along the loops (rows.py)
            return self._evaluate(ast.Index(ast.Name(variable.name, piece.span),
                                            piece.indices, piece.span), env)
        return value[self._lhs(piece, env)]

    def _lhs(self, piece: Piece, env: Env) -> tuple:
        evaluate = self._evaluate
        return tuple(evaluate(i, env) for i in piece.indices)

    def _deterministic(self, variable: Variable, env: Env):
        name = variable.name
        evaluate = self._evaluate
        if name in self.groups:
            if name not in env:   # the first member met computes the whole group
                env.update(self._group(self.groups[name], env))
            return env[name]
        if len(variable.pieces) == 1 and variable.pieces[0].indices is None:
            return jnp.asarray(evaluate(variable.pieces[0].value, env))
        array = jnp.zeros(self.shapes[name], self.dtypes[name])
        order = sorted(range(len(variable.pieces)),
                       key=lambda i: self.pieces[(name, i)].recursive)
        for i in order:
            piece = variable.pieces[i]
            info = self.pieces[(name, i)]
            if not info.recursive:
                def body(local, piece=piece):
                    return self._lhs(piece, local), evaluate(piece.value, local)
                lhs, values = self._over(name, i, body, env)
                if covers(piece, info.ranges, array.shape):   # the whole array, in order
                    array = jnp.broadcast_to(jnp.asarray(values, array.dtype), array.shape)
                else:
                    array = array.at[lhs].set(jnp.asarray(values, array.dtype))
            else:
                array = self._recurrence(variable, i, env, array)
        return array

