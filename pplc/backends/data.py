"""Data binding: values -> checked NumPy arrays, refused before anything is compiled.

Data arrive as name -> number, nested lists, or null (a missing entry), read from JSON by
frontend/data_json.py (which keeps every value's position for the messages here) or from
the other formats by pplc/datafiles.py.

Every name must be known to the model, every declared `data` name must be supplied
(unless it is the target of a `~`, in which case leaving it out makes it latent), and each
value must agree with its declaration's type and shape. Integer scalars are *sizes*: they
fix shapes and loop ranges, so they are compile-time constants; every other value is a
runtime argument of the compiled program, so new data of the same shapes never recompile.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from pplc.errors import Diagnostics, PplcError, Source, did_you_mean, error
from pplc.backends.evaluate import Evaluator, shape_text
from pplc.frontend import ast
from pplc.frontend.data_json import INT64_RANGE, MAX_DATA_DEPTH, key_span, shorten, value_span
from pplc.frontend.library import type_bounds
from pplc.ir.graph import Graph, Kind


@dataclass(frozen=True)
class BoundData:
    """Checked data: `sizes` (int scalars, static) and `arrays` (runtime arguments)."""

    sizes: dict[str, int]
    arrays: dict[str, np.ndarray]
    source: Source | None
    missing: dict[str, np.ndarray] = field(default_factory=dict)  # name -> bool mask of NaNs

    @property
    def names(self) -> set[str]:
        return set(self.sizes) | set(self.arrays)

    def env(self) -> dict[str, Any]:
        return {**self.arrays, **self.sizes}


def bind_data(graph: Graph, raw: Mapping[str, Any], source: Source | None = None) -> BoundData:
    """Check `raw` against the model's declarations; return the data split by role."""
    diags = Diagnostics()
    known = {v.name for v in graph.variables() if v.kind in
             (Kind.DATA, Kind.OBSERVED, Kind.LATENT)}
    for name in raw:
        if name not in known:
            hint = did_you_mean(name, known)
            if name in graph and graph[name].kind is Kind.DETERMINISTIC:
                message = f"'{name}' is computed by the model ('='); it cannot be supplied"
            else:
                message = f"unknown data name '{name}': the model has no data or '~' " \
                          "variable of that name"
            diags.add(message, source, key_span(source, name), hint=hint)
    for variable in graph.of_kind(Kind.DATA):
        if variable.name not in raw:
            diags.add(f"data '{variable.name}' is declared but not supplied"
                      + (f" in {source.path}" if source else ""), graph.source, variable.span)
    diags.raise_if_any()

    sizes: dict[str, int] = {}
    arrays: dict[str, np.ndarray] = {}
    missing: dict[str, np.ndarray] = {}
    failed: set[str] = set()  # refused entries: declarations sized by them are not checked
    # NumPy reads [1, true] as [1, 1]: lists are searched for booleans, unless the file has
    # no `true` or `false` at all (a search at C speed).
    booleans = source is None or re.search(r"\btrue\b|\bfalse\b", source.text) is not None
    # Declarations are checked in dependency order: shapes are expressions of earlier sizes.
    for variable in graph.variables():
        if variable.name not in raw or variable.kind is Kind.LATENT:
            continue
        declared = variable.declared_type
        if declared is not None and failed & {n.id for e in (*declared.shape, *(
                b.value for b in declared.bounds)) for n in ast.names_in(e)}:
            continue
        try:
            if getattr(raw[variable.name], "by_rows", False):   # pplc/rowfiles.py
                arrays[variable.name] = _bind_rows(raw[variable.name], variable, graph,
                                                   {**arrays, **sizes})
                continue
            value = _to_array(raw[variable.name], variable.name, source,
                              allow_missing=variable.kind is Kind.OBSERVED,
                              booleans=booleans)
            if value.dtype.kind == "f" and np.isnan(value).any():
                missing[variable.name] = np.isnan(value)
            declared = variable.declared_type
            if declared is not None:
                value = _check_declared(value, declared, variable.name, graph,
                                        {**arrays, **sizes})
            if value.ndim == 0 and np.issubdtype(value.dtype, np.integer) \
                    and declared is not None and declared.base == "int":
                sizes[variable.name] = int(value)
            else:
                arrays[variable.name] = value
        except PplcError as exc:
            diags.extend(exc)
            failed.add(variable.name)
    diags.raise_if_any()
    return BoundData(sizes, arrays, source, missing)


