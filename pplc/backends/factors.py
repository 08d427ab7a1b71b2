"""Covariances of data alone, factorized once: a decision of the plan.

`x ~ MultivariateNormal(m, scale_tril=L)` (or `cov=S`) with `L` data: its log density
needs `L^-1 (x - m)` at every gradient, which the runtime computes by a triangular solve
(and, for `cov=`, a Cholesky factorization first). Both are LAPACK custom calls to XLA:CPU,
which it cannot fuse into the sampler's compiled loops, so each leapfrog step of such a
model paid microseconds around them (benchmarks/profile_notes.md). Where the matrix argument
reads data alone (data arrays, sizes, data-only deterministics, numbers; no loop index, no
latent), the plan says so (`Plan.factors`): the lowering computes the precision and the
half log-determinant once with the runtime data (`LoweredModel.runtime_data`), and the
density multiplies by the precision (runtime/multivariate.py `mvn_precision_lp`), the same
density to rounding.

The factors travel as data arrays under names no model can write (`@`), so new data of the
same shapes are factorized anew and compile nothing. A matrix that reads an array that
`--shard-data` splits or minibatches stream is left to the density (the whole array is not
at hand once). A built module (codegen/) still solves per call; its printed plan omits
these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import networkx as nx

from pplc.frontend import ast
from pplc.frontend.check import CONSTANTS
from pplc.frontend.library import named_arguments
from pplc.ir.graph import Graph
from pplc.runtime.multivariate import mvn_precision_lp, mvn_precision_of

MATRIX_PARAMETERS = ("scale_tril", "cov")


@dataclass(frozen=True)
class Factor:
    """Piece `piece` of `name` reads its matrix parameter `param` (source text `text`) from
    the data alone: factorized once, the results stored under `keys` in the runtime data."""

    name: str
    piece: int
    param: str
    text: str

    @property
    def keys(self) -> tuple[str, str]:
        stem = f"@factor:{self.name}:{self.piece}"
        return stem + ":precision", stem + ":half_log_det"

    def describe(self) -> str:
        what = "its covariance" if self.param == "cov" else "its Cholesky factor"
        return (f"{self.param}={self.text} is data: {what} is inverted once, before "
                "sampling; the density multiplies by the precision (no solve per gradient)")

    def compute(self, matrix) -> dict[str, Any]:
        """The runtime data this factor adds, from the matrix's value."""
        return dict(zip(self.keys, mvn_precision_of(matrix, self.param)))

    def log_prob(self, value, params: Mapping[str, Any], env: Mapping[str, Any]):
        """The piece's log density with the factors in `env`, or None where they are not
        there (data that did not come through `runtime_data`): then the density solves."""
        precision, half_log_det = self.keys
        if precision not in env:
            return None
        return mvn_precision_lp(value, params["loc"], env[precision], env[half_log_det])


def decide(graph: Graph, data_names: Iterable[str], data_only: Iterable[str],
           split: Iterable[str] = ()) -> dict[tuple[str, int], Factor]:
    """The factor of every MultivariateNormal piece whose matrix reads data alone (module
    docstring); `data_names`: data arrays and sizes; `split`: arrays split or streamed."""
    known = set(data_names) | set(data_only) | set(CONSTANTS)
    split = set(split)
    out = {}
    for variable in graph.variables():
        for i, piece in enumerate(variable.pieces):
            call = piece.distribution
            if call is None or call.func != "MultivariateNormal":
                continue
            args = named_arguments(call)
            param = next((p for p in MATRIX_PARAMETERS if p in args), None)
            if param is None:
                continue
            reads = {n.id for n in ast.names_in(args[param])}
            if not reads <= known or _reads_split(graph, reads, data_only, split):
                continue
            out[(variable.name, i)] = Factor(variable.name, i, param,
                                             ast.to_source(args[param]))
    return out


def _reads_split(graph: Graph, reads: set[str], data_only: Iterable[str], split: set[str]
                 ) -> bool:
    """Whether the matrix reads a split array, itself or through a data-only value."""
    if reads & split:
        return True
    return any(split & nx.ancestors(graph.dag, n) for n in reads & set(data_only)
               if n in graph.dag)
