"""The pipeline as Python objects: source -> AST -> IR -> passes -> JAX backend.

    model = pplc.compile("eight_schools.ppl")
    posterior = model.condition({"J": 8, "y": [...], "sigma": [...]})
    posterior.log_density({"mu": 0.0, "tau": 1.0, "theta": np.zeros(8)})

A `Model` is a checked graph without data; `condition` binds data (checked before
anything is compiled), decides which `~` variables are observed, and lowers the model into
a `ConditionedModel` (conditioned.py: densities and sampling; fitting.py: ADVI, MAP, Laplace,
Pathfinder; posterior_building.py: a run's draws as a Posterior; prediction.py and
fit_matching.py: what it does with draws).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Hashable, Mapping

import numpy as np

from pplc.backends.analysis import lower
from pplc.backends.data import BoundData, bind_data
from pplc.conditioned import ConditionedModel, Programs, svg_or_none
from pplc.datafiles import as_data
from pplc.errors import (Diagnostic, Diagnostics, PplcError, Source, did_you_mean, error,
                         guard_public_methods)
from pplc.frontend import ast
from pplc.frontend.check import Definitions, check_program
from pplc.frontend.parser import parse, parse_file
from pplc.ir.build import build_graph
from pplc.inference.programs import ContentKeyed
from pplc.ir.graph import Graph, Kind
from pplc.passes.pipeline import run_passes
from pplc.resources import check_model_size
from pplc import row_shares


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
        return svg_or_none(self.graph_svg)

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
                  data_source: Source | None = None, *, disabled_passes: tuple[str, ...] = (),
                  distributed=None) -> "ConditionedModel":
        """Bind data, run the passes, lower the model. The data are a dict of name ->
        value, a pandas DataFrame (a column per array), or the path of a .json, .csv,
        .npz, .npy or .parquet file, or a list of such paths, merged (`pplc.datafiles`).

        `distributed=pplc.Distributed(coordinator, num_processes, process_id)` joins a run
        of several processes first, before JAX makes any array (docs/scaling.md); then
        `sample(shard_data=True)` splits the data over every process's devices.
        `disabled_passes` turns passes off by name (for comparison and benchmarks)."""
        if distributed is not None:
            distributed.join()
        self._check_externs()
        read = as_data(data, by_rows=row_shares.in_run())   # a run: files by row range
        if read is not None:
            data, data_source = read
        elif not isinstance(data, Mapping):
            raise error(f"condition takes the data as a dict of name -> value, or the path "
                        f"of a JSON file, not {type(data).__name__}")
        supplied = {name for name, value in data.items() if value is not None}
        graph = build_graph(self.program, supplied, self.definitions)
        # (a run of several processes: its own rows of the split arrays, checked there)
        bound = row_shares.shared(graph, lambda: bind_data(graph, data, data_source),
                                  lambda local: lower(graph, local, self.externs,
                                                      as_written=True), data_source)
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
        check_model_size(conditioned.dim, conditioned.lowered.data.sizes)
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
        with row_shares.counting(bound):   # in a run: counts summed over the processes
            optimized = run_passes(graph, disabled_passes)
        lowered = lower(optimized, bound, self.externs)
        key = _program_key(optimized, bound)
        programs = self._programs.get(key) or Programs(lowered, self._keyed(lowered), {})
        self._programs[key] = programs
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

    def _keyed(self, lowered) -> Callable:
        """The log density that keys the compiled programs; without externs, one that names
        its content, so its executables can be kept on disk (`programs.ContentKeyed`): an
        extern is Python that a change of would not show in the key."""
        if self.externs:
            return lowered.log_density
        return ContentKeyed(lowered.log_density,
                            lambda: (np.zeros(lowered.dim), lowered.runtime_data()))

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


def _program_key(graph: Graph, bound) -> Hashable:
    """What a lowered model's functions depend on besides the data arrays they are passed:
    the final graph (so the passes' decisions), the sizes, the arrays' shapes and dtypes, and
    where entries are missing. Data values are runtime arguments, never part of a program."""
    return (tuple(graph.variables()),
            tuple(sorted((k, int(v)) for k, v in bound.sizes.items())),
            tuple(sorted((k, np.shape(v), str(getattr(v, "dtype", None)   # not read whole
                                              or np.asarray(v).dtype))
                         for k, v in bound.arrays.items())),
            tuple(sorted((k, m.shape, m.tobytes()) for k, m in bound.missing.items())))


# Every public method raises PplcError for a user's mistake, InternalError for pplc's.
guard_public_methods(Model)