def _to_array(value, name: str, source: Source | None, allow_missing: bool = False,
              booleans: bool = True) -> np.ndarray:
    """Nested lists -> an array; null -> NaN; ragged or non-numeric lists, booleans and
    integers beyond 64 bits are refused, each at its place in the data file.

    Missing entries (null or NaN) are allowed only in the target of a `~`, whose missing
    entries become latent (imputed); anywhere else nothing could fill them in.
    """
    array = None if booleans and _holds_boolean(value) else _fast_array(value)
    if array is None:
        array = _precise_array(value, name, source)
    _refuse_missing(array, name, source, allow_missing)
    return array


def _where(index) -> str:
    return "[" + ",".join(str(int(i)) for i in index) + "]" if len(index) else ""


def _precise_array(value, name: str, source: Source | None) -> np.ndarray:
    def refuse(message: str, path: tuple, hint: str | None = None):
        raise error(message, source, value_span(source, name, path), hint=hint)

    if hasattr(value, "__array__") and not isinstance(value, list):
        value = np.asarray(value).tolist()

    items: list = []

    def shape_of(v, path: tuple) -> tuple[int, ...]:
        if isinstance(v, list):
            if len(path) >= MAX_DATA_DEPTH:
                refuse(f"data '{name}' has more than {MAX_DATA_DEPTH} dimensions", path)
            inner = [shape_of(x, path + (i,)) for i, x in enumerate(v)]
            for i, s in enumerate(inner):
                if s != inner[0]:
                    refuse(f"data '{name}' is a ragged array: {name}{_where(path + (i,))} "
                           f"has shape {shape_text(s)} but {name}{_where(path + (0,))} has "
                           f"shape {shape_text(inner[0])}", path + (i,),
                           hint="every row of an array has the same length")
            return (len(v),) + (inner[0] if inner else ())
        if isinstance(v, (bool, np.bool_)):
            refuse(f"data '{name}{_where(path)}' is {str(bool(v)).lower()}, not a number",
                   path, hint="write 1 for true and 0 for false")
        if isinstance(v, (int, np.integer)):
            if not INT64_RANGE[0] <= int(v) <= INT64_RANGE[1]:
                refuse(f"data '{name}{_where(path)}' = {shorten(str(int(v)))} does not fit "
                       "in 64 bits", path, hint="pplc's integers are 64-bit (-2**63 to "
                                                "2**63 - 1); give a real number as a float")
            items.append(int(v))
            return ()
        if v is None or isinstance(v, (float, np.floating)):
            items.append(math.nan if v is None else float(v))
            return ()
        refuse(f"data '{name}{_where(path)}' is not a number: {shorten(_show(v))}", path)

    shape = shape_of(value, ())
    integral = all(isinstance(x, int) for x in items)
    return np.array(items, dtype=np.int64 if integral else np.float64).reshape(shape)


def _show(value) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def _refuse_missing(array, name, source, allow_missing: bool) -> None:
    if array.dtype.kind == "f" and np.isnan(array).any() and not allow_missing:
        index = tuple(np.argwhere(np.isnan(array))[0]) if array.ndim else ()
        raise error(f"data '{name}{_where(index)}' is missing (null or NaN), but '{name}' has "
                    "no distribution ('~') that could fill it in", source,
                    value_span(source, name, index),
                    hint="only entries of a variable on the left of '~' may be missing; "
                         "they are then imputed")


def _holds_boolean(value) -> bool:
    if isinstance(value, list):
        return any(_holds_boolean(v) if isinstance(v, list) else isinstance(v, bool)
                   for v in value)
    return isinstance(value, bool)


