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

import jax
import jax.numpy as jnp
import numpy as np

from pplc.backends.data import bind_data, load_json
from pplc.backends.analysis import lower
from pplc.backends.dims import variable_dims
from pplc.backends.lower import LoweredModel
from pplc.backends.plan import prior_refusal
from pplc import __version__
from pplc.errors import Diagnostics, Source, did_you_mean, error
from pplc.frontend import ast
from pplc.frontend.check import Definitions, check_program
from pplc.frontend.parser import parse, parse_file
from pplc.ir.build import build_graph
from pplc.ir.graph import Graph
from pplc.inference.initialize import initial_positions
from pplc.inference.mcmc import sample_nuts
from pplc.inference.posterior import Posterior
from pplc.ir.graph import Kind
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


@functools.partial(jax.jit, static_argnums=(0, 1))
def _predictive_all(predict, log_likelihood, keys, flat, data):
    return jax.lax.map(lambda ku: (predict(ku[0], ku[1], data), log_likelihood(ku[1], data)),
                       (keys, flat), batch_size=256)


def compile(path_or_source: str | Path, externs: Mapping[str, Callable] | None = None
            ) -> "Model":
    """Parse and check a model given as a file path or as source text."""
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
        """Bind data (a dict, or a path to a JSON file), run the passes, lower the model.

        `disabled_passes` turns passes off by name (for comparison and benchmarks)."""
        self._check_externs()
        if isinstance(data, (str, Path)):
            data, data_source = load_json(data)
        supplied = {name for name, value in data.items() if value is not None}
        graph = build_graph(self.program, supplied, self.definitions)
        bound = bind_data(graph, data, data_source)
        # Mistakes are found on the model as written, so diagnostics point at the user's
        # own statements; the passes then work on a model known to be sound, with every
        # shape and number of states bound into the graph.
        written = lower(graph, bound, self.externs, as_written=True)
        graph = graph.conditioned({**bound.sizes, **bound.arrays}, written.shapes,
                                  written.dtypes, written.states)
        optimized = run_passes(graph, disabled_passes)
        lowered = lower(optimized, bound, self.externs)
        key = _program_key(optimized, bound)
        programs = self._programs.setdefault(key, Programs(lowered, lowered.log_density))
        if len(self._programs) > _MAX_PROGRAMS:
            self._programs.pop(next(iter(self._programs)))
        conditioned = ConditionedModel(lowered, programs=programs)
        conditioned.unoptimized_graph = graph
        # The density of the user's own parameters (no reparameterization), lowered only
        # if `log_density(params)` is asked for on a reparameterized model.
        conditioned._lower_as_parameterized = lambda: lower(
            run_passes(graph, (*disabled_passes, "reparameterize")), bound, self.externs)
        return conditioned


_MAX_PROGRAMS = 8


