"""A model with its data (`ConditionedModel`): its log densities and values as plain JAX
functions, and sampling them with NUTS. Its other jobs are mixins, one a module: fitting
(ADVI, MAP, Laplace, Pathfinder) is `Fitting`, in fitting.py; building the `Posterior` from
a run's positions, with the roles and dims ArviZ reads, is `PosteriorBuilding`, in
posterior_building.py; what it does with the draws (prediction, log-likelihoods) is
`Prediction`, in prediction.py, and matching saved fits to the model is `FitMatching`, in
fit_matching.py.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple

from pplc.jax_x64 import jax
import jax.numpy as jnp
import numpy as np

from pplc.backends.lower import LoweredModel
from pplc.errors import PplcError, error, guard_public_methods
from pplc.fitting import Fitting
from pplc.inference.initialize import initial_positions
from pplc.inference.keys import seed_keys
from pplc.inference.mcmc import sample_nuts
from pplc.inference.posterior import Posterior
from pplc.inference.distributed import check_distributed, check_same_data
from pplc.inference.sharding import axes_to_split, should_split
from pplc.ir.graph import Graph, Kind
from pplc.options import check_options, check_params
from pplc.posterior_building import PosteriorBuilding
from pplc.prediction import Prediction, tuple_text
from pplc.resources import check_run_size, recorded_values

if TYPE_CHECKING:
    from pplc.model import Model


@functools.lru_cache(maxsize=16)
def _jit_value_and_grad(log_density):
    return jax.jit(jax.value_and_grad(log_density))


class Programs(NamedTuple):
    """The functions that key compiled programs, shared by models conditioned on data of
    the same shapes. `log_density` is one bound-method object kept alive here: the
    executable caches hold their function keys weakly, so a fresh `lowered.log_density`
    per conditioned model would let them go with it."""

    lowered: LoweredModel
    log_density: Callable
    # Further programs made on first use and kept for the same shapes: the lowering in
    # the user's parameterization and the log-prior program (`_log_prior`).
    cache: dict


class ConditionedModel(Fitting, PosteriorBuilding, Prediction):
    """A model with its data: log densities as plain JAX functions, and sampling."""

    model: "Model | None" = None             # the Model conditioned (set by condition)
    _disabled_passes: tuple[str, ...] = ()
    _stand_ins: frozenset[str] = frozenset()  # observations given stand-ins, to be predicted
    _refusal: PplcError | None = None         # why it cannot be sampled (only predict)

    def __init__(self, lowered: LoweredModel, programs: Programs | None = None):
        self.lowered = lowered
        self.data = lowered.runtime_data()
        # `programs`: an earlier lowering of the same model at the same sizes (or this one),
        # whose functions key every compiled program (samplers, constrain, predictive).
        # They read the data only through their `data` argument, so conditioning on new
        # data of the same shapes compiles nothing.
        programs = programs or Programs(lowered, lowered.log_density, {})
        self._programs = programs.lowered
        self._log_density = programs.log_density
        self._shared = programs.cache

    @functools.cached_property
    def _values_per_draw(self) -> int:
        """How many values each draw records: every latent and deterministic element."""
        return recorded_values(self.lowered.shapes, [
            v.name for v in self.graph.of_kind(Kind.LATENT, Kind.DETERMINISTIC)])

    @property
    def graph(self) -> Graph:
        return self.lowered.graph

    @property
    def dim(self) -> int:
        return self.lowered.dim

    @property
    def param_names(self) -> list[str]:
        return self.lowered.param_names

    def graph_svg(self) -> str:
        """The model as written, as a PGM picture (SVG text), with the data's sizes on
        its plates (`J = 8`); notebooks show it inline."""
        from pplc.ir.graphviz import to_svg
        return to_svg(getattr(self, "unoptimized_graph", self.graph),
                      dict(self.lowered.data.sizes))

    def _repr_svg_(self) -> str | None:
        return svg_or_none(self.graph_svg)

    def unconstrained_log_density(self, u) -> jax.Array:
        """log p at a flat unconstrained vector, log-Jacobians included (jit/grad-able)."""
        self._refuse_if_predicting_only()
        return self._log_density(self._flat(u), self.data)

    def _flat(self, u) -> jax.Array:
        """`u` as the sampler's flat vector, refused unless it has `dim` entries."""
        u = jnp.asarray(u)
        if u.shape != (self.dim,):
            raise error(f"expected a flat vector of the {self.dim} unconstrained parameters, "
                        f"got shape {tuple_text(u.shape)}",
                        hint="the layout is param_names; unconstrain(params) makes one")
        return u

    def log_density(self, params: Mapping[str, Any]) -> jax.Array:
        """log p(params, data) at constrained latent values, without the Jacobian terms.

        `params` are the model's own latents as written (`theta`, not the `theta_std` of
        a noncentered rewrite), and so is the density: the automatic reparameterization
        changes how NUTS samples, not this function.
        """
        self._refuse_if_predicting_only()
        lowered = self._parameterized_as_written
        self._check_params(params, "log_density")
        u = lowered.unconstrain(params, self.data)
        env, log_jacobian = lowered._values(u, self.data)
        value = lowered.log_density(u, self.data) - log_jacobian
        # Outside the support the density is 0: -inf, not the nan of log(-1) in the inverse
        # transform, nor the density at another point (a simplex that does not sum to one
        # maps to one that does): the values must come back from u unchanged. A nan given
        # stays nan.
        inside = jnp.all(jnp.isfinite(u))
        for block in lowered.layout:
            if block.name not in lowered.data.missing:
                given = jnp.asarray(params[block.name], jnp.float64)
                inside &= jnp.allclose(env[block.name], given, rtol=1e-6, atol=1e-12)
        given_nan = jnp.any(jnp.stack([jnp.any(jnp.isnan(jnp.asarray(params[b.name],
                                                                      jnp.float64)))
                                       for b in lowered.layout] or [jnp.bool_(False)]))
        return jnp.where(inside | given_nan, value, -jnp.inf)

    def _check_params(self, params, what: str) -> None:
        lowered = self._parameterized_as_written
        known = {v.name for v in self.graph.variables()} \
            | {v.name for v in getattr(self, "unoptimized_graph", self.graph).variables()}
        check_params(params, {b.name: tuple(b.shape) for b in lowered.layout}, known, what)

    @functools.cached_property
    def _parameterized_as_written(self) -> LoweredModel:
        if not any(v.recover for v in self.graph.variables()):
            return self.lowered
        return self._lower_as_parameterized()

    def constrain(self, u) -> dict[str, jax.Array]:
        return self.lowered.constrain(self._flat(u), self.data)

    def unconstrain(self, params: Mapping[str, Any]) -> jax.Array:
        """The user's latent values -> the sampler's flat vector (the inverse of
        `constrain`); a pass's internal variables are computed from them."""
        self._check_params(params, "unconstrain")
        return self.lowered.unconstrain(params, self.data)

    def sample(self, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = 0,
               *, max_tree_depth: int = 10, target_accept: float = 0.8,
               chain_method: str = "auto", init: "str | Posterior" = "uniform",
               metric: str = "auto", progress: "bool | Callable | None" = None,
               shard_data: "bool | str" = False) -> Posterior:
        """Draw from the posterior with NUTS (Stan's windowed warmup: step size and metric).

        Initial points are uniform(-2, 2) on the unconstrained space, as in Stan. Draws come
        back in the user's parameterization, deterministics included. `init="pathfinder"`
        starts the chains from distinct draws of multi-path Pathfinder instead (as Stan and
        PyMC offer), which skips the long walk from a poor starting point. `init=posterior`
        continues a fit (one loaded with `pplc.load`, say) from the last draw of each of
        its chains; warmup still adapts the step size and metric anew, so a short one will
        do. `init={"tau": 1.0, ...}` starts the latents given there (in your
        parameterization) and the others by the uniform rule, after checking the values
        (`pplc.initial_values`).

        `progress`: None (default) shows a bar in a notebook or on a terminal and stays
        quiet elsewhere; True always, False never; a callable gets
        `(phase, done, total, divergences)` after each chunk of iterations.

        `shard_data=True` splits the arrays of observations across the JAX devices, as the
        plan says (`pplc ir --plan`; docs/scaling.md); the result is the same.
        `shard_data="auto"` splits them when there are several devices and each device's
        share is large enough to pay for the collective (the plan says which).

        `metric`: "diag" (Stan's), "dense" (Stan's dense_e), or adapted from draws and
        gradients by minimizing the Fisher divergence (inference/metric.py): "diag-grad"
        or "low-rank" (low-rank plus diagonal, for correlated posteriors); "auto" (the
        default) chooses from the model's dimension (`inference.metric.choose_metric`) and
        the warmup draws, and the fit's `attrs["metric"]` says which ran; for "low-rank",
        `attrs["metric_directions"]` says how many eigen-directions each chain's metric
        kept (0: the Fisher diagonal alone).
        """
        self._refuse_if_predicting_only()
        options = check_options(chains=chains, warmup=warmup, draws=draws, seed=seed,
                                max_tree_depth=max_tree_depth, target_accept=target_accept,
                                chain_method=chain_method, metric=metric)
        chains, warmup, draws, seed = (options[k] for k in ("chains", "warmup", "draws", "seed"))
        max_tree_depth, target_accept = options["max_tree_depth"], options["target_accept"]
        from pplc.inference.metric import choose_metric
        metric = choose_metric(options["metric"], self.dim)
        check_run_size(chains, draws, self.dim, self._values_per_draw, self.lowered.data.sizes,
                       dense=metric in ("dense", "low-rank"))
        if not isinstance(init, (Posterior, str, Mapping)):
            raise error(f"unknown init {init!r}",
                        hint="init: uniform, pathfinder, a Posterior to continue from, or "
                             "a dict of initial values")
        shard_data = should_split(shard_data, self.lowered.plan.sharding)
        if jax.process_count() > 1:   # a jax.distributed run (inference/distributed.py)
            chain_method = check_distributed(shard_data, chain_method, chains)
            bound = self.lowered.data
            check_same_data((v.name for v in self.model.graph.variables()),
                            {**bound.sizes, **bound.arrays, **getattr(bound, "shares", {})},
                            getattr(self.lowered.plan.sharding, "axes", {}),
                            bound.source.path if bound.source else "the data given",
                            self.graph.source.text)
            if getattr(bound, "shares", None):   # refused now, not after the sampling
                self.constrain_draws(np.zeros((1, 1, self.dim)))
        started = time.perf_counter()
        init_key, run_key = seed_keys(seed)
        log_density = self._log_density
        if init == "pathfinder":
            from pplc.inference.pathfinder import init_from_pathfinder, pathfinder
            starts = self._initial_positions(4, init_key)   # a located error if none
            approx = pathfinder(log_density, self.data, starts, init_key)
            init = init_from_pathfinder(approx, chains, init_key)
        elif isinstance(init, Posterior):
            init = self._continue_from(init, chains)
        elif isinstance(init, Mapping):
            from pplc.initial_values import initial_points
            init = initial_points(self, init, self._initial_positions(chains, init_key))
        elif init == "uniform":
            init = self._initial_positions(chains, init_key)
        else:
            raise error(f"unknown init '{init}'",
                        hint="init: uniform, pathfinder, a Posterior to continue from, or "
                             "a dict of initial values")
        from pplc.inference.progress import progress_for
        with progress_for(progress) as callback:
            result = sample_nuts(log_density, self.data, init, run_key, num_warmup=warmup,
                                 num_samples=draws, max_tree_depth=max_tree_depth,
                                 target_accept=target_accept, chain_method=chain_method,
                                 metric=metric, progress=callback,
                                 shard_data=axes_to_split(self.lowered.plan.sharding,
                                                          self.graph.source)
                                 if shard_data else None)
        setup = time.perf_counter() - started - result.warmup_seconds \
            - result.sampling_seconds
        kept = {} if result.directions_kept is None else \
            {"metric_directions": [int(k) for k in result.directions_kept]}
        return self._posterior(result.positions, dict(result.stats), result.n_grad_evals,
                               setup, result.warmup_seconds + result.sampling_seconds,
                               {"inference_method": "nuts", "num_warmup": warmup,
                                "seed": seed, "metric": metric,
                                "metric_requested": options["metric"],
                                "max_tree_depth": max_tree_depth,
                                "complete": int(result.complete),
                                "_inverse_metric": np.asarray(result.inverse_mass_matrix),
                                **kept})

    def _continue_from(self, posterior: Posterior, chains: int) -> np.ndarray:
        """Starting points that continue a fit (perhaps loaded from a file): the last draw
        of each of its chains, then the ones before, as many as `chains`."""
        self._check_fit(posterior)
        positions = self._fit_positions(posterior)
        fit_chains, n, _ = positions.shape
        if n == 0:
            raise error("the fit to continue from holds no draws")
        return np.stack([positions[c % fit_chains, -1 - (c // fit_chains) % n]
                         for c in range(chains)])

    def _initial_positions(self, chains: int, key) -> np.ndarray:
        """Stan's starting points; when none is finite, name the statement at fault."""
        from pplc.errors import PplcError
        if getattr(self.lowered.data, "shares", None):   # a run: each process its own rows
            from pplc.inference.sharding import split_density
            density, placed = split_density(self._log_density, self.data, axes_to_split(
                self.lowered.plan.sharding, self.graph.source))
            return initial_positions(density, placed, self.dim, chains, key)
        try:
            return initial_positions(self._log_density, self.data, self.dim, chains, key)
        except PplcError:
            u = jax.random.uniform(key, (self.dim,), minval=-2.0, maxval=2.0)
            for piece, term in self.lowered.terms(u, self.data):
                value = float(term)
                if not np.isfinite(value):
                    raise error(f"no finite starting point after 100 tries: this statement's "
                                f"term of the log density is {value} at the points tried",
                                self.graph.source, piece.span,
                                hint="check its data against the distribution's support, "
                                     "and bounds that parameters must respect") from None
            raise

    @functools.cached_property
    def value_and_grad(self) -> Callable:
        """jit(value_and_grad(log density)) with the data as a runtime argument."""
        self._refuse_if_predicting_only()
        fn = _jit_value_and_grad(self._log_density)
        return lambda u: fn(self._flat(u), self.data)


def svg_or_none(draw: Callable[[], str]) -> str | None:
    """A notebook's picture, or None (the notebook then shows the repr) without `dot`."""
    try:
        return draw()
    except PplcError:
        return None


# Every public method raises PplcError for a user's mistake, InternalError for pplc's.
guard_public_methods(ConditionedModel)
