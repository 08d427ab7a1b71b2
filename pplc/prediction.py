"""What a conditioned model does with draws (a mixin of `ConditionedModel`): prior and
posterior predictive draws, the pointwise log-likelihood and log prior that ArviZ's LOO and
prior-sensitivity tools read, and predictions at new inputs from a fit.

Split from model.py by job: conditioned.py holds the densities, sampling and fitting;
fit_matching.py (the `FitMatching` mixin this one extends) matches a fit's draws, saved or
made in another process, to this model's parameters.
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
from pplc.fit_matching import FitMatching, unconstrain_all
from pplc.fit_matching import tuple_text  # noqa: F401 - conditioned.py imports it from here
from pplc.inference.posterior import Posterior
from pplc.ir.graph import Kind
from pplc.options import check_options, check_posterior

if TYPE_CHECKING:
    from pplc.conditioned import ConditionedModel


@functools.partial(jax.jit, static_argnums=0)
def _simulate_all(simulate, keys, data):
    return jax.lax.map(lambda key: simulate(key, data), keys, batch_size=256)


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


class Prediction(FitMatching):
    """Predictive draws and log-likelihoods, for `ConditionedModel`; `FitMatching` gives
    them the fit's draws as this model's positions."""

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
            flat = unconstrain_all(lowered.unconstrain, values, self.data)
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

    # ------------------------------------------------------------ predicting at new data
    def _refuse_if_predicting_only(self) -> None:
        if self._refusal is not None:
            raise self._refusal

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


# Every public method raises PplcError for a user's mistake, InternalError for pplc's.
guard_public_methods(Prediction)