class Programs(NamedTuple):
    """The functions that key compiled programs, shared by models conditioned on data of
    the same shapes. `log_density` is one bound-method object kept alive here: the
    executable caches hold their function keys weakly, so a fresh `lowered.log_density`
    per conditioned model would let them go with it."""

    lowered: LoweredModel
    log_density: Callable


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

    def __init__(self, lowered: LoweredModel, programs: Programs | None = None):
        self.lowered = lowered
        self.data = lowered.runtime_data()
        # `programs`: an earlier lowering of the same model at the same sizes (or this one),
        # whose functions key every compiled program (samplers, constrain, predictive).
        # They read the data only through their `data` argument, so conditioning on new
        # data of the same shapes compiles nothing.
        programs = programs or Programs(lowered, lowered.log_density)
        self._programs = programs.lowered
        self._log_density = programs.log_density

    @property
    def graph(self) -> Graph:
        return self.lowered.graph

    @property
    def dim(self) -> int:
        return self.lowered.dim

    @property
    def param_names(self) -> list[str]:
        return self.lowered.param_names

    def unconstrained_log_density(self, u) -> jax.Array:
        """log p at a flat unconstrained vector, log-Jacobians included (jit/grad-able)."""
        return self._log_density(jnp.asarray(u), self.data)

    def log_density(self, params: Mapping[str, Any]) -> jax.Array:
        """log p(params, data) at constrained latent values, without the Jacobian terms.

        `params` are the model's own latents as written (`theta`, not the `theta_std` of
        a noncentered rewrite), and so is the density: the automatic reparameterization
        changes how NUTS samples, not this function.
        """
        lowered = self._parameterized_as_written
        u = lowered.unconstrain(params, self.data)
        env, log_jacobian = lowered._values(u, self.data)
        return lowered.log_density(u, self.data) - log_jacobian

    @functools.cached_property
    def _parameterized_as_written(self) -> LoweredModel:
        if not any(v.recover for v in self.graph.variables()):
            return self.lowered
        return self._lower_as_parameterized()

    def constrain(self, u) -> dict[str, jax.Array]:
        return self.lowered.constrain(jnp.asarray(u), self.data)

    def unconstrain(self, params: Mapping[str, Any]) -> jax.Array:
        """The user's latent values -> the sampler's flat vector (the inverse of
        `constrain`); a pass's internal variables are computed from them."""
        return self.lowered.unconstrain(params, self.data)

    def sample(self, chains: int = 4, warmup: int = 1000, draws: int = 1000, seed: int = 0,
               *, max_tree_depth: int = 10, target_accept: float = 0.8,
               chain_method: str = "auto", init: str = "uniform", metric: str = "diag",
               progress: Callable | None = None) -> Posterior:
        """Draw from the posterior with NUTS (Stan's warmup: step size and diagonal metric).

        Initial points are uniform(-2, 2) on the unconstrained space, as in Stan. Draws come
        back in the user's parameterization, deterministics included. `init="pathfinder"`
        starts the chains from distinct draws of multi-path Pathfinder instead (as Stan and
        PyMC offer), which skips the long walk from a poor starting point.
        """
        started = time.perf_counter()
        key = jax.random.PRNGKey(seed)
        init_key, run_key = jax.random.split(key)
        log_density = self._log_density
        if init == "pathfinder":
            from pplc.inference.pathfinder import init_from_pathfinder, pathfinder
            starts = initial_positions(log_density, self.data, self.dim, 4, init_key)
            approx = pathfinder(log_density, self.data, starts, init_key)
            init = init_from_pathfinder(approx, chains, init_key)
        elif init == "uniform":
            init = self._initial_positions(chains, init_key)
        else:
            raise error(f"unknown init '{init}'", hint="init: uniform or pathfinder")
        result = sample_nuts(log_density, self.data, init, run_key, num_warmup=warmup,
                             num_samples=draws, max_tree_depth=max_tree_depth,
                             target_accept=target_accept, chain_method=chain_method,
                             metric=metric, progress=progress)
        setup = time.perf_counter() - started - result.warmup_seconds \
            - result.sampling_seconds
        return self._posterior(result.positions, dict(result.stats), result.n_grad_evals,
                               setup, result.warmup_seconds + result.sampling_seconds,
                               {"inference_method": "nuts", "num_warmup": warmup,
                                "seed": seed, "metric": metric,
                                "max_tree_depth": max_tree_depth,
                                "complete": int(result.complete)})

    def fit(self, method: str = "advi", draws: int = 1000, seed: int = 0, *,
            max_iterations: int | None = None, progress: Callable | None = None) -> Posterior:
        """Approximate the posterior: "advi" (mean-field), "fullrank", "map", "laplace" or
        "pathfinder" (multi-path, 4 paths, with Pareto-smoothed importance resampling).

        ADVI and the full-rank variant are Stan's (Gaussian on the unconstrained space,
        convergence by relative ELBO change); "map" is the mode on the unconstrained space
        (the density includes the log-Jacobian, as Stan's `jacobian=true`), returned as a
        single draw; "laplace" draws from the Gaussian at that mode with the inverse
        Hessian as covariance. The result has one chain, in the same format as `sample`.
        """
        from pplc.inference.advi import fit_advi
        from pplc.inference.laplace import laplace
        from pplc.inference.optimize import find_map

        methods = ("advi", "fullrank", "map", "laplace", "pathfinder")
        if method not in methods:
            raise error(f"unknown method '{method}'", hint="methods: " + ", ".join(methods))
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
            result = fit_advi(self._log_density, self.data, init, run_key,
                              method="meanfield" if method == "advi" else "fullrank",
                              num_draws=draws, progress=progress, **options)
            positions, n_grad, seconds = result.draws, result.n_grad_evals, result.seconds
            attrs = {"iterations": result.iterations, "converged": int(result.converged)}
        else:
            options = {} if max_iterations is None else {"max_iterations": max_iterations}
            mode = find_map(self._log_density, self.data, init, **options)
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
                approx = laplace(self._log_density, self.data, mode, run_key, num_draws=draws)
                positions = approx.draws
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
                   attrs) -> Posterior:
        draws = self._constrain_draws(positions)
        # A summed-out discrete latent comes back as log P(value | rest) per draw: draw its
        # values from that conditional, and keep the probabilities as NAME_prob.
        rng = np.random.default_rng(attrs.get("seed", 0))
        for variable in self.graph.variables():
            if variable.marginalized and variable.name in draws:
                probs = np.exp(draws.pop(variable.name))
                cumulative = np.cumsum(probs, axis=-1)
                u = rng.uniform(size=probs.shape[:-1] + (1,)) * cumulative[..., -1:]
                draws[variable.name] = (u > cumulative).sum(axis=-1).astype(np.int64)
                draws[f"{variable.name}_prob"] = probs
        attrs = {**attrs, "_positions": np.asarray(positions)}
        return Posterior(
            draws=draws, sample_stats=stats,
            n_grad_evals=n_grad_evals, compile_seconds=compile_seconds,
            sampling_seconds=seconds,
            observed_data={v.name: np.asarray(self.lowered.data.arrays.get(
                v.name, self.lowered.data.sizes.get(v.name)))
                for v in self.graph.of_kind(Kind.OBSERVED)},
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

        Also stores them, and the pointwise log-likelihood, on `posterior` (see
        `predictive`), so `posterior.to_arviz()` carries them for `arviz.loo` and PPC plots.
        """
        self.predictive(posterior, seed)
        return posterior.posterior_predictive

    def predictive(self, posterior: Posterior, seed: int = 0) -> None:
        """Add posterior predictive draws and the pointwise log-likelihood to `posterior`
        (ArviZ groups posterior_predictive and log_likelihood), from its parameters."""
        positions = posterior.attrs.get("_positions")
        if positions is None:
            raise error("these draws do not carry their unconstrained positions")
        chains, n, dim = positions.shape
        flat = jnp.asarray(positions.reshape(chains * n, dim))
        keys = jax.random.split(jax.random.PRNGKey(seed), chains * n)
        predictions, log_lik = _predictive_all(self._programs.predict, self._programs.log_likelihood,
                                               keys, flat, self.data)
        reshape = lambda v: np.asarray(v).reshape((chains, n) + v.shape[1:])  # noqa: E731
        posterior.posterior_predictive = {k: reshape(v) for k, v in predictions.items()}
        posterior.log_likelihood = {k: reshape(v) for k, v in log_lik.items()}

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
        fn = _jit_value_and_grad(self._log_density)
        return lambda u: fn(jnp.asarray(u), self.data)
