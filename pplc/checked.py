"""A model parsed and checked without data, importing neither JAX nor the backends.

`pplc check`, `pplc ir`, `pplc graph` and `pplc build` without data need only the frontend
and the graph IR. `pplc.model` imports JAX (2-4 s) at its top, so the CLI takes this path
when no data is given: `pplc check MODEL.ppl` then starts in a fraction of a second
(issue 16). `pplc.model.Model` runs the same three steps (parse, check, build the graph)
before it conditions on data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from pplc.errors import Diagnostics, Source, did_you_mean
from pplc.frontend import ast
from pplc.frontend.check import Definitions, check_program
from pplc.frontend.parser import parse_file
from pplc.ir.build import build_graph
from pplc.ir.graph import Graph


@dataclass(frozen=True)
class CheckedModel:
    """The checked program and its graph as written (no variable is observed yet)."""

    program: ast.Program
    definitions: Definitions
    graph: Graph
    externs: Mapping[str, Callable] = field(default_factory=dict)

    @property
    def source(self) -> Source:
        return self.program.source

    def check_externs(self) -> None:
        check_externs(self.definitions, self.externs, self.source)


def check_file(path: str | Path, externs: Mapping[str, Callable] | None = None
               ) -> CheckedModel:
    """Parse, check and build the graph of a model file; PplcError on any mistake."""
    program = parse_file(path)
    definitions = check_program(program)
    return CheckedModel(program, definitions, build_graph(program, None, definitions),
                        dict(externs or {}))


def check_externs(definitions: Definitions, externs: Mapping[str, Callable],
                  source: Source) -> None:
    """Every `extern def` has a Python callable, and every callable an `extern def`."""
    diags = Diagnostics()
    for name, extern in definitions.externs.items():
        fn = externs.get(name)
        if fn is None:
            diags.add(f"extern function '{name}' is not bound to a Python function",
                      source, extern.span,
                      hint=f"pass externs={{'{name}': fn}} to pplc.compile, or "
                           f"--extern {name}=package.module:function on the command line")
        elif not callable(fn):
            diags.add(f"the binding of extern function '{name}' is not callable",
                      source, extern.span)
    for name in externs:
        if name not in definitions.externs:
            diags.add(f"a binding was given for '{name}', but the model has no "
                      f"'extern def {name}(...)'", source,
                      hint=did_you_mean(name, definitions.externs))
    diags.raise_if_any()
