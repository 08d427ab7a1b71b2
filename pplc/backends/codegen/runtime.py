"""The runtime a generated module carries: pplc's own functions, copied as source text.

A generated module must not import pplc, yet its numbers must be pplc's to rounding. So the
distribution densities and samplers (backends/distributions.py), the vector constraint
transforms (backends/transforms.py), `integrate` and `ode` (backends/special.py) and the
passes' helpers (backends/functions.py) are copied into it by source: `Runtime.require`
finds a top-level definition in its module, copies it with the definitions and imports it
reads (transitively, dependencies first), and nothing else, so a module carries only what
its model uses. A copied import must be of jax, numpy, diffrax or the standard library;
anything from pplc is a bug here (`InternalError`).

The few helpers that have no named definition in pplc (the elementwise transforms are
closures there) or that only generated code needs (`_over`, `_assemble`, ...) are written
out in `TEMPLATES` below, each a plain function whose docstring says what it mirrors.
"""

from __future__ import annotations

import ast as pyast
import functools
import importlib
import inspect
from dataclasses import dataclass, field

from pplc.errors import InternalError

# Modules whose source may be copied, and modules a copied import may name.
SOURCES = ("pplc.backends.distributions", "pplc.backends.transforms", "pplc.backends.special",
           "pplc.backends.functions", "pplc.backends.scans")
_ALLOWED_IMPORTS = ("jax", "numpy", "diffrax", "math", "functools", "typing", "__future__")


@dataclass(frozen=True)
class _Definition:
    """One top-level statement of a pplc module: its text and the global names it reads."""

    name: str
    text: str
    reads: frozenset[str]


@dataclass(frozen=True)
class _ModuleIndex:
    definitions: dict[str, _Definition]
    imports: dict[str, str]        # bound name -> the import statement that binds it


@functools.cache
def _index(module_name: str) -> _ModuleIndex:
    """Every top-level def, class and assignment of a module, and its imports, by name."""
    module = importlib.import_module(module_name)
    text = inspect.getsource(module)
    tree = pyast.parse(text)
    definitions: dict[str, _Definition] = {}
    imports: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, (pyast.Import, pyast.ImportFrom)):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                imports[bound] = _import_text(node, alias)
            continue
        names = _bound_names(node)
        if not names:
            continue
        segment = _segment(text, node)
        reads = frozenset(_reads(node)) - set(names)
        for name in names:
            definitions[name] = _Definition(name, segment, reads)
    return _ModuleIndex(definitions, imports)


def _bound_names(node) -> list[str]:
    if isinstance(node, (pyast.FunctionDef, pyast.ClassDef)):
        return [node.name]
    if isinstance(node, pyast.Assign):
        return [n.id for t in node.targets for n in pyast.walk(t) if isinstance(n, pyast.Name)]
    if isinstance(node, pyast.AnnAssign) and isinstance(node.target, pyast.Name):
        return [node.target.id]
    return []


def _segment(text: str, node) -> str:
    """The statement's source, decorators included."""
    lines = text.splitlines()
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "\n".join(lines[first - 1:node.end_lineno])


def _reads(node) -> set[str]:
    """Names a statement reads (over-approximated: locals that shadow globals count too)."""
    return {n.id for n in pyast.walk(node) if isinstance(n, pyast.Name)}


def _import_text(node, alias) -> str:
    if isinstance(node, pyast.Import):
        return f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
    name = alias.name + (f" as {alias.asname}" if alias.asname else "")
    return f"from {'.' * node.level}{node.module or ''} import {name}"


# The module's helper sections, in the order they are written.
_GROUPS = {module: f"from pplc/{module.removeprefix('pplc.').replace('.', '/')}.py"
           for module in SOURCES}
_GROUPS.update({"templates": "helpers of the generated code",
                "wrappers": "the model's distributions"})


