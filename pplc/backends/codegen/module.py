"""The generated module's functions, statement by statement, from the graph IR.

Each function's body follows the model: one commented block per statement, values in
the graph's evaluation order (`Graph.order`), the log density's terms in the order the
model states them (their sum does not depend on it). A statement inside loops is a
function of one index tuple vectorized over the loops with `jax.vmap` (`_over`), as
backends/evaluate.py lowers it; a deterministic that reads its own earlier elements is a
`jax.lax.scan` in the order the plan chose (recursions.py), as backends/lower.py runs it.
Every `=` statement becomes one named function (`compute_theta`; one function for arrays
computed jointly), called wherever its value is needed, so its code is written once.
"""

from __future__ import annotations

import networkx as nx

from pplc.backends.codegen.distributions import DistributionWrappers
from pplc.backends.codegen.expressions import Body, Context, ExprWriter, Names
from pplc.backends.codegen.layout import dict_lines, function
from pplc.backends.codegen.recursions import RecursionWriter
from pplc.backends.codegen.runtime import Runtime, helper_names
from pplc.backends.codegen.shapes import ShapeWriter, tuple_text
from pplc.backends.plan import Plan
from pplc.errors import error
from pplc.frontend import ast
from pplc.ir.graph import Graph, Kind, Piece, Variable, reads_itself

# Names the generated code itself uses, which model names must not shadow.
GENERATED = {"jax", "jnp", "np", "math", "functools", "annotations",
             "log_density", "unconstrained_log_density", "constrain", "sample_prior",
             "param_shapes", "variable_shapes", "PARAM_SHAPES", "DATA", "EXTERNS", "BUILT_FOR",
             "_constrain", "_read_data", "_read_params", "_unbound_extern",
             "data", "params", "u", "key", "target", "shapes", "log_jacobian", "jacobian",
             "values", "index", "Callable", "Array"}


