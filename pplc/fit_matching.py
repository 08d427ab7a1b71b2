"""Matching a fit's draws to a conditioned model (a mixin of `ConditionedModel`, through
`Prediction`): whether draws are this model's fit on this data (the fingerprints recorded
with every fit), the fit's draws as positions in this model's unconstrained space (the
recorded ones, or the parameters' draws mapped by name, checked for shape and support),
and positions back to the model's named draws.

Split from prediction.py by job: prediction.py draws predictions and log-likelihoods from
the positions this module gives it; conditioned.py records the fingerprints with each fit.
"""

from __future__ import annotations

import functools

from pplc.jax_x64 import jax
import jax.numpy as jnp
import numpy as np

from pplc.errors import error, guard_public_methods
from pplc.inference.posterior import Posterior
from pplc.ir.graph import Kind


@functools.partial(jax.jit, static_argnums=0)
def _constrain_all(constrain, flat, data):
    return jax.lax.map(lambda u: constrain(u, data), flat, batch_size=256)


@functools.partial(jax.jit, static_argnums=0)
def unconstrain_all(unconstrain, values, data):
    """Named values (draws first) to unconstrained positions, in one compiled call;
    public because prediction.py maps the user's parameterization with it too."""
    return jax.lax.map(lambda v: unconstrain(v, data), values, batch_size=256)


