"""A model with its data (`ConditionedModel`): its log densities as plain JAX functions,
and sampling and fitting them. What it does with the draws (prediction, log-likelihoods,
matching saved fits) is the `Prediction` mixin, in prediction.py.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple

from pplc.jax_x64 import jax
import jax.numpy as jnp
import numpy as np

from pplc.backends.dims import variable_dims
from pplc.backends.lower import LoweredModel
from pplc import __version__
from pplc.errors import PplcError, error, guard_public_methods
from pplc.inference.initialize import initial_positions
from pplc.inference.keys import key_type, seed_keys
from pplc.inference.mcmc import sample_nuts
from pplc.inference.nuts_programs import compile_ahead
from pplc.inference.posterior import Posterior
from pplc.inference.distributed import check_distributed, check_same_data
from pplc.inference.sharding import axes_to_split, should_split
from pplc.ir.graph import Graph, Kind
from pplc.options import check_options, check_params
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


class ConditionedModel(Prediction):
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
        log_density = self._log_density
        # The sampler's programs compile on other threads while the keys are made and the
        # starting points found (inference/nuts_programs.py): the same programs, sooner.
        compile_ahead(log_density, self.data, chains, self.dim, key_type(), num_warmup=warmup,
                      num_samples=draws, max_tree_depth=max_tree_depth,
                      target_accept=target_accept, chain_method=chain_method, metric=metric,
                      shard_data=shard_data)
        init_key, run_key = seed_keys(seed)
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

    def fit(self, method: str = "advi", draws: int = 1000, seed: int = 0, *,
            max_iterations: int | None = None, progress: "bool | Callable | None" = None,
            batch_size: int | None = None) -> Posterior:
        """Approximate the posterior: "advi" (mean-field), "fullrank", "map", "laplace" or
        "pathfinder" (multi-path, 4 paths, with Pareto-smoothed importance resampling).

        ADVI and the full-rank variant are Stan's (Gaussian on the unconstrained space,
        convergence by relative ELBO change); "map" is the mode on the unconstrained space
        (the density includes the log-Jacobian, as Stan's `jacobian=true`), returned as a
        single draw; "laplace" draws from the Gaussian at that mode with the inverse
        Hessian as covariance. The result has one chain, in the same format as `sample`.

        `batch_size=B` (advi, fullrank): each step sees B random rows of the observations,
        weighted N/B (inference/minibatch.py; docs/scaling.md).
        """
        from pplc.inference.advi import fit_advi
        from pplc.inference.laplace import laplace
        from pplc.inference.optimize import find_map

        self._refuse_if_predicting_only()
        options = check_options(method=method, draws=draws, seed=seed,
                                max_iterations=max_iterations, batch_size=batch_size)
        draws, seed, max_iterations, batch_size = (
            options[k] for k in ("draws", "seed", "max_iterations", "batch_size"))
        if batch_size is not None and method not in ("advi", "fullrank"):
            raise error(f"batch_size is for method advi or fullrank, not {method}")
        check_run_size(1, draws, self.dim, self._values_per_draw, self.lowered.data.sizes,
                       kind="fitting and drawing")
        started = time.perf_counter()
        init_key, run_key = seed_keys(seed)
        # Pathfinder draws its own four starts: no one-chain start to compile for it.
        init = None if method == "pathfinder" else self._initial_positions(1, init_key)[0]
        if method == "pathfinder":
            from pplc.inference.pathfinder import pathfinder
            starts = self._initial_positions(4, init_key)   # a located error if none
            result = pathfinder(self._log_density, self.data, starts, run_key,
                                num_draws=draws)
            positions, n_grad, seconds = result.draws, result.n_grad_evals, result.seconds
            attrs = {"pareto_k": float(result.pareto_k), "num_paths": result.num_paths}
            if result.pareto_k > 0.7:
                import warnings
                warnings.warn(f"Pathfinder's Pareto k-hat is {result.pareto_k:.2f} (> 0.7): "
                              "the approximation is unreliable; use NUTS", RuntimeWarning,
                              stacklevel=2)
        elif method in ("advi", "fullrank"):
            options = {} if max_iterations is None else {"max_iterations": max_iterations}
            from pplc.inference.progress import progress_for
            family = "meanfield" if method == "advi" else "fullrank"
            if batch_size is not None:
                from pplc.inference.minibatch import minibatch_fit
                result = minibatch_fit(self, self.data, batch_size, run_key, init, seed=seed,
                                       method=family, num_draws=draws, **options)
            else:
                with progress_for(progress) as callback:
                    result = fit_advi(self._log_density, self.data, init, run_key,
                                      method=family, num_draws=draws, progress=callback,
                                      **options)
            positions, n_grad, seconds = result.draws, result.n_grad_evals, result.seconds
            attrs = {"iterations": result.iterations, "converged": int(result.converged),
                     "pareto_k": float(result.pareto_k)}
        else:
            options = {} if max_iterations is None else {"max_iterations": max_iterations}
            # The mode of the model as written: a noncentered rewrite (a sampling choice)
            # changes the Jacobian and so moves the mode; MAP and Laplace must not move.
            written = self._parameterized_as_written
            density = self._log_density if written is self.lowered else written.log_density
            if written is not self.lowered:
                init = written.unconstrain(self.constrain(init), self.data)
            mode = find_map(density, self.data, init, **options)
            if not mode.converged:
                import warnings
                warnings.warn(f"the optimizer stopped after {mode.iterations} iterations "
                              f"without converging (gradient norm {mode.grad_norm:.3g})",
                              RuntimeWarning, stacklevel=2)
            n_grad, seconds = int(mode.iterations), mode.seconds
            attrs = {"iterations": int(mode.iterations), "converged": int(mode.converged),
                     "log_density_at_mode": float(mode.logdensity)}
            if method == "map":
                positions = np.asarray(mode.position)[None, :]
            else:
                approx = laplace(density, self.data, mode, run_key, num_draws=draws)
                positions = approx.draws
                attrs["pareto_k"] = float(approx.pareto_k)
            if written is not self.lowered:   # back to the sampler's layout, for the output
                to_sampler = jax.vmap(lambda w: self.lowered.unconstrain(
                    written.constrain(w, self.data), self.data))
                positions = np.asarray(to_sampler(jnp.asarray(positions)))
        setup = time.perf_counter() - started - seconds
        return self._posterior(np.asarray(positions)[None], {}, n_grad, setup, seconds,
                               {"inference_method": method, "seed": seed, **attrs})

    def posterior_of(self, positions, n_grad_evals: int, compile_seconds: float,
                     seconds: float, attrs: Mapping[str, Any]) -> Posterior:
        """Unconstrained draws (chains, draws, dim) made outside `fit`, as its Posterior: a
        minibatch fit streamed from files (pplc/streaming.py) conditions the model on one
        batch, whose rows are not the observations, so none are kept as observed data."""
        return self._posterior(np.asarray(positions), {}, n_grad_evals, compile_seconds,
                               seconds, dict(attrs), observed=[])

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
