"""What a conditioned model does with draws (a mixin of `ConditionedModel`): prior and
posterior predictive draws, the pointwise log-likelihood and log prior that ArviZ's LOO and
prior-sensitivity tools read, predictions at new inputs from a fit, and matching a fit's
draws (saved, or made in another process) to this model's parameters.

Split from model.py by job: conditioned.py holds the densities, sampling and fitting.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

from pplc.jax_x64 import jax
import jax.numpy as jnp
import numpy as np

from pplc.backends.plan import prior_refusal
from pplc.errors import error, guard_public_methods
from pplc.inference.posterior import Posterior
from pplc.ir.graph import Kind
from pplc.options import check_options, check_posterior

if TYPE_CHECKING:
    from pplc.conditioned import ConditionedModel


@functools.partial(jax.jit, static_argnums=0)
def _constrain_all(constrain, flat, data):
    return jax.lax.map(lambda u: constrain(u, data), flat, batch_size=256)


@functools.partial(jax.jit, static_argnums=0)
def _simulate_all(simulate, keys, data):
    return jax.lax.map(lambda key: simulate(key, data), keys, batch_size=256)


@functools.partial(jax.jit, static_argnums=0)
def _unconstrain_all(unconstrain, values, data):
    return jax.lax.map(lambda v: unconstrain(v, data), values, batch_size=256)


@functools.partial(jax.jit, static_argnums=0)
def _predictive_given_all(predict_given, keys, values, data):
    return jax.lax.map(lambda kv: predict_given(kv[0], kv[1], data), (keys, values),
                       batch_size=256)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _predictive_all(predict, log_likelihood, keys, flat, data):
    """Predictive draws and (unless `log_likelihood` is None) pointwise log-likelihoods."""
    return jax.lax.map(lambda ku: (predict(ku[0], ku[1], data),
                                   {} if log_likelihood is None else log_likelihood(ku[1], data)),
                       (keys, flat), batch_size=256)


class Prediction:
    """Predictive draws, log-likelihoods and fits' draws, for `ConditionedModel`."""

    def prior_predictive(self, draws: int = 1000, seed: int = 0, *, internal: bool = False
                         ) -> dict[str, np.ndarray]:
        """Draws from the prior and the prior predictive by forward simulation: name ->
        array (draws, *shape) for every latent, observed and deterministic variable. The
        supplied observations are ignored (their shapes are kept)."""
        options = check_options(draws=draws, seed=seed)
        draws, seed = options["draws"], options["seed"]
        refusal = prior_refusal(self.graph)
        if refusal is not None:
            raise error(refusal[0], self.graph.source, refusal[1],
                        hint="leave the observations out of the data instead: NUTS then "
                             "samples them with the parameters, from the prior")
        keys = jax.random.split(jax.random.PRNGKey(seed), draws)
        out = _simulate_all(self._programs.simulate_prior, keys, self.data)
        return {k: np.asarray(v) for k, v in out.items()
                if internal or not self.graph[k].internal}

    def sample_prior(self, draws: int = 1000, seed: int = 0) -> Posterior:
        """`prior_predictive` as a Posterior marked `prior`: its ArviZ groups are prior
        (parameters) and prior_predictive (observations), with the model's dims."""
        check_options(draws=draws, seed=seed)
        started = time.perf_counter()
        values = self.prior_predictive(draws=draws, seed=seed)
        observed = {v.name for v in self.graph.of_kind(Kind.OBSERVED)}
        return Posterior(
            draws={k: v[None] for k, v in values.items() if k not in observed},
            sample_stats={}, n_grad_evals=0, compile_seconds=0.0,
            sampling_seconds=time.perf_counter() - started,
            posterior_predictive={k: v[None] for k, v in values.items() if k in observed},
            dims=self.dims, attrs={"inference_method": "prior", "seed": seed}, prior=True,
            roles=self.roles)

    def posterior_predictive(self, posterior: Posterior, seed: int = 0) -> dict[str, np.ndarray]:
        """Replicated observations, one per posterior draw: name -> (chain, draw, *shape).

        On the data `posterior` was fitted to, this also stores them, and the pointwise
        log-likelihood, on `posterior` (see `predictive`), so `posterior.to_arviz()` carries
        them for `arviz.loo` and PPC plots. On other data (new covariates, new sizes, the
        observations left out) it predicts at those inputs from the fitted parameters,
        without re-sampling and without changing `posterior`: see `predictions`.

        Example:
            >>> new = model.condition({"N": 3, "K": 3, "X": X_new})    # doctest: +SKIP
            >>> new.posterior_predictive(posterior)["y"].shape          # doctest: +SKIP
            (4, 1000, 3)
        """
        check_posterior(posterior, "posterior_predictive")
        seed = check_options(seed=seed)["seed"]
        if self._is_fit_of(posterior):
            self.predictive(posterior, seed)
            return posterior.posterior_predictive
        return self._predict(posterior, seed)[2]

    def predictive(self, posterior: Posterior, seed: int = 0) -> None:
        """Add posterior predictive draws and the pointwise log-likelihood to `posterior`
        (ArviZ groups posterior_predictive and log_likelihood), from its parameters.

        Only for the data `posterior` was fitted to: predictions at other data are not
        the fit's, so `predictions` returns them apart."""
        check_posterior(posterior, "predictive")
        seed = check_options(seed=seed)["seed"]
        if not self._is_fit_of(posterior):
            raise error("these draws were fitted to other data (or another model): "
                        "predictive draws at this data would not belong to them",
                        hint="use posterior_predictive(posterior) or predictions(posterior),"
                             " which return predictions at this data without changing "
                             "the fit")
        positions = self._fit_positions(posterior)
        predictions, log_lik = self._predictive_draws(positions, seed)
        summed_predictions, summed_log_lik = self._summed_out_predictive(posterior, positions,
                                                                         seed)
        posterior.posterior_predictive = {**predictions, **summed_predictions}
        posterior.log_likelihood = {**log_lik, **summed_log_lik}
        posterior.log_prior = self._log_prior(posterior, positions)
        for name in summed_predictions:
            posterior.observed_data.setdefault(name, np.asarray(self.data[name]))

    def _summed_out_predictive(self, posterior: Posterior, positions: np.ndarray, seed: int
                               ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Predictive draws and pointwise log-likelihood of the observations that a
        summed-out discrete latent took into its sum (docs/prediction.md):

        - replicates drawn on the model as written, given each posterior draw of every
          latent, the discrete ones' jointly drawn values included: the posterior
          predictive of the model the user wrote, where z is a parameter;
        - log-likelihoods with the latent summed out (a mixture's log p(y[n] | parameters),
          a chain's log p(y[t] | y[-t], parameters): inference/summed_out_likelihood.py),
          as leave-one-out needs.

        What cannot be produced is named in a warning, never left out quietly."""
        written = getattr(self, "_written", None)
        produced = set(self.lowered.observed_names)
        lost = [] if written is None else \
            [v.name for v in written.graph.of_kind(Kind.OBSERVED) if v.name not in produced]
        if not lost:
            return {}, {}
        from pplc.inference.summed_out_likelihood import summed_out_log_likelihood

        chains, n, _ = positions.shape
        log_lik, unsplit = summed_out_log_likelihood(
            written.graph, self.graph, self.constrain_draws(positions), self.data,
            (chains, n), written.shapes)
        latents = [v.name for v in written.graph.of_kind(Kind.LATENT)]
        missing = [name for name in latents if name not in posterior.draws]
        predictions = {} if missing else \
            self._summed_out_predictions(posterior, lost, seed, latents)
        import warnings
        if missing:
            warnings.warn(f"no posterior predictive draws for {', '.join(map(repr, lost))}: "
                          f"the draws lack {', '.join(map(repr, missing))}", RuntimeWarning,
                          stacklevel=3)
        if unsplit:
            summed = [v.name for v in self.graph.variables() if v.marginalized]
            warnings.warn(f"no pointwise log-likelihood for {', '.join(map(repr, unsplit))}: "
                          f"summing out {', '.join(map(repr, summed))} took "
                          f"{'their statements' if len(unsplit) > 1 else 'its statement'} into "
                          "one sum that pplc splits into one term per observation only when "
                          "one variable's elements pair with the latent's", RuntimeWarning,
                          stacklevel=3)
        return predictions, log_lik

    def _log_prior(self, posterior: Posterior, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Each latent's log prior at each draw, (chain, draw), on the model in the user's
        parameterization (`pplc.inference.log_prior`); a warning names the statements
        that belong to no latent's prior."""
        from pplc.inference.log_prior import log_prior, log_prior_program

        chains, n, dim = positions.shape
        reparameterized = any(v.recover for v in self.graph.variables())
        # Kept with the compiled programs, so new data of the same shapes compile nothing.
        if "log_prior" not in self._shared:
            lowered = self._parameterized_as_written if reparameterized else self._programs
            self._shared["log_prior"] = (lowered, log_prior_program(lowered))
        lowered, program = self._shared["log_prior"]
        if not reparameterized:
            flat = jnp.asarray(positions.reshape(chains * n, dim))
        else:
            values = {name: jnp.asarray(np.asarray(posterior.draws[name], np.float64)
                                        .reshape((chains * n,) + tuple(lowered.shapes[name])))
                      for name in self._fit_latents()}
            flat = _unconstrain_all(lowered.unconstrain, values, self.data)
        terms, unassigned = log_prior(program, flat, self.data)
        if unassigned:
            import warnings
            warnings.warn("the log_prior group leaves out the terms of "
                          f"{', '.join(repr(n) for n in unassigned)}: they are no one "
                          "latent's prior (a factor statement, or the sum over a summed-out "
                          "discrete latent of its prior and its observations' likelihood)",
                          RuntimeWarning, stacklevel=3)
        return {name: np.asarray(v).reshape(chains, n) for name, v in terms.items()}

    def predictions(self, posterior: Posterior, seed: int = 0) -> Posterior:
        """Predictions at this model's data from a fit to other data, with no re-sampling.

        The data may have new covariates and new sizes, and may leave the observed
        variables out (`{"N": 3, "K": 3, "X": X_new}` without `y`): those are then drawn,
        one replicate per posterior draw, from their distribution at the fitted
        parameters. The parameters' sizes must be the fit's (a hierarchical model's
        groups, say); their draws are taken by name in the user's parameterization, so
        the fit may come from another process (`pplc.load`).

        Returns a `Posterior` with the same chains and draws: the fit's parameters and the
        deterministics recomputed at this data (`draws`), the drawn observations
        (`posterior_predictive`, ArviZ group `predictions`), and, for observations that
        the data do give, their values and pointwise log-likelihood (a held-out set's).
        Raises `PplcError` when the fit does not belong to this model."""
        check_posterior(posterior, "predictions")
        seed = check_options(seed=seed)["seed"]
        started = time.perf_counter()
        model, positions, predicted, log_lik, left_out = self._predict(posterior, seed)
        result = model._posterior(positions, {}, 0, 0.0, time.perf_counter() - started,
                                  {"inference_method": "predictions", "seed": seed},
                                  observed=[name for name in model.lowered.observed_names
                                            if name not in left_out])
        result.posterior_predictive = predicted
        result.log_likelihood = {k: v for k, v in log_lik.items() if k not in left_out}
        result.predictions = True
        return result

    def _predict(self, posterior: Posterior, seed: int):
        """(the model that predicts, the fit's positions in its space, predictive draws,
        pointwise log-likelihoods, the observations left out)."""
        self._check_fit(posterior)
        left_out = self._left_out(posterior)
        model = self._predicting_model(left_out)
        model._check_predictable(left_out)
        positions = model._fit_positions(posterior)
        predicted, log_lik = model._predictive_draws(positions, seed)
        summed = left_out - set(model.lowered.observed_names)
        if summed:   # folded into a sum over a discrete latent: drawn on the model as written
            predicted.update(model._summed_out_predictions(posterior, summed, seed))
        return model, positions, predicted, log_lik, left_out

    def _summed_out_predictions(self, posterior: Posterior, names, seed: int,
                                latents=None) -> dict[str, np.ndarray]:
        """Draws of observations that a summed-out discrete latent took into its sum, on
        the model as written, given each posterior draw of `latents` (default: the fit's
        continuous latents). A latent not given is drawn from its distribution given its
        parents: at new inputs (a mixture's y), the new units' assignments, so that
        p(y_new | parameters) = sum_z p(z | parameters) p(y_new | z, ...)."""
        written = self._written
        chains, n = next(iter(posterior.draws.values())).shape[:2]
        latents = self._fit_latents() if latents is None else latents
        values = {name: jnp.asarray(np.asarray(posterior.draws[name]).reshape(
            (chains * n,) + tuple(written.shapes[name]))) for name in latents}
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 1), chains * n)
        drawn = _predictive_given_all(written.predict_given, keys, values, self.data)
        return {name: np.asarray(drawn[name]).reshape((chains, n) + drawn[name].shape[1:])
                for name in names}

    # ------------------------------------------------------------ using a fit's draws
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

    def _refuse_if_predicting_only(self) -> None:
        if self._refusal is not None:
            raise self._refusal

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

    def _left_out(self, posterior: Posterior) -> frozenset[str]:
        """The observations of the model (its `~` variables given as data) that this data
        leave out and the fit did not draw: they are to be predicted."""
        observed = {v.name for v in self.model.graph.of_kind(Kind.OBSERVED)} \
            if self.model is not None else set()
        return self._stand_ins | frozenset(
            name for name in observed if name in self.graph
            and self.graph[name].kind is not Kind.OBSERVED and name not in posterior.draws)

    def _predicting_model(self, left_out: frozenset[str]) -> "ConditionedModel":
        if left_out == self._stand_ins:
            return self
        cache = self.__dict__.setdefault("_predicting_models", {})
        if left_out not in cache:
            cache[left_out] = self.model._predicting(self.lowered.data, left_out, self,
                                                     self._disabled_passes)
        return cache[left_out]

    def _check_predictable(self, left_out: frozenset[str]) -> None:
        """Predictions draw each left-out observation from its distribution given the
        parameters and the data. Refused where that is not what the model says: when a
        variable reads the left-out one (its values would be needed, not drawn), or when it
        reads its own earlier elements (a forecast must be simulated step by step)."""
        written = self.unoptimized_graph
        for name in sorted(left_out):
            variable = written[name]
            if name not in self.lowered.observed_names:
                chains = [v.name for v in self.graph.variables()
                          if v.marginalized and written[v.name].recursive]
                if chains:
                    raise error(f"cannot predict '{name}' at new inputs: the Markov chain "
                                f"{', '.join(map(repr, chains))} it depends on would have "
                                "to be simulated step by step, which is not supported yet",
                                written.source, variable.span,
                                hint=f"give '{name}' in the data")
            readers = sorted(n for n in written.dag.successors(name) if n != name)
            if readers:
                raise error(f"cannot predict '{name}' from the fit alone: "
                            f"'{readers[0]}' reads it", written.source, variable.span,
                            hint=f"give '{name}' in the data")
            if variable.recursive:
                raise error(f"cannot predict '{name}' at new inputs: it reads its own "
                            "earlier elements, and forecasting by simulating them one after "
                            "another is not supported yet", written.source, variable.span,
                            hint=f"give '{name}' in the data for one-step-ahead predictions")
        if self.lowered.data.missing:
            name = sorted(self.lowered.data.missing)[0]
            raise error(f"the data have missing entries in '{name}': predictions from a "
                        "fit to other data cannot impute them",
                        hint=f"leave '{name}' out of the data to predict all of it, or give "
                             "complete values")

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
        flat = np.asarray(_unconstrain_all(self._programs.unconstrain, values, self.data))
        bad = ~np.isfinite(flat)
        if bad.any():
            column = int(np.argwhere(bad)[0][1])
            block = next(b for b in self.lowered.layout if b.offset <= column
                         < b.offset + b.size)
            raise error(f"the fitted values of '{block.name}' lie outside its support at this "
                        "data", hint="its bounds depend on the data; predict at data that "
                                     "keep the fitted values inside them")
        return flat.reshape(chains, n, self.dim)

    def _predictive_draws(self, positions: np.ndarray, seed: int
                          ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Predictive draws and pointwise log-likelihood at (chain, draw, dim) positions;
        no log-likelihood of observations that only stand-ins hold."""
        chains, n, dim = positions.shape
        flat = jnp.asarray(positions.reshape(chains * n, dim))
        keys = jax.random.split(jax.random.PRNGKey(seed), chains * n)
        given = set(self.lowered.observed_names) - self._stand_ins
        predictions, log_lik = _predictive_all(
            self._programs.predict, self._programs.log_likelihood if given else None, keys,
            flat, self.data)
        reshape = lambda v: np.asarray(v).reshape((chains, n) + v.shape[1:])  # noqa: E731
        return ({k: reshape(v) for k, v in predictions.items()},
                {k: reshape(v) for k, v in log_lik.items()})

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
guard_public_methods(Prediction)