def _fast_array(value) -> np.ndarray | None:
    """Arrays (NumPy, JAX) and rectangular lists of plain numbers, converted by NumPy at
    C speed (a million rows in milliseconds); None when the slow, precise path is needed
    (nulls, booleans, ragged or non-numeric lists) to say exactly what is wrong. A NumPy
    boolean array is taken as 0 and 1 (its type says what it is); `true` in a list is not."""
    if hasattr(value, "__array__") and not isinstance(value, (list, bool)):
        array = np.asarray(value)
        if array.dtype.kind == "b":
            return array.astype(np.int64)
    elif not isinstance(value, (list, int, float)) or isinstance(value, bool):
        return None
    else:
        try:
            array = np.asarray(value)
        except (ValueError, OverflowError):  # ragged, or an integer beyond 64 bits
            return None
    if array.dtype.kind == "u" and array.size and array.max() > INT64_RANGE[1]:
        return None  # the precise path says which entry does not fit
    if array.dtype.kind in "iu":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        return array.astype(np.float64)
    return None  # objects (None, strings, mixtures) or booleans: the precise path


def declared_sizes(declared: ast.Type, value_of, source) -> tuple[int, ...]:
    """The sizes a type declares (`real[N, 3]`), each evaluated by `value_of`: an int
    known now (a data size or a number), not negative."""
    sizes = []
    for size in declared.shape:
        try:
            n = value_of(size)
        except KeyError:
            n = None
        if not isinstance(n, (int, np.integer)):
            raise error("a size in a type must be an int data value or a number", source,
                        size.span)
        if int(n) < 0:
            raise error(f"size {ast.to_source(size)} = {int(n)} is negative", source,
                        size.span)
        sizes.append(int(n))
    return tuple(sizes)


def _bind_rows(rows, variable, graph: Graph, env: dict):
    """An array read by row range (a distributed run's data file, pplc/rowfiles.py): its
    dtype and shape checked now from the file's header, without reading a row; its values
    checked block by block as the process reads its own rows (`rows.check`), the same
    checks as a whole array's, with the block's first row named. Missing entries (NaN)
    are refused there: imputing them would change the layout, which every process must
    know before reading."""
    name, declared = variable.name, variable.declared_type
    if rows.dtype.kind not in "biuf":
        raise error(f"data '{name}' in {rows.what} is of type {rows.dtype}, not numbers",
                    graph.source, variable.span)
    if declared is not None:
        _check_declared(rows, declared, name, graph, env, values=False)

    def check(block, start):
        try:
            _refuse_missing(block, name, None, allow_missing=False)
            if declared is not None:
                return _check_declared(block, declared, name, graph, env, shape=False)
        except PplcError as exc:   # the block's index of the entry -> the file's
            message = re.sub(rf"'{name}\[(\d+)", lambda m: f"'{name}[{int(m[1]) + start}",
                             exc.diagnostics[0].message)
            raise error(f"in rows {start}..{start + len(block) - 1} of {rows.what}: "
                        f"{message}", graph.source, exc.diagnostics[0].span) from None
        return block

    rows.check = check
    int_declared = declared is not None and declared.base == "int"
    return rows.with_dtype(np.int64 if rows.dtype.kind in "biu" or int_declared
                           else np.float64)