@dataclass
class Runtime:
    """The helpers one generated module needs, in dependency order, with their imports."""

    blocks: dict[str, str] = field(default_factory=dict)   # name -> source, insertion-ordered
    groups: dict[str, str] = field(default_factory=dict)   # name -> its section (_GROUPS)
    imports: set[str] = field(default_factory=set)
    late: set[str] = field(default_factory=set)   # constants that call functions: last
    _seen: set[tuple[str, str]] = field(default_factory=set)

    def require(self, module_name: str, name: str) -> str:
        """Copy pplc's `module_name.name` (and what it reads) into the module; its name."""
        key = (module_name, name)
        if key in self._seen:
            return name
        self._seen.add(key)
        index = _index(module_name)
        if name in index.imports:
            self._add_import(index.imports[name])
            return name
        definition = index.definitions.get(name)
        if definition is None:
            raise InternalError(f"codegen: no top-level '{name}' in {module_name}")
        for read in sorted(definition.reads):
            if read in index.definitions or read in index.imports:
                self.require(module_name, read)
        self._add(name, definition.text, module_name)
        return name

    def define(self, module_name: str, name: str, expression: str) -> str:
        """`name = expression`, an expression over `module_name`'s definitions (a table
        entry such as `_symmetric(log_ndtr, ndtri)`); written after the functions."""
        index = _index(module_name)
        reads = {n.id for n in pyast.walk(pyast.parse(expression)) if isinstance(n, pyast.Name)}
        for read in sorted(reads):
            if read in index.definitions or read in index.imports:
                self.require(module_name, read)
        self._add(name, f"{name} = {expression}", module_name)
        self.late.add(name)
        return name

    def template(self, name: str) -> str:
        """One of the `TEMPLATES` below (and the pplc helpers it calls)."""
        if name in self.blocks:
            return name
        text, needs = TEMPLATES[name]
        for need in needs:
            if need in TEMPLATES:
                self.template(need)
            else:
                module_name, _, helper = need.rpartition(".")
                self.require(module_name, helper)
        self._add(name, text.strip("\n"), "templates")
        return name

    def wrapper(self, name: str, text: str) -> None:
        """A distribution's wrapper (codegen/distributions.py)."""
        self._add(name, text, "wrappers")

    def _add(self, name: str, text: str, group: str) -> None:
        if self.blocks.get(name, text) != text:
            raise InternalError(f"codegen: two different definitions of '{name}'")
        self.blocks[name] = text
        self.groups[name] = group

    def _add_import(self, statement: str) -> None:
        module = statement.split()[1].split(".")[0]
        if module not in _ALLOWED_IMPORTS:
            raise InternalError(f"codegen: a copied helper needs '{statement}'")
        self.imports.add(statement)

    def source(self) -> str:
        """The helpers by section; in each, constants first, then functions in the order
        they were required (a function's dependencies before it)."""
        sections = []
        for group, title in _GROUPS.items():
            names = [n for n in self.blocks if self.groups[n] == group]
            if not names:
                continue
            constants = [n for n in names if n not in self.late and not self.blocks[n]
                         .lstrip().startswith(("def ", "@", "class "))]
            functions = [n for n in names if n not in constants and n not in self.late]
            late = [n for n in names if n in self.late]
            body = "\n\n\n".join(["\n".join(self.blocks[n] for n in constants)] * bool(constants)
                                 + [self.blocks[n] for n in functions]
                                 + ["\n".join(self.blocks[n] for n in late)] * bool(late))
            sections.append(f"# {'-' * 16} {title}\n\n{body}")
        return "\n\n\n".join(sections)


# ---------------------------------------------------------------------------------------
# Hand-written helpers: name -> (source, what it calls from pplc or from other templates).

_T = "pplc.backends.transforms."
_D = "pplc.backends.distributions."

TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "_over": ('''
def _over(fn, *loops):
    """fn(i, j, ...) at every index of nested loops, stacked along leading axes: one
    jax.vmap per loop, outermost first (a loop is a Python range)."""
    if not loops:
        return fn()
    first, rest = loops[0], loops[1:]
    return jax.vmap(lambda i: _over(lambda *inner: fn(i, *inner), *rest))(
        jnp.arange(first.start, first.stop))
''', ()),
    "_sum_over": ('''
def _sum_over(fn, *loops):
    """The sum of fn(i, j, ...) over every index of the loops (a `~` or `factor` in loops)."""
    return jnp.sum(_over(lambda *index: jnp.sum(fn(*index)), *loops))
''', ("_over",)),
    "_assemble": ('''
def _assemble(extent, *pieces):
    """An array defined element by element: each piece is (indices, values) from _over.

    Its shape is `extent` followed by the elements' own shape, its dtype that of the values;
    elements no piece defines are 0."""
    index, values = pieces[0]
    element = jnp.shape(values)[jnp.ndim(jnp.asarray(index[0])):]
    dtype = jnp.result_type(*(jnp.asarray(v) for _, v in pieces))
    array = jnp.zeros(tuple(extent) + tuple(element), dtype)
    for index, values in pieces:
        array = array.at[index].set(jnp.asarray(values, dtype))
    return array
''', ()),
    "_split": ('''
def _split(u, shapes):
    """The flat vector u cut into consecutive blocks of these shapes."""
    u = jnp.asarray(u, jnp.float64)
    blocks, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        blocks.append(jnp.reshape(u[offset:offset + size], shape))
        offset += size
    if offset != u.shape[0]:
        raise ValueError(f"expected a vector of {offset} unconstrained values, "
                         f"got {u.shape[0]}")
    return blocks
''', ()),
    "_bound_array": ('''
def _bound_array(shape, *pieces):
    """A support bound that differs between the pieces defining a latent: each piece's
    (indices, values) from _over, NaN where another piece defines the element."""
    out = jnp.full(shape, jnp.nan)
    for index, values in pieces:
        out = jnp.where(jnp.isnan(out), jnp.full(shape, jnp.nan).at[index].set(values), out)
    return out
''', ()),
    "_fold": ('''
def _fold(key, index):
    """A random stream per element: the variable's key folded with each index value."""
    for i in index:
        key = jax.random.fold_in(key, jnp.asarray(i))
    return key
''', ()),
    "_fill": ('''
def _fill(array, draw, *loops):
    """array with array[index] = value for every (index, value) that draw(i, ...) gives."""
    index, values = _over(draw, *loops)
    return array.at[index].set(values)
''', ("_over",)),
    "_draw_whole": ('''
def _draw_whole(draw, shape):
    """A variable drawn whole, as floats of its shape (pplc's prior simulation)."""
    return jnp.broadcast_to(draw, shape).astype(float)
''', ()),
    "_f64": ('''
def _f64(x):
    """A float64 array (the arguments `integrate` and `ode` get)."""
    return jnp.asarray(x, jnp.float64)
''', ()),
    "_stack_items": ('''
def _stack_items(*items):
    """A list literal [a, b, ...]: the items broadcast together, stacked on a new first axis."""
    return jnp.stack(jnp.broadcast_arrays(*items))
''', ()),
    "_read_data": ('''
def _read_data(data, *names):
    """The named data as pplc binds them: int sizes as Python ints (they fix shapes and
    loop ranges), everything else as JAX arrays, float64 unless declared int. The data are
    not checked against the model here (pplc checks them when it conditions on them)."""
    out = []
    for name in names:
        value = data.get(name)
        if value is None:
            raise KeyError(f"data '{name}' is missing: this function needs it")
        array = np.asarray(value)
        if array.dtype == object:  # None entries
            array = np.asarray(value, dtype=np.float64)
        base = (DATA[name] or "").split("[")[0].split("(")[0]
        if base == "int" or (not base and array.dtype.kind in "iub"):
            array = array.astype(np.int64)
        else:
            array = array.astype(np.float64)
            if np.isnan(array).any():
                raise ValueError(f"data '{name}' has missing entries (NaN or None): this "
                                 "module cannot impute them (pplc can)")
        out.append(int(array) if base == "int" and array.ndim == 0 else jnp.asarray(array))
    return out
''', ()),
    "_read_params": ('''
def _read_params(params, shapes):
    """The latents' values from `params`, as float64 arrays of their shapes."""
    out = []
    for name, shape in shapes.items():
        if name not in params:
            raise KeyError(f"params has no value for the latent '{name}'")
        out.append(jnp.broadcast_to(jnp.asarray(params[name], jnp.float64), shape))
    return out
''', ()),
    "_unbound_extern": ('''
def _unbound_extern(name):
    raise RuntimeError(f"extern function '{name}' is not bound: set EXTERNS['{name}'] in "
                       "this module to a JAX-traceable function before calling it")
''', ()),
    "_bound": ('''
def _bound(bound):
    """A bound of Truncated as a float array, or None where the model gives none."""
    return None if bound is None else _float(bound)
''', (_D + "_float",)),
    "_truncated_lp": ('''
def _truncated_lp(x, log_prob, cdfs, params, lower, upper, discrete):
    """log Truncated(DIST, lower, upper) at x, as pplc's distributions.truncated: DIST's
    log density less log P(lower <= X <= upper) on [lower, upper], -inf outside."""
    _, log_cdf, log_ccdf = cdfs[:3]
    lo, hi = truncation_range(lower, upper, discrete)
    log_z = truncation_log_mass(lambda v: log_cdf(v, *params), lambda v: log_ccdf(v, *params),
                                lo, hi)
    return truncated_log_prob(x, lambda v: log_prob(v, *params), log_z, lower, upper)
''', (_D + "truncation_range", _D + "truncation_log_mass", _D + "truncated_log_prob")),
    "_truncated_sample": ('''
def _truncated_sample(key, shape, cdfs, params, lower, upper):
    """Draws of a continuous Truncated(DIST, lower, upper) by inverse CDF, from whichever
    tail keeps precision (pplc's distributions.truncated)."""
    cdf, _, log_ccdf, icdf, iccdf = cdfs
    bounds = [jnp.shape(b) for b in (lower, upper) if b is not None]
    shape = jnp.broadcast_shapes(tuple(shape), *(jnp.shape(p) for p in params), *bounds)
    tiny = jnp.finfo(jnp.result_type(float)).tiny  # u > 0: icdf(0) = -inf
    u = jax.random.uniform(key, shape, minval=tiny)
    f_lo = 0.0 if lower is None else cdf(lower, *params)
    f_hi = 1.0 if upper is None else cdf(upper, *params)
    s_lo = 1.0 if lower is None else jnp.exp(log_ccdf(lower, *params))
    s_hi = 0.0 if upper is None else jnp.exp(log_ccdf(upper, *params))
    x_low_tail = icdf(f_lo + u * (f_hi - f_lo), *params)
    x_high_tail = iccdf(s_lo - u * (s_lo - s_hi), *params)
    x = jnp.where(jnp.less(s_lo, f_hi), x_high_tail, x_low_tail)
    return jnp.clip(x, lower, upper)
''', ()),
    # Elementwise constraint transforms: pplc's transforms.py builds them as closures
    # (`_lower_bounded(lower)` and friends); each returns (x, log|dx/du|) per element.
    "_to_lower_bounded": ('''
def _to_lower_bounded(u, lower):
    """x = lower + exp(u) on (lower, inf); log|dx/du| = u."""
    return lower + jnp.exp(u), _broadcast_like(jnp.asarray(u), lower)
''', (_T + "_broadcast_like",)),
    "_to_upper_bounded": ('''
def _to_upper_bounded(u, upper):
    """x = upper - exp(u) on (-inf, upper) (Stan's convention); log|dx/du| = u."""
    return upper - jnp.exp(u), _broadcast_like(jnp.asarray(u), upper)
''', (_T + "_broadcast_like",)),
    "_to_interval": ('''
def _to_interval(u, lower, upper):
    """x = lower + (upper - lower) sigmoid(u), measured from the nearer bound;
    log|dx/du| = log(upper - lower) + log sigmoid(u) + log(1 - sigmoid(u))."""
    width = upper - lower
    x = jnp.where(u <= 0, lower + width * jax.nn.sigmoid(u), upper - width * jax.nn.sigmoid(-u))
    return x, jnp.log(upper - lower) + _log_sigmoid_product(u)
''', (_T + "_log_sigmoid_product",)),
    "_to_ordered": ('''
def _to_ordered(u):
    """ordered: x1 = u1, xk = x(k-1) + exp(uk); log|det J| = sum_{k>1} uk."""
    return _ordered_forward(u), jnp.sum(_as_float(u)[..., 1:], axis=-1)
''', (_T + "_ordered_forward", _T + "_as_float")),
    "_to_positive_ordered": ('''
def _to_positive_ordered(u):
    """positive_ordered: x1 = exp(u1), xk = x(k-1) + exp(uk); log|det J| = sum_k uk."""
    return jnp.cumsum(jnp.exp(_as_float(u)), axis=-1), jnp.sum(_as_float(u), axis=-1)
''', (_T + "_as_float",)),
    "_to_simplex": ('''
def _to_simplex(u):
    """simplex: centered stick-breaking; u has K - 1 entries per simplex of K."""
    return _simplex_forward(u), _simplex_log_abs_det_jacobian(u)
''', (_T + "_simplex_forward", _T + "_simplex_log_abs_det_jacobian")),
    "_to_corr_cholesky": ('''
def _to_corr_cholesky(u):
    """corr_cholesky: tanh of canonical partial correlations; K(K-1)/2 entries per K x K."""
    return _corr_cholesky_forward(u), _corr_cholesky_log_abs_det_jacobian(u)
''', (_T + "_corr_cholesky_forward", _T + "_corr_cholesky_log_abs_det_jacobian")),
    "_to_cov": ('''
def _to_cov(u):
    """cov: L L^T with L lower-triangular, exp on its diagonal; K(K+1)/2 entries per K x K."""
    return _cov_forward(u), _cov_log_abs_det_jacobian(u)
''', (_T + "_cov_forward", _T + "_cov_log_abs_det_jacobian")),
}

# The unconstrained shape of a vector kind, as an expression of the constrained `shape`.
FREE_SHAPES = {
    "ordered": "{shape}",
    "positive_ordered": "{shape}",
    "simplex": "{shape}[:-1] + ({shape}[-1] - 1,)",
    "corr_cholesky": "{shape}[:-2] + ({shape}[-1] * ({shape}[-1] - 1) // 2,)",
    "cov": "{shape}[:-2] + ({shape}[-1] * ({shape}[-1] + 1) // 2,)",
}
