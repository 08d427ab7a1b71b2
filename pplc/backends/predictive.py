"""Predictive quantities of a `LoweredModel` (a mixin): pointwise log-likelihoods,
posterior predictive draws at a position or given the latents by name, and one draw of
the prior and prior predictive by forward simulation, each assembled element by element
over the pieces' loops.

Split from lower.py by job: lower.py computes the values at a position (`_values`) that
these read, and the density; pplc/prediction.py maps these over draws.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import networkx as nx

from pplc.runtime import distributions as dists
from pplc.frontend.library import DISTRIBUTIONS, is_discrete
from pplc.ir.graph import Kind, Variable

Env = dict[str, Any]


class PredictiveQuantities:
    """LoweredModel's part that draws and scores observations (a mixin: it uses the
    model's graph, order, shapes, values and loops)."""

    @property
    def observed_names(self) -> list[str]:
        return [v.name for v in self.graph.of_kind(Kind.OBSERVED)]

    def log_likelihood(self, u: jax.Array, data: Mapping[str, jax.Array]) -> dict:
        """Pointwise log-likelihood: for each observed variable, log p(y_i | parameters)
        per element (the shape of the variable; 0 where no `~` covers an element), the
        input of PSIS-LOO (`arviz.loo`)."""
        env, _ = self._values(u, data, only_needed=True)
        out = {}
        for variable in self.graph.of_kind(Kind.OBSERVED):
            # One log-likelihood per event: `y[n] ~ MultivariateNormal(...)` gives (N,).
            event_ndim = max(DISTRIBUTIONS[p.distribution.func].event_ndim
                             for p in variable.pieces)
            shape = self.shapes[variable.name]
            out[variable.name] = self._pointwise(variable, env, self._piece_pointwise_lp,
                                                 shape[:len(shape) - event_ndim])
        return out

    def predict(self, key: jax.Array, u: jax.Array, data: Mapping[str, jax.Array]) -> dict:
        """Posterior predictive draws: each observed variable drawn anew from its
        distribution at the parameters u (one step ahead where it reads its own lags)."""
        env, _ = self._values(u, data, only_needed=True)
        return self._draw_observed(key, env)

    def _draw_observed(self, key: jax.Array, env: Env) -> dict:
        """Every observed variable drawn from its distribution at `env` (key j for the
        j-th observed variable, then folded in per element)."""
        out = {}
        for j, variable in enumerate(self.graph.of_kind(Kind.OBSERVED)):
            fn = lambda v, i, piece, local, key=jax.random.fold_in(key, j): \
                self._piece_draw(v, i, piece, local, key)
            out[variable.name] = self._pointwise(variable, env, fn)
        return out

    def predict_given(self, key: jax.Array, values: Mapping[str, jax.Array],
                      data: Mapping[str, jax.Array]) -> dict:
        """Posterior predictive draws of every observed variable given the latents' values
        by name (constrained), on the model as written, where a summed-out discrete latent
        is a latent again (`predict` at a position u cannot reach it). A latent that
        `values` lack is drawn from its distribution given its parents: a new unit's
        assignment at new inputs. Not for a latent that reads its own earlier elements
        (`model.py` refuses it: it would have to be simulated step by step)."""
        env: Env = {**self.data.sizes, **data, **values}
        observed = self.graph.of_kind(Kind.OBSERVED)
        for j, name in enumerate(self.order):
            variable = self.graph[name]
            if variable.kind is Kind.LATENT and name not in env:
                fn = lambda v, i, piece, local, key=jax.random.fold_in(key, len(observed) + j): \
                    self._piece_draw(v, i, piece, local, key)
                value = self._pointwise(variable, env, fn)
                discrete = any(is_discrete(p.distribution) for p in variable.pieces)
                env[name] = value.astype(jnp.int64) if discrete else value
            elif variable.kind is Kind.DETERMINISTIC and name not in env:
                env[name] = self._deterministic(variable, env)
        return self._draw_observed(key, env)

    def simulate_prior(self, key: jax.Array, data: Mapping[str, jax.Array]) -> dict:
        """One draw from the prior and prior predictive by forward simulation: every `~`
        variable (latent or observed) drawn from its distribution given its parents, in
        dependency order; deterministics computed as they come."""
        env: Env = {**self.data.sizes, **data}
        out = {}
        for j, name in enumerate(nx.topological_sort(self.graph.dag)):
            variable = self.graph[name]
            if variable.stochastic:
                fn = lambda v, i, piece, local, key=jax.random.fold_in(key, j): \
                    self._piece_draw(v, i, piece, local, key)
                env[name] = out[name] = self._pointwise(variable, env, fn)
            elif variable.kind is Kind.DETERMINISTIC and name not in data:
                env[name] = out[name] = self._deterministic(variable, env)
        return out

    def _pointwise(self, variable: Variable, env: Env, fn, shape: tuple | None = None
                   ) -> jax.Array:
        """Evaluate fn(variable, i, piece, env) -> element values over each piece's plates
        and assemble them in `shape` (default: the variable's shape)."""
        shape = self.shapes[variable.name] if shape is None else shape
        result = jnp.zeros(shape)
        for i, piece in enumerate(variable.pieces):
            if piece.indices is None and not piece.plates:
                result = jnp.broadcast_to(fn(variable, i, piece, env), shape).astype(float)
                continue

            def body(local, i=i, piece=piece):
                return self._lhs(piece, local), fn(variable, i, piece, local)
            lhs, values = self._over(variable.name, i, body, env)
            result = result.at[lhs].set(values)
        return result

    def _piece_pointwise_lp(self, variable, i, piece, env):
        params = self._params(variable, i, piece.distribution, env)
        value = self._element(variable, piece, env)
        return dists.get(piece.distribution.func).log_prob(value, **params)

    def _piece_draw(self, variable, i, piece, env, key):
        params = self._params(variable, i, piece.distribution, env)
        element = self.shapes[variable.name][len(piece.indices or ()):]
        value = jnp.zeros(element if piece.indices else self.shapes[variable.name])
        index = [jnp.asarray(x) for x in (self._lhs(piece, env) if piece.indices else ())]
        for x in index:  # a distinct random stream per element of the plate
            key = jax.random.fold_in(key, x)
        return dists.get(piece.distribution.func).sample(key, jnp.shape(value), **params)
