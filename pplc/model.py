"""The pipeline as Python objects: source -> AST -> IR -> passes -> JAX backend.

    model = pplc.compile("eight_schools.ppl")
    posterior = model.condition({"J": 8, "y": [...], "sigma": [...]})
    posterior.log_density({"mu": 0.0, "tau": 1.0, "theta": np.zeros(8)})

A `Model` is a checked graph without data; `condition` binds data (checked before
anything is compiled), decides which `~` variables are observed, and lowers the model.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any, Callable, Hashable, Mapping, NamedTuple

from pplc.jax_x64 import jax
import jax.numpy as jnp
import numpy as np

from pplc.backends.data import BoundData, bind_data
from pplc.backends.analysis import lower
from pplc.backends.dims import variable_dims
from pplc.backends.lower import LoweredModel
from pplc.backends.plan import prior_refusal
from pplc.datafiles import as_data
from pplc import __version__
from pplc.errors import (Diagnostic, Diagnostics, PplcError, Source, did_you_mean, error,
                         guard_public_methods)
from pplc.frontend import ast
from pplc.frontend.check import Definitions, check_program
from pplc.frontend.parser import parse, parse_file
from pplc.ir.build import build_graph
from pplc.ir.graph import Graph
from pplc.inference.initialize import initial_positions
from pplc.inference.mcmc import sample_nuts
from pplc.inference.sharding import axes_to_split
from pplc.inference.posterior import Posterior
from pplc.ir.graph import Kind
from pplc.options import check_options, check_params, check_posterior
from pplc.passes.pipeline import run_passes


@functools.partial(jax.jit, static_argnums=0)
def _constrain_all(constrain, flat, data):
    return jax.lax.map(lambda u: constrain(u, data), flat, batch_size=256)


@functools.lru_cache(maxsize=16)
def _jit_value_and_grad(log_density):
    return jax.jit(jax.value_and_grad(log_density))


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


def compile(path_or_source: str | Path, externs: Mapping[str, Callable] | None = None
            ) -> "Model":
    """Parse and check a model given as a file path or as source text."""
    if externs is not None and not isinstance(externs, Mapping):
        raise error(f"externs must be a dict of extern name -> Python function, not "
                    f"{type(externs).__name__}")
    if not isinstance(path_or_source, (str, Path)):
        raise error(f"compile takes a model's source text or the path of a .ppl file, not "
                    f"{type(path_or_source).__name__}")
    text = str(path_or_source)
    if isinstance(path_or_source, Path) or ("\n" not in text and text.endswith(".ppl")):
        program = parse_file(path_or_source)
    else:
        program = parse(text)
    return Model(program, dict(externs or {}))


class Model:
    """A checked model without data."""

    def __init__(self, program: ast.Program, externs: dict[str, Callable]):
        self.program = program
        self.definitions: Definitions = check_program(program)
        self.externs = externs
        self.graph: Graph = build_graph(program, None, self.definitions)
        # Lowered models by what their compiled programs depend on (_program_key): new data
        # of the same sizes reuse one, so they compile nothing again.
        self._programs: dict[Hashable, Programs] = {}

    @property
    def source(self) -> Source:
        return self.program.source

    def graph_svg(self) -> str:
        """The model's PGM picture as SVG text (`pplc graph`'s; plates by loop ranges).
        Notebooks show it inline; raises `PplcError` without Graphviz's `dot`."""
        from pplc.ir.graphviz import to_svg
        return to_svg(self.graph)

    def _repr_svg_(self) -> str | None:
        return _svg_or_none(self.graph_svg)

    def _check_externs(self) -> None:
        """Every `extern def` has a Python callable, and every callable an `extern def`."""
        diags = Diagnostics()
        for name, extern in self.definitions.externs.items():
            fn = self.externs.get(name)
            if fn is None:
                diags.add(f"extern function '{name}' is not bound to a Python function",
                          self.source, extern.span,
                          hint=f"pass externs={{'{name}': fn}} to pplc.compile, or "
                               f"--extern {name}=package.module:function on the command line")
            elif not callable(fn):
                diags.add(f"the binding of extern function '{name}' is not callable",
                          self.source, extern.span)
        for name in self.externs:
            if name not in self.definitions.externs:
                diags.add(f"a binding was given for '{name}', but the model has no "
                          f"'extern def {name}(...)'", self.source,
                          hint=did_you_mean(name, self.definitions.externs))
        diags.raise_if_any()

    def condition(self, data: Mapping[str, Any] | str | Path,
                  data_source: Source | None = None, *, disabled_passes: tuple[str, ...] = ()
                  ) -> "ConditionedModel":
        """Bind data, run the passes, lower the model. The data are a dict of name ->
        value, a pandas DataFrame (a column per array), or the path of a .json, .csv or
        .npz file, or a list of such paths, merged (`pplc.datafiles`).

        `disabled_passes` turns passes off by name (for comparison and benchmarks)."""
        self._check_externs()
        read = as_data(data)
        if read is not None:
            data, data_source = read
        elif not isinstance(data, Mapping):
            raise error(f"condition takes the data as a dict of name -> value, or the path "
                        f"of a JSON file, not {type(data).__name__}")
        supplied = {name for name, value in data.items() if value is not None}
        graph = build_graph(self.program, supplied, self.definitions)
        bound = bind_data(graph, data, data_source)
        try:
            conditioned = self._conditioned(graph, bound, disabled_passes)
        except PplcError as refusal:
            # Observations left out become latents, which some cannot be (a Poisson `y`
            # can be neither sampled by NUTS nor summed out). Such a model can still
            # predict them from a fit; sampling it raises the refusal.
            left_out = frozenset(v.name for v in self.graph.of_kind(Kind.OBSERVED)
                                 if v.name not in supplied)
            if not left_out:
                raise
            try:
                conditioned = self._predicting(bound, left_out, None, disabled_passes)
            except PplcError:
                raise refusal from None
            conditioned._refusal = refusal
        conditioned.model = self
        return conditioned

    def _conditioned(self, graph: Graph, bound: BoundData, disabled_passes: tuple[str, ...]
                     ) -> "ConditionedModel":
        """The graph with its data bound -> a ConditionedModel (shapes, passes, lowering)."""
        # Mistakes are found on the model as written, so diagnostics point at the user's
        # own statements; the passes then work on a model known to be sound, with every
        # shape and number of states bound into the graph.
        written = lower(graph, bound, self.externs, as_written=True)
        graph = graph.conditioned({**bound.sizes, **bound.arrays}, written.shapes,
                                  written.dtypes, written.states)
        optimized = run_passes(graph, disabled_passes)
        lowered = lower(optimized, bound, self.externs)
        key = _program_key(optimized, bound)
        programs = self._programs.setdefault(key, Programs(lowered, lowered.log_density, {}))
        if len(self._programs) > _MAX_PROGRAMS:
            self._programs.pop(next(iter(self._programs)))
        conditioned = ConditionedModel(lowered, programs=programs)
        conditioned.unoptimized_graph = graph
        conditioned._written = written   # predictive draws of summed-out observations
        conditioned._disabled_passes = tuple(disabled_passes)
        # The density of the user's own parameters (no reparameterization), lowered only
        # if `log_density(params)` is asked for on a reparameterized model.
        conditioned._lower_as_parameterized = lambda: lower(
            run_passes(graph, (*disabled_passes, "reparameterize")), bound, self.externs)
        return conditioned

    def _predicting(self, bound: BoundData, names: frozenset[str],
                    latent_model: "ConditionedModel | None", disabled_passes: tuple[str, ...]
                    ) -> "ConditionedModel":
        """The model on `bound`'s data with the `~` variables `names`, which the data leave
        out, observed instead, through stand-in values (`pplc.stand_ins`; from
        `latent_model`, the model where they are latents, where it exists).

        Only the predictive draws of such a model mean anything: nothing reads the
        stand-ins (`ConditionedModel._check_predictable` refuses a variable that another
        reads, or that reads its own earlier elements), its likelihood terms at them are
        never reported, and its densities and samplers refuse to run."""
        from pplc.stand_ins import declared_shape, support_point

        env = {**bound.sizes, **bound.arrays}
        stand_ins = {}
        for name in sorted(names):
            variable = self.graph[name]
            shape = declared_shape(variable, self.graph, env)
            value = support_point(variable, shape)
            if value is None and latent_model is not None \
                    and not latent_model.graph[name].marginalized:
                value = latent_model.constrain(np.zeros(latent_model.dim)).get(name)
                if value is not None and (np.shape(value) != shape
                                          or not np.isfinite(value).all()):
                    value = None
            if value is None:
                value = np.zeros(shape)   # the checks will say if it is refused
            stand_ins[name] = np.asarray(value, np.float64)
        graph = build_graph(self.program, bound.names | names, self.definitions)
        bound = BoundData(dict(bound.sizes), {**bound.arrays, **stand_ins}, bound.source,
                          dict(bound.missing))
        try:
            predicting = self._conditioned(graph, bound, disabled_passes)
        except PplcError as exc:
            listed = ", ".join(f"'{n}'" for n in sorted(names))
            raise PplcError([Diagnostic(
                f"cannot predict {listed} here: lowering the model with "
                f"{'them' if len(names) > 1 else 'it'} observed needs stand-in values "
                "inside the support, and these were refused", hint="give values for "
                f"{listed} in the data (any inside the support: they do not change the "
                "predictions)"), *exc.diagnostics]) from None
        predicting.model = self
        predicting._stand_ins = names
        predicting._refusal = error(
            f"this model holds stand-in values for {', '.join(sorted(names))} (left out "
            "of the data, to be predicted): it can predict from a fit, not be sampled or "
            "evaluated", hint="give the observations in the data to fit the model")
        return predicting