def _check_declared(value: np.ndarray, declared: ast.Type, name: str, graph: Graph,
                    env: dict, shape: bool = True, values: bool = True) -> np.ndarray:
    """Type and shape of a supplied value against its declaration (`shape=False`: a
    block of its rows; `values=False`: the shape alone)."""
    evaluate = Evaluator(graph.source, graph.functions, {})
    expected = declared_sizes(declared, lambda e: evaluate(e, env), graph.source)
    if declared.base in ("corr_cholesky", "cov") and len(expected) == 1:
        expected = expected * 2  # corr_cholesky[K] and cov[K] are K x K
    if value.shape == (0,) and 0 in expected and shape:
        value = value.reshape(expected)  # `[]` is how JSON writes a 0 x K matrix
    if value.shape != expected and shape:
        raise error(f"data '{name}' has shape {shape_text(value.shape)}, but its declaration "
                    f"says {ast.type_to_source(declared)} = {shape_text(expected)}",
                    graph.source, declared.span)
    if not values:
        return value
    present = ~np.isnan(value) if value.dtype.kind == "f" else np.ones(value.shape, bool)
    if declared.base == "int":
        if value.dtype.kind == "f":
            if not np.all(np.isfinite(value[present])) or \
                    not np.all(value[present] == np.round(value[present])):
                bad = _first(present & (value != np.round(value)))
                raise error(f"data '{name}{bad}' must be an integer (declared "
                            f"{ast.type_to_source(declared)})", graph.source, declared.span)
            if present.all():
                value = value.astype(np.int64)
    else:
        value = value.astype(np.float64)
    lower, upper = type_bounds(declared, lambda e: evaluate(e, env))
    strict = declared.base in ("positive", "unit")
    if lower is not None:
        bad = present & (value <= lower if strict else value < lower)
        _refuse_outside(bad, value, name, declared, graph)
    if upper is not None:
        bad = present & (value >= upper if strict else value > upper)
        _refuse_outside(bad, value, name, declared, graph)
    if declared.base in STRUCTURE_CHECKS and present.all():
        problem = STRUCTURE_CHECKS[declared.base](value)
        if problem:
            raise error(f"data '{name}' does not satisfy its type "
                        f"{ast.type_to_source(declared)}: {problem}", graph.source,
                        declared.span)
    return value


def _refuse_outside(bad, value, name, declared, graph):
    if np.any(bad):
        example = value[tuple(np.argwhere(bad)[0])] if value.ndim else value
        raise error(f"data '{name}{_first(bad)}' = {example:g} is outside its declared type "
                    f"{ast.type_to_source(declared)}", graph.source, declared.span)


def _first(mask: np.ndarray) -> str:
    if mask.ndim == 0:
        return ""
    index = np.argwhere(mask)[0]
    return "[" + ",".join(str(int(i)) for i in index) + "]"


# Tolerance for sums and symmetry of supplied data: well above float64 rounding of values
# typed into a JSON file, well below any real mistake.
SUM_TOLERANCE = 1e-8


def _simplex(x: np.ndarray) -> str | None:
    if np.any(x < 0):
        return "an entry is negative"
    sums = x.sum(axis=-1)
    if np.any(np.abs(sums - 1) > SUM_TOLERANCE * x.shape[-1]):
        return f"its last axis sums to {np.ravel(sums)[np.argmax(np.abs(np.ravel(sums) - 1))]:g}, not 1"
    return None


def _ordered(x: np.ndarray, positive: bool = False) -> str | None:
    if positive and np.any(x <= 0):
        return "an entry is not positive"
    if np.any(np.diff(x, axis=-1) <= 0):
        return "its last axis is not strictly increasing"
    return None


def _corr_cholesky(x: np.ndarray) -> str | None:
    if np.any(np.triu(x, 1) != 0):
        return "it is not lower triangular"
    if np.any(np.diagonal(x, axis1=-2, axis2=-1) <= 0):
        return "its diagonal is not positive"
    if np.any(np.abs(np.sum(x ** 2, axis=-1) - 1) > SUM_TOLERANCE * x.shape[-1]):
        return "its rows do not have unit length"
    return None


def _cov(x: np.ndarray) -> str | None:
    if np.any(np.abs(x - np.swapaxes(x, -1, -2)) > SUM_TOLERANCE * (1 + np.abs(x))):
        return "it is not symmetric"
    try:
        np.linalg.cholesky(x)
    except np.linalg.LinAlgError:
        return "it is not positive definite"
    return None


STRUCTURE_CHECKS = {
    "simplex": _simplex, "ordered": _ordered,
    "positive_ordered": lambda x: _ordered(x, positive=True),
    "corr_cholesky": _corr_cholesky, "cov": _cov,
}