class FitMatching:
    """A fit's draws matched to this model's parameters, for `ConditionedModel`."""

    @functools.cached_property
    def model_hash(self) -> str:
        """A fingerprint of the model's text (recorded with every fit)."""
        from pplc.inference.saved import text_hash
        return text_hash(self.graph.source.text)

    @functools.cached_property
    def data_hash(self) -> str:
        """A fingerprint of the data this model is conditioned on (recorded with every fit)."""
        from pplc.inference.saved import data_hash
        shares = getattr(self.lowered.data, "shares", {})   # a run's rows: their digest
        return data_hash(self.lowered.data.sizes, {
            k: np.frombuffer(shares[k].digest, np.uint8) if k in shares else v
            for k, v in self.lowered.data.arrays.items()})

    @functools.cached_property
    def _layout(self) -> list:
        """The unconstrained vector's blocks: [name, shape, size], saved with the draws."""
        return [[b.name, list(b.shape), b.size] for b in self.lowered.layout]

    def _is_fit_of(self, posterior: Posterior) -> bool:
        """Were these draws made by this model on this data? Draws made elsewhere (by hand,
        or by another program) without fingerprints count as this model's when they carry
        positions in its layout, as before fingerprints were recorded."""
        attrs = posterior.attrs
        if self._stand_ins:
            return False
        if "model_hash" not in attrs and "data_hash" not in attrs:
            return attrs.get("_positions") is not None and not posterior.predictions
        return (attrs.get("model_hash") == self.model_hash
                and attrs.get("data_hash") == self.data_hash and not posterior.predictions
                and attrs.get("_layout", self._layout) == self._layout)

    def _fit_positions(self, posterior: Posterior) -> np.ndarray:
        """The fit's draws as (chain, draw, dim) positions in this model's unconstrained
        space: the recorded positions when they are this model's on this data (exact),
        otherwise the parameters' draws mapped by `unconstrain`."""
        positions = posterior.attrs.get("_positions")
        if positions is not None and self._is_fit_of(posterior):
            return np.asarray(positions)
        return self._positions_from_draws(posterior)

    def _fit_latents(self) -> list[str]:
        """The user's latents whose draws determine a point of this model: its latents as
        written, less summed-out discrete ones (recomputed from the rest)."""
        return [name for name, role in self.roles.items() if role == "latent"
                and not self.graph[name].marginalized and name not in self.lowered.data.missing]

    def _check_fit(self, posterior: Posterior) -> None:
        """The fit is one of this model: every latent of the fit is one of the model's."""
        if posterior.prior:
            raise error("these are draws from the prior, not a fit",
                        hint="predict from draws of the posterior (sample or fit)")
        if not posterior.draws:
            raise error("the fit holds no draws")
        # A latent of the fit is a latent here too, or one of the model's observations
        # (the fit may have imputed some of their entries).
        ours = {name for name, role in self.roles.items() if role == "latent"}
        if self.model is not None:
            ours |= {v.name for v in self.model.graph.of_kind(Kind.OBSERVED)}
        foreign = [name for name, role in posterior.roles.items()
                   if role == "latent" and name not in ours]
        if foreign:
            where = posterior.attrs.get("_model_path")
            raise error(f"the fit has latent{'s' if len(foreign) > 1 else ''} "
                        f"{', '.join(repr(n) for n in foreign)}, which "
                        f"{self.graph.source.path} does not declare: it is the fit of "
                        "another model" + (f" ({where})" if where else ""),
                        hint="predict with the model the fit was made with")
        if posterior.attrs.get("model_hash") not in (None, self.model_hash):
            import warnings
            warnings.warn(f"the fit was made with another text of the model than "
                          f"{self.graph.source.path}; its parameters are used by name",
                          RuntimeWarning, stacklevel=3)

    def _positions_from_draws(self, posterior: Posterior) -> np.ndarray:
        """Map the fit's parameter draws (the user's latents, by name) to this model's
        unconstrained space, checking that each is there with this model's shape."""
        names = self._fit_latents()
        chains, n = posterior.num_chains, posterior.num_draws
        values = {}
        for name in names:
            if name not in posterior.draws:
                raise error(f"the fit has no draws of '{name}', a latent of "
                            f"{self.graph.source.path}: it is the fit of another model",
                            self.graph.source, self.graph[name].span,
                            hint="predict with the model the fit was made with")
            draws = np.asarray(posterior.draws[name], np.float64)
            shape = tuple(self.lowered.shapes[name])
            if draws.shape[2:] != shape:
                raise error(f"'{name}' has shape {tuple_text(draws.shape[2:])} in the fit but "
                            f"{tuple_text(shape)} with this data",
                            self.graph.source, self.graph[name].span,
                            hint="predictions reuse the fitted parameters, so the sizes "
                                 "they depend on must stay the fit's")
            values[name] = jnp.asarray(draws.reshape((chains * n,) + shape))
        flat = np.asarray(unconstrain_all(self._programs.unconstrain, values, self.data))
        bad = ~np.isfinite(flat)
        if bad.any():
            column = int(np.argwhere(bad)[0][1])
            block = next(b for b in self.lowered.layout if b.offset <= column
                         < b.offset + b.size)
            raise error(f"the fitted values of '{block.name}' lie outside its support at this "
                        "data", hint="its bounds depend on the data; predict at data that "
                                     "keep the fitted values inside them")
        return flat.reshape(chains, n, self.dim)

    def constrain_draws(self, positions) -> dict[str, np.ndarray]:
        """Unconstrained positions (chains, draws, dim), in the layout of `param_names`, as
        the model's named draws: name -> (chains, draws, *shape), each latent as written
        and each recorded deterministic, as `sample` and `fit` put them in their
        Posterior's `draws` (its `attrs["_positions"]` are such positions).

        Why public: draws made outside `sample` (another sampler over
        `unconstrained_log_density`, a benchmark timing this step) become the model's
        values the way pplc's own do, in one compiled call for all of them. A summed-out
        discrete latent is not among them: `sample` draws its values given these, at
        random. Positions of another shape are refused."""
        positions = np.asarray(positions, np.float64)
        if positions.ndim != 3 or positions.shape[2] != self.dim:
            raise error(f"expected unconstrained positions of shape (chains, draws, "
                        f"{self.dim}), got {tuple_text(positions.shape)}",
                        hint="one row of param_names' layout per draw, e.g. a Posterior's "
                             "attrs['_positions']")
        chains, n, dim = positions.shape
        flat = jnp.asarray(positions.reshape(chains * n, dim))
        shares = getattr(self.lowered.data, "shares", {})   # a run: no process has them all
        try:
            values = _constrain_all(self._programs.constrain, flat,
                                    {k: v for k, v in self.data.items() if k not in shares})
        except KeyError as e:
            if not shares:
                raise
            raise error(f"a recorded value reads {e}, split over the processes of the run, "
                        "which no process holds whole (docs/scaling.md)",
                        hint="sample it in one process, or leave the per-row value out of "
                             "the model and compute it from the draws afterwards") from None
        return {name: np.asarray(v).reshape((chains, n) + v.shape[1:])
                for name, v in values.items()}


def tuple_text(shape: tuple[int, ...]) -> str:
    """A shape as Python writes a tuple: (3,), (2, 4), ()."""
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


# Every public method raises PplcError for a user's mistake, InternalError for pplc's.
guard_public_methods(FitMatching)