_MAX_PROGRAMS = 8


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


def _program_key(graph: Graph, bound) -> Hashable:
    """What a lowered model's functions depend on besides the data arrays they are passed:
    the final graph (so the passes' decisions), the sizes, the arrays' shapes and dtypes, and
    where entries are missing. Data values are runtime arguments, never part of a program."""
    return (tuple(graph.variables()),
            tuple(sorted((k, int(v)) for k, v in bound.sizes.items())),
            tuple(sorted((k, np.shape(v), str(np.asarray(v).dtype))
                         for k, v in bound.arrays.items())),
            tuple(sorted((k, m.shape, m.tobytes()) for k, m in bound.missing.items())))


class ConditionedModel:
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
        return _svg_or_none(self.graph_svg)

    def unconstrained_log_density(self, u) -> jax.Array:
        """log p at a flat unconstrained vector, log-Jacobians included (jit/grad-able)."""
        self._refuse_if_predicting_only()
        return self._log_density(self._flat(u), self.data)

    def _flat(self, u) -> jax.Array:
        """`u` as the sampler's flat vector, refused unless it has `dim` entries."""
        u = jnp.asarray(u)
        if u.shape != (self.dim,):
            raise error(f"expected a flat vector of the {self.dim} unconstrained parameters, "
                        f"got shape {_shape(u.shape)}",
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
               metric: str = "diag", progress: "bool | Callable | None" = None,
               shard_data: bool = False) -> Posterior:
        """Draw from the posterior with NUTS (Stan's warmup: step size and diagonal metric).

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

        `metric`: "diag" (Stan's), "dense" (Stan's dense_e), or adapted from draws and
        gradients by minimizing the Fisher divergence (inference/metric.py): "diag-grad"
        or "low-rank" (low-rank plus diagonal, for correlated posteriors).
        """
        self._refuse_if_predicting_only()
        options = check_options(chains=chains, warmup=warmup, draws=draws, seed=seed,
                                max_tree_depth=max_tree_depth, target_accept=target_accept,
                                chain_method=chain_method, metric=metric)
        chains, warmup, draws, seed = (options[k] for k in ("chains", "warmup", "draws", "seed"))
        max_tree_depth, target_accept = options["max_tree_depth"], options["target_accept"]
        if not isinstance(init, (Posterior, str, Mapping)):
            raise error(f"unknown init {init!r}",
                        hint="init: uniform, pathfinder, a Posterior to continue from, or "
                             "a dict of initial values")
        started = time.perf_counter()
        key = jax.random.PRNGKey(seed)
        init_key, run_key = jax.random.split(key)
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
        return self._posterior(result.positions, dict(result.stats), result.n_grad_evals,
                               setup, result.warmup_seconds + result.sampling_seconds,
                               {"inference_method": "nuts", "num_warmup": warmup,
                                "seed": seed, "metric": metric,
                                "max_tree_depth": max_tree_depth,
                                "complete": int(result.complete),
                                "_inverse_metric": np.asarray(result.inverse_mass_matrix)})

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
        started = time.perf_counter()
        init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
        init = self._initial_positions(1, init_key)[0]
        if method == "pathfinder":
            from pplc.inference.pathfinder import pathfinder
            starts = initial_positions(self._log_density, self.data, self.dim, 4, init_key)
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

    def _initial_positions(self, chains: int, key) -> np.ndarray:
        """Stan's starting points; when none is finite, name the statement at fault."""
        from pplc.errors import PplcError
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
        draws = self._constrain_draws(positions)
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
        if observed is None:
            observed = self.lowered.observed_names
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
            written.graph, self.graph, self._constrain_draws(positions), self.data,
            (chains, n), written.shapes)
        latents = [v.name for v in written.graph.of_kind(Kind.LATENT)]
        missing = [name for name in latents if name not in posterior.draws]
        predictions = {}
        if not missing:
            values = {name: jnp.asarray(np.asarray(posterior.draws[name]).reshape(
                (chains * n,) + tuple(written.shapes[name]))) for name in latents}
            keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 1),
                                    chains * n)
            drawn = _predictive_given_all(written.predict_given, keys, values, self.data)
            predictions = {name: np.asarray(drawn[name]).reshape((chains, n) + drawn[name]
                                                                  .shape[1:]) for name in lost}
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

    def _summed_out_predictions(self, posterior: Posterior, names: frozenset[str], seed: int
                                ) -> dict[str, np.ndarray]:
        """Predictions of observations that a summed-out discrete latent took into its sum
        (a mixture's y at new inputs): on the model as written, given each draw of the
        fit's continuous latents, the new units' assignments drawn from their distribution
        given those (p(y_new | parameters) = sum_z p(z | parameters) p(y_new | z, ...))."""
        written = self._written
        chains, n = next(iter(posterior.draws.values())).shape[:2]
        latents = [name for name in self._fit_latents()]
        values = {name: jnp.asarray(np.asarray(posterior.draws[name], np.float64).reshape(
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
        return data_hash(self.lowered.data.sizes, self.lowered.data.arrays)

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
                raise error(f"'{name}' has shape {_shape(draws.shape[2:])} in the fit but "
                            f"{_shape(shape)} with this data",
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

    def _constrain_draws(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """(chain, draw, dim) unconstrained -> name -> (chain, draw, *shape) constrained."""
        chains, n, dim = positions.shape
        flat = jnp.asarray(positions.reshape(chains * n, dim))
        values = _constrain_all(self._programs.constrain, flat, self.data)
        return {name: np.asarray(v).reshape((chains, n) + v.shape[1:])
                for name, v in values.items()}

    @functools.cached_property
    def value_and_grad(self) -> Callable:
        """jit(value_and_grad(log density)) with the data as a runtime argument."""
        self._refuse_if_predicting_only()
        fn = _jit_value_and_grad(self._log_density)
        return lambda u: fn(self._flat(u), self.data)


def _svg_or_none(draw: Callable[[], str]) -> str | None:
    """A notebook's picture, or None (the notebook then shows the repr) without `dot`."""
    try:
        return draw()
    except PplcError:
        return None


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


# Every public method raises PplcError for a user's mistake, InternalError for pplc's.
guard_public_methods(Model, ConditionedModel)
