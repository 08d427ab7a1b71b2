"""Building a conditioned model's `Posterior` from a run's unconstrained positions (a mixin
of `ConditionedModel`): the draws in the user's parameterization with summed-out latents
drawn, the fingerprints and layout that let another process use them again, the observed
data, and each variable's role and ArviZ dims.

Split from conditioned.py by job: `sample` (conditioned.py) and `fit` (fitting.py) make the
positions; fit_matching.py constrains them and gives the fingerprints recorded here.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

import numpy as np

from pplc import __version__
from pplc.backends.dims import variable_dims
from pplc.errors import guard_public_methods
from pplc.inference.posterior import Posterior
from pplc.ir.graph import Kind


class PosteriorBuilding:
    """A run's positions as a `Posterior`, with its roles and dims, for `ConditionedModel`."""

    def posterior_of(self, positions, n_grad_evals: int, compile_seconds: float,
                     seconds: float, attrs: Mapping[str, Any]) -> Posterior:
        """Unconstrained draws (chains, draws, dim) made outside `fit`, as its Posterior: a
        minibatch fit streamed from files (pplc/streaming.py) conditions the model on one
        batch, whose rows are not the observations, so none are kept as observed data."""
        return self._posterior(np.asarray(positions), {}, n_grad_evals, compile_seconds,
                               seconds, dict(attrs), observed=[])

    def _posterior(self, positions, stats, n_grad_evals, compile_seconds, seconds,
                   attrs, observed: list[str] | None = None) -> Posterior:
        draws = self.constrain_draws(positions)
        # A summed-out discrete latent comes back as log P(value | rest) per draw: draw its
        # values jointly for each draw (a chain's whole path), and keep the probabilities
        # as NAME_prob (pplc/inference/discrete.py).
        from pplc.inference.discrete import draw_summed_out
        draw_summed_out(self.graph, draws, self.data, tuple(np.shape(positions)[:2]),
                        np.random.default_rng(attrs.get("seed", 0)))
        # What another process needs to use these draws again (saved with them): the
        # positions and their layout, the fingerprints of the model and data, the model.
        attrs = {**attrs, "model_hash": self.model_hash, "data_hash": self.data_hash,
                 "_positions": np.asarray(positions), "_layout": self._layout,
                 "_model_source": self.graph.source.text,
                 "_model_path": self.graph.source.path}
        if observed is None:   # (in a run, not the split ones: no process holds them whole)
            observed = [n for n in self.lowered.observed_names
                        if n not in getattr(self.lowered.data, "shares", {})]
        return Posterior(
            draws=draws, sample_stats=stats,
            n_grad_evals=n_grad_evals, compile_seconds=compile_seconds,
            sampling_seconds=seconds,
            observed_data={name: np.asarray(self.lowered.data.arrays.get(
                name, self.lowered.data.sizes.get(name))) for name in observed},
            labels={name: self.lowered.element_names(name)
                    for name in self.lowered.data.missing},
            dims={name: list(names) for name, names in self.dims.items()},
            attrs={"inference_library": "pplc", "inference_library_version": __version__,
                   **attrs},
            roles=self.roles,
        )

    @functools.cached_property
    def roles(self) -> dict[str, str]:
        """Each recorded variable's role in the summary, "latent" or "deterministic", in
        the order the model declares them (by the first statement that defines each).

        Roles are those of the model as written: a noncentered `theta` is the user's
        latent even though the sampler draws `theta_std`; imputed entries of partly
        observed data are latents; a summed-out `z` is a latent and its probabilities
        `z_prob` a deterministic. A pass's internal variables never appear."""
        written = getattr(self, "unoptimized_graph", self.graph)

        def variable(name):
            return written[name] if name in written else self.graph[name]

        def defined_at(name):  # its first `~` or `=` (for data with missing entries, the `~`)
            spans = [piece.span for piece in variable(name).pieces] or [variable(name).span]
            return min((span.line, span.column) for span in spans)

        roles: dict[str, str] = {}
        names = sorted(self.lowered.recorded_names, key=defined_at)
        for name in names:
            if variable(name).internal:
                continue
            latent = variable(name).kind is Kind.LATENT or name in self.lowered.data.missing
            roles[name] = "latent" if latent else "deterministic"
            if self.graph[name].marginalized:
                roles[f"{name}_prob"] = "deterministic"
        return roles

    @functools.cached_property
    def dims(self) -> dict[str, list[str]]:
        """ArviZ dimension names of each variable's axes, named after the model's sizes
        and loops (`pplc.backends.dims`), for every group of `Posterior.to_arviz`.

        A summed-out discrete latent `z` is drawn as values (its dims without the last,
        `z_value`) and recorded as probabilities `z_prob` (all of them)."""
        dims = variable_dims(self.graph, self.lowered.shapes)
        for variable in self.graph.variables():
            if variable.marginalized and dims.get(variable.name):
                dims[f"{variable.name}_prob"] = dims[variable.name]
                dims[variable.name] = dims[variable.name][:-1]
        return dims


# Every public method raises PplcError for a user's mistake, InternalError for pplc's.
guard_public_methods(PosteriorBuilding)