class ModuleWriter(RecursionWriter):
    """Writes the functions of one module; `Runtime` collects the helpers they call."""

    def __init__(self, graph: Graph, prior: Graph, file_name: str, plan: Plan,
                 concrete_shapes=None, concrete_dtypes=None):
        self.graph = graph
        self.prior = prior            # the model as written: what sample_prior simulates
        self.source = graph.source
        self.file = file_name
        self.concrete = concrete_shapes or {}   # name -> shape from the build data, if any
        self.plan = plan   # the lowering's decisions (backends/plan.py), with the data if given
        self.dtypes = concrete_dtypes or {}    # name -> dtype from the build data, if any
        # Why the module holds only for the build data's sizes (a shape or an order that
        # could not be written in terms of them); BUILT_FOR then makes it refuse others.
        self.fixed_by: list[str] = []
        self.runtime = Runtime()
        self.names = Names(_identifiers(graph, prior), GENERATED | helper_names())
        self.sizes = {v.name for v in prior.variables() if v.kind is not Kind.LATENT
                      and v.declared_type is not None and v.declared_type.base == "int"
                      and not v.declared_type.shape}
        self.dists = DistributionWrappers(self.runtime, self.names.fresh, self.source)
        self.functions: dict[str, str] = {}
        self.blocks: list[str] = []       # model defs, extern stubs, compute functions
        self.computes: dict[str, str] = {}
        self.compute_args: dict[str, list[str]] = {}
        self.symbolic_param_shapes: dict[str, str] = {}   # for PARAM_SHAPES without data
        self.externs = [self.names(n) for n in graph.externs]
        for name in graph.functions:
            self.functions[name] = self.names(name)
        for name in graph.externs:
            self.functions[name] = self.names(name)

    # ------------------------------------------------------------ plumbing
    def writer(self, body: Body, local=()) -> ExprWriter:
        context = Context(self.names, self.sizes, self.functions, self.dists.logp,
                          self.runtime.require, self.runtime.helper, self.source,
                          set(local), body.reads)
        return ExprWriter(context)

    def where(self, span) -> str:
        return f"({self.file}:{span.line})"

    def statement(self, variable: Variable, piece: Piece) -> str:
        """The statement as the model writes it, for a comment: `theta[j] ~ Normal(mu, tau)`."""
        if variable.internal and variable.kind is Kind.FACTOR:
            return f"{self._source_line(piece)}    summed out over its values"
        if variable.marginalized:
            return (f"{self._source_line(piece)}    summed out; {variable.name} holds "
                    f"log P({variable.name} = k | the rest) for each value k")
        target = variable.name
        if piece.indices is not None:
            target += "[" + ", ".join(ast.to_source(i) for i in piece.indices) + "]"
        if variable.kind is Kind.FACTOR:
            text = f"factor {ast.to_source(piece.value)}"
        elif piece.distribution is not None:
            text = f"{target} ~ {ast.to_source(piece.distribution)}"
        else:
            text = f"{target} = {ast.to_source(piece.value)}"
        for plate in piece.plates:
            bounds = ast.to_source(plate.stop) if plate.start is None else \
                f"{ast.to_source(plate.start)}, {ast.to_source(plate.stop)}"
            text += f"  for {plate.index} in range({bounds})"
        return text

    def _source_line(self, piece: Piece) -> str:
        return self.source.line(piece.span.line).split("#")[0].strip()

    def comment(self, variable: Variable, piece: Piece) -> str:
        return f"# {self.statement(variable, piece)}    {self.where(piece.span)}"

    def loops(self, w: ExprWriter, piece: Piece) -> str:
        return ", ".join(w.loop(p) for p in piece.plates)

    def target(self, w: ExprWriter, variable: Variable, piece: Piece) -> str:
        """The element a piece defines: `y[j]`, or `y` for the whole variable."""
        name = w(ast.Name(variable.name, variable.span))
        if piece.indices is None:
            return name
        return f"{name}[{', '.join(w.subscript(i) for i in piece.indices)}]"

    def index_tuple(self, w: ExprWriter, piece: Piece) -> str:
        items = [w(i) for i in piece.indices]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"

    def read_data(self, body: Body, names) -> list[str]:
        """`J, y = _read_data(data, DATA, BUILT_FOR, "J", "y")` for the data names a body
        reads."""
        names = [n for n in self.graph.order() if n in names] + \
            sorted(n for n in names if n not in self.graph)
        if not names:
            return []
        self.runtime.helper("_read_data")
        py = [self.names(n) for n in names]
        quoted = ", ".join(f'"{n}"' for n in names)
        if len(py) == 1:
            return [f"{py[0]} = _read_data(data, DATA, BUILT_FOR, {quoted})[0]"]
        return [f"{', '.join(py)} = _read_data(data, DATA, BUILT_FOR, {quoted})"]

    def is_data(self, name: str) -> bool:
        graph = self.graph if name in self.graph else self.prior
        return graph[name].kind in (Kind.DATA, Kind.OBSERVED)

    # ------------------------------------------------------------ model functions
    def model_functions(self) -> None:
        """`def` functions of the model, and stubs for its `extern def`s."""
        for name, fn in self.graph.functions.items():
            w = self.writer(Body(), set(fn.params) | {a.name for a in fn.body})
            params = ", ".join(w(ast.Name(p, fn.span)) for p in fn.params)
            body = [f"{w(ast.Name(a.name, a.span))} = {w(a.value)}" for a in fn.body]
            body.append(f"return {w(fn.result)}")
            self.blocks.append(function(
                f"{self.functions[name]}({params})",
                f"def {name}({', '.join(fn.params)})    {self.where(fn.span)}", body))
        for name, extern in self.graph.externs.items():
            self.runtime.helper("_unbound_extern")
            self.blocks.append(function(
                f"{self.functions[name]}(*args)",
                f'extern def {name}({", ".join(extern.params)}): calls EXTERNS["{name}"], '
                "which you set.",
                [f'fn = EXTERNS["{name}"]', "if fn is None:",
                 f'    _unbound_extern("{name}")', "return fn(*args)"]))

    def compute(self, variable: Variable) -> str:
        """The function computing a deterministic variable; its name."""
        name = variable.name
        if name in self.computes:
            return self.computes[name]
        if name in self.plan.groups:
            return self._compute_group(self.plan.groups[name])
        fn = self.names.fresh(f"compute_{self.names(name)}")
        self.computes[name] = fn
        body = Body()
        own = self.names(name)
        w = self.writer(body)
        lines = self._compute_lines(w, variable, own)
        body.reads.discard(name)
        args = self._ordered(body.reads)
        doc = "\n".join(f"{self.statement(variable, p)}    {self.where(p.span)}"
                         for p in variable.pieces)
        self.blocks.append(function(f"{fn}({', '.join(self.names(a) for a in args)})", doc,
                                    lines))
        self.compute_args[name] = args
        return fn

    def _compute_lines(self, w: ExprWriter, variable: Variable, own: str) -> list[str]:
        """The body of a compute function: the value, or the array assembled from its
        pieces, each piece a local function of one index tuple (`theta_j(j)`)."""
        pieces = variable.pieces
        if len(pieces) == 1 and pieces[0].indices is None:
            return [f"return jnp.asarray({w(pieces[0].value)})"]
        recursive = [p for p in pieces if reads_itself(variable.name, p)]
        plain = [p for p in pieces if p not in recursive]
        lines, parts = [], []
        for piece in plain:
            indices = [p.index for p in piece.plates]
            inner = self.writer(Body(reads=w.c.reads), indices)
            fn = self._piece_function(variable, piece)
            lines += [f"def {fn}({', '.join(inner(ast.Name(i, piece.span)) for i in indices)}):",
                      f"    return {self.index_tuple(inner, piece)}, {inner(piece.value)}"]
            loops = self.loops(inner, piece)
            parts.append(f"{self.runtime.helper('_over')}({fn}{', ' + loops if loops else ''})")
        assemble = self.runtime.helper("_assemble")
        value = f"{assemble}({self.extent(variable, w)}, {', '.join(parts)})"
        if not recursive:
            return lines + [f"return {value}"]
        lines.append(f"{own} = {value}")
        for piece in recursive:
            lines += [""] + self._recursive_lines(w, variable, piece, own)
        return lines + [f"return {own}"]

    def _piece_function(self, variable: Variable, piece: Piece) -> str:
        """A name for the function of one piece's element: `sigma[t]` -> `sigma_t`."""
        text = "_".join([self.names(variable.name)] + [ast.to_source(i) for i in piece.indices])
        name = "_".join(filter(None, "".join(c if c.isalnum() else "_" for c in text).split("_")))
        if not name.isidentifier():
            name = f"{self.names(variable.name)}_piece"
        return self.names.fresh(name)

    def extent(self, variable: Variable, w: ExprWriter) -> str:
        return tuple_text(self.extent_dims(variable, w))

    def extent_dims(self, variable: Variable, w: ExprWriter) -> tuple[str, ...]:
        """The leading axes a variable's subscripts cover, as sizes of the data."""
        leading = ShapeWriter(self.graph, w, self.concrete).leading(variable)
        if leading is None:
            concrete = self.concrete.get(variable.name)
            if concrete is None:
                raise error(f"pplc build cannot write the extent of '{variable.name}' in terms "
                            "of the data's sizes (its subscripts are not loop indices or "
                            "numbers)", self.source, variable.span,
                            hint="pass --data so that the module is built for those sizes")
            depth = len(variable.pieces[0].indices)
            self.fixed_by.append(f"the extent of {variable.name}")
            return tuple(str(n) for n in concrete[:depth])
        return tuple(leading)

    def _ordered(self, names) -> list[str]:
        order = {n: i for i, n in enumerate(self.graph.order())}
        prior = {n: i for i, n in enumerate(self.prior.order())}
        return sorted(names, key=lambda n: (order.get(n, prior.get(n, 0)), n))

    def call_compute(self, body: Body, variable: Variable) -> list[str]:
        """A deterministic's value, computed where a function needs it (with its comment);
        the arrays of a group all at once, where the first of them is needed."""
        if variable.name in body.computed:
            return []
        fn = self.compute(variable)
        body.reads |= set(self.compute_args[variable.name])
        args = ", ".join(self.names(a) for a in self.compute_args[variable.name])
        group = self.plan.groups.get(variable.name)
        targets = [variable.name] if group is None else list(group.names)
        body.computed |= set(targets)
        return [first_comment(self, variable),
                f"{', '.join(self.names(n) for n in targets)} = {fn}({args})"]

    # ------------------------------------------------------------ shapes
    def shape_functions(self) -> tuple[str, str]:
        """`variable_shapes(data)` (every random variable) and `param_shapes(data)`."""
        body = Body()
        w = self.writer(body)
        variables = [v for v in self.prior.variables() if v.stochastic]
        shapes = ShapeWriter(self.prior, w, self.concrete)
        entries = []
        symbolic = {}
        fixed = []
        for variable in variables:
            if variable.kind is Kind.OBSERVED and variable.declared_type is None:
                text = f"np.shape({w(ast.Name(variable.name, variable.span))})"
                entries.append(f'"{variable.name}": {text}')
                continue
            dims = shapes.of(variable.name)
            if dims is None:
                dims = self._concrete_shape(variable)
                fixed.append(variable.name)
            entries.append(f'"{variable.name}": {tuple_text(dims)}')
            symbolic[variable.name] = repr(dims)
        self.symbolic_param_shapes = {n: symbolic[n] for n in self.latents()}
        reads = [n for n in body.reads if self.is_data(n)]
        doc = "The shapes of the random variables (latent and observed) for these data."
        if fixed:
            doc += (f"\nThose of {', '.join(fixed)} are fixed: the sizes of the data given to "
                    "pplc build\n(they could not be written in terms of the data's sizes).")
        shapes = function("variable_shapes(data)", doc,
                          self.read_data(body, reads) + dict_lines("return ", entries))
        latents = self.latents()
        keys = ", ".join(f'"{n}"' for n in latents) + ("," if len(latents) == 1 else "")
        params = function("param_shapes(data)",
                          "The latents' shapes for these data, in the order of the "
                          "unconstrained vector.",
                          ["shapes = variable_shapes(data)",
                           f"return {{name: shapes[name] for name in ({keys})}}"])
        return shapes, params

    def _concrete_shape(self, variable: Variable) -> tuple[str, ...]:
        concrete = self.concrete.get(variable.name)
        same_role = variable.name in self.graph and self.graph[variable.name].stochastic
        if concrete is None or not same_role:
            raise error(f"pplc build cannot write the shape of '{variable.name}' in terms of "
                        "the data's sizes", self.source, variable.span,
                        hint=f"declare its type (e.g. {variable.name}: real[N] ~ ...), or pass "
                             "--data so that the module is built for those sizes")
        self.fixed_by.append(f"the shape of {variable.name}")
        return tuple(str(n) for n in concrete)

    def latents(self) -> list[str]:
        return [n for n in self.graph.order() if self.graph[n].kind is Kind.LATENT]

    # ------------------------------------------------------------ log density
    def log_density(self) -> str:
        body = Body()
        latents = self.latents()
        needed = set()
        for v in self.graph.variables():
            if v.stochastic or v.kind is Kind.FACTOR:
                needed |= nx.ancestors(self.graph.dag, v.name)
        lines = []
        terms = []
        for name in self.graph.order():
            variable = self.graph[name]
            if variable.kind is Kind.DETERMINISTIC and name in needed:
                lines += [""] + self.call_compute(body, variable)
            elif variable.stochastic or variable.kind is Kind.FACTOR:
                terms += [(variable, piece) for piece in variable.pieces]
        # The terms in the order the model states them (their sum is the same in any order).
        for variable, piece in sorted(terms, key=lambda t: (t[1].span.line, t[1].span.column)):
            lines += ["", self.comment(variable, piece), self.term(body, variable, piece)]
        reads = [n for n in body.reads if self.is_data(n)]
        head = self.read_data(body, reads)
        if latents:
            self.runtime.helper("_read_params")
            py = [self.names(n) for n in latents]
            target = f"[{py[0]}]" if len(py) == 1 else ", ".join(py)
            head.append(f"{target} = _read_params(params, param_shapes(data))")
        return function("log_density(params, data)",
                        "log p(params, data): the log density at constrained values of the "
                        "latents, without\nJacobian terms (pplc's "
                        "ConditionedModel.log_density).",
                        head + ["target = 0.0"] + lines + ["return target"])

    def term(self, body: Body, variable: Variable, piece: Piece) -> str:
        """`target += ...`: one statement's term of the log density."""
        indices = [p.index for p in piece.plates]
        w = self.writer(body, indices)
        if variable.kind is Kind.FACTOR:
            value = w(piece.value)
        else:
            name, args = self.dists.logp(piece.distribution)
            args = [self.target(w, variable, piece)] + [w.arg(a) for a in args]
            value = f"{name}({', '.join(args)})"
        if not indices:
            return f"target += jnp.sum({value})"
        over = self.runtime.helper("_sum_over")
        return f"target += {over}(lambda {', '.join(indices)}: {value}, {self.loops(w, piece)})"

    # ------------------------------------------------------------ constrain
# ---------------------------------------------------------------- small helpers

def first_comment(writer: ModuleWriter, variable: Variable) -> str:
    piece = variable.pieces[0]
    more = f" (+{len(variable.pieces) - 1} more)" if len(variable.pieces) > 1 else ""
    return f"# {writer.statement(variable, piece)}{more}  {writer.where(piece.span)}"


def _identifiers(*graphs: Graph) -> set[str]:
    """Every name a model binds: variables, loop indices, functions and their locals."""
    names: set[str] = set()
    for graph in graphs:
        names |= set(graph.dag.nodes)
        for variable in graph.variables():
            for piece in variable.pieces:
                names |= {p.index for p in piece.plates}
                for e in (piece.distribution, piece.value):
                    if e is not None:
                        names |= {p.index for n in ast.walk(e) if isinstance(n, ast.OverPlates)
                                  for p in n.plates}
        for fn in graph.functions.values():
            names |= {fn.name, *fn.params, *(a.name for a in fn.body)}
        names |= set(graph.externs)
    return {n for n in names if not n.startswith("factor@") and not n.startswith("marginal@")}
