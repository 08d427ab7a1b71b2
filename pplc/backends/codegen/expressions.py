"""Model expressions -> Python source text over jax.numpy, as backends/evaluate.py reads them.

The text is a transliteration: `mu + tau * z` stays `mu + tau * z`, a call of a built-in
becomes its jax.numpy function (`exp(x)` -> `jnp.exp(x)`), and what evaluate.py decides
while tracing is decided here from what is known when the module is generated: an
expression of int sizes and numbers is a plain Python value (so `a if N > 0 else b` is a
Python conditional and slices have Python bounds); anything else is a JAX array, so its
conditionals become `jnp.where` and its `and`/`or`/`not` the logical ufuncs.
"""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass, field
from typing import Callable

from pplc.errors import InternalError, Source, error
from pplc.frontend import ast
from pplc.frontend.check import CONSTANTS
from pplc.frontend.library import BUILTINS, DISTRIBUTIONS, named_arguments

# Python's precedence levels (the same as the language's, see frontend/ast.py).
_PRECEDENCE = {"if": 1, "or": 2, "and": 3, "not": 4, "cmp": 5, "+": 6, "-": 6,
               "*": 7, "/": 7, "//": 7, "%": 7, "@": 7, "unary": 8, "**": 9}
_ATOM = 99

# Built-in functions -> the JAX function each is (frontend/library.py's BUILTINS), and
# those whose meaning depends on their arguments, written by `_builtin`.
JAX_FUNCTIONS = {name: b.jax for name, b in BUILTINS.items() if "." in b.jax}
SHAPE_FUNCTIONS = tuple(name for name, b in BUILTINS.items() if "." not in b.jax)
# Functions only passes write (the forward algorithm of a summed-out Markov chain).
INTERNAL_FUNCTIONS = ("hmm_forward", "hmm_smooth")


class Names:
    """Model names -> Python identifiers that collide with nothing the module defines.

    A model name that is a Python keyword or builtin, or the name of something generated
    code uses (`jnp`, `data`, `target`, a helper), gets a trailing underscore.
    """

    def __init__(self, model_names, reserved):
        self.reserved = set(reserved) | set(keyword.kwlist) | set(dir(builtins))
        self.map: dict[str, str] = {}
        taken = set(self.reserved)
        for name in sorted(model_names):
            py = name if name.isidentifier() else name.replace("@", "_")
            while py in taken:
                py += "_"
            self.map[name] = py
            taken.add(py)
        self.taken = taken

    def __call__(self, name: str) -> str:
        return self.map[name]

    def fresh(self, base: str) -> str:
        """A new module-level name (a helper function) that no model name uses."""
        name = base
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name


@dataclass
class Context:
    """What expressions may refer to while one function's body is written."""

    names: Names
    sizes: set[str]                  # int data: Python ints when the module runs
    functions: dict[str, str]        # model `def` and `extern def` -> Python name
    distribution: Callable           # (call) -> (log-density wrapper name, argument exprs)
    require: Callable                # (module, name) -> name of a copied pplc helper
    helper: Callable                 # (name) -> name of a helper (codegen/helpers.py)
    source: Source
    locals: set[str] = field(default_factory=set)    # loop indices, def parameters
    reads: set[str] = field(default_factory=set)     # model names this body reads


class ExprWriter:
    """Writes an expression as Python text; records the model names it reads."""

    def __init__(self, context: Context):
        self.c = context

    def __call__(self, expr) -> str:
        return self.write(expr)[0]

    def arg(self, expr) -> str:
        """An argument that may be absent (a bound Truncated leaves out): `None` then."""
        return "None" if expr is None else self(expr)

    def write(self, e) -> tuple[str, int]:
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:
            raise InternalError(f"codegen: no rule for {type(e).__name__}")
        return method(e)

    def wrap(self, e, level: int, right: bool = False) -> str:
        text, own = self.write(e)
        return f"({text})" if own < level or (right and own == level) else text

    # ------------------------------------------------------------ static or traced
    def is_static(self, e) -> bool:
        """A Python value when the module runs: numbers and int sizes, combined."""
        if isinstance(e, ast.Number):
            return True
        if isinstance(e, ast.Name):
            return e.id in self.c.sizes and e.id not in self.c.locals or \
                (e.id in CONSTANTS and not self._bound(e.id))
        if isinstance(e, (ast.BinOp, ast.Compare, ast.BoolOp)):
            return e.op != "@" and self.is_static(e.left) and self.is_static(e.right)
        if isinstance(e, ast.UnaryOp):
            return self.is_static(e.operand)
        if isinstance(e, ast.IfExp):
            return all(self.is_static(x) for x in (e.test, e.body, e.orelse))
        if isinstance(e, ast.Call) and e.func == "len":
            return True
        return False

    def _bound(self, name: str) -> bool:
        return name in self.c.locals or name in self.c.names.map

    # ------------------------------------------------------------ leaves
    def _Number(self, e: ast.Number):
        return repr(e.value), (_PRECEDENCE["unary"] if e.value < 0 else _ATOM)

    def _Name(self, e: ast.Name):
        if e.id in self.c.locals:
            return self.c.names(e.id) if e.id in self.c.names.map else e.id, _ATOM
        if e.id in self.c.names.map:
            self.c.reads.add(e.id)
            return self.c.names(e.id), _ATOM
        if e.id in CONSTANTS:
            return {"pi": "math.pi", "inf": "math.inf"}[e.id], _ATOM
        raise InternalError(f"codegen: unknown name '{e.id}'")

    def _ListExpr(self, e: ast.ListExpr):
        if all(isinstance(i, ast.Number) for i in e.items):
            return f"jnp.array([{', '.join(repr(i.value) for i in e.items)}])", _ATOM
        items = ", ".join(self(i) for i in e.items)
        return f"{self.c.helper('_stack_items')}({items})", _ATOM

    # ------------------------------------------------------------ operators
    def _BinOp(self, e: ast.BinOp):
        level = _PRECEDENCE[e.op]
        if e.op == "**":  # right-associative
            return f"{self.wrap(e.left, level + 1)} ** {self.wrap(e.right, level)}", level
        return f"{self.wrap(e.left, level)} {e.op} {self.wrap(e.right, level, True)}", level

    def _UnaryOp(self, e: ast.UnaryOp):
        if e.op == "not":
            if self.is_static(e.operand):
                return f"not {self.wrap(e.operand, _PRECEDENCE['not'])}", _PRECEDENCE["not"]
            return f"jnp.logical_not({self(e.operand)})", _ATOM
        return f"{e.op}{self.wrap(e.operand, _PRECEDENCE['unary'])}", _PRECEDENCE["unary"]

    def _Compare(self, e: ast.Compare):
        level = _PRECEDENCE["cmp"]
        return f"{self.wrap(e.left, level + 1)} {e.op} {self.wrap(e.right, level + 1)}", level

    def _BoolOp(self, e: ast.BoolOp):
        if self.is_static(e.left) and self.is_static(e.right):
            level = _PRECEDENCE[e.op]
            return f"{self.wrap(e.left, level)} {e.op} {self.wrap(e.right, level, True)}", level
        fn = "jnp.logical_and" if e.op == "and" else "jnp.logical_or"
        return f"{fn}({self(e.left)}, {self(e.right)})", _ATOM

    def _IfExp(self, e: ast.IfExp):
        if self.is_static(e.test):
            level = _PRECEDENCE["if"]
            return (f"{self.wrap(e.body, level + 1)} if {self.wrap(e.test, level + 1)} "
                    f"else {self.wrap(e.orelse, level)}"), level
        return f"jnp.where({self(e.test)}, {self(e.body)}, {self(e.orelse)})", _ATOM

    # ------------------------------------------------------------ indexing
    def _Index(self, e: ast.Index):
        subscripts = ", ".join(self.subscript(i) for i in e.indices)
        return f"{self.wrap(e.value, _ATOM)}[{subscripts}]", _ATOM

    def subscript(self, s) -> str:
        if isinstance(s, ast.Slice):
            start = "" if s.start is None else self(s.start)
            stop = "" if s.stop is None else self(s.stop)
            return f"{start}:{stop}"
        return self(s)

    # ------------------------------------------------------------ calls
    def _Call(self, e: ast.Call):
        if e.func in ast.SPECIAL_FORMS:
            return self._special(e), _ATOM
        args = [self(a) for a in e.args]
        if e.func in self.c.functions:
            return f"{self.c.functions[e.func]}({', '.join(args)})", _ATOM
        if e.func in JAX_FUNCTIONS:
            return f"{JAX_FUNCTIONS[e.func]}({', '.join(args)})", _ATOM
        if e.func in SHAPE_FUNCTIONS:
            return self._builtin(e.func, args), _ATOM
        if e.func in INTERNAL_FUNCTIONS:
            name = self.c.require("pplc.runtime.functions", e.func)
            return f"{name}({', '.join(args)})", _ATOM
        if e.func in DISTRIBUTIONS:
            raise error(f"a distribution ({e.func}) cannot be used as a value", self.c.source,
                        e.span)
        raise InternalError(f"codegen: no rule for the function '{e.func}'")

    def _builtin(self, func: str, args: list[str]) -> str:
        """The built-ins whose meaning depends on the number of arguments, as
        runtime/functions.py defines them."""
        if func in ("min", "max"):
            if len(args) == 1:
                return f"jnp.{func}({args[0]})"
            text = args[0]
            for a in args[1:]:
                text = f"jnp.{func}imum({text}, {a})"
            return text
        if func in ("zeros", "ones"):
            return f"jnp.{func}(({', '.join(args)},))"
        if func == "len":
            return f"len({args[0]})"
        if func == "concat":
            items = ", ".join(f"jnp.atleast_1d({a})" for a in args)
            return f"jnp.concatenate([{items}])"
        if len(args) == 1:  # stack
            return f"jnp.asarray({args[0]})"
        return f"{self.c.helper('_stack_items')}({', '.join(args)})"

    def _special(self, e: ast.Call) -> str:
        """integrate(f, a, b, ...) and ode(f, y0, t0, ts, ...): pplc's own implementations;
        arguments other than numbers become float64 arrays, as evaluate.py passes them."""
        fn = self.c.functions[e.args[0].name]
        args = [fn]
        for a in e.args[1:]:
            text = self(a)
            args.append(text if self.is_static(a) else f"{self.c.helper('_f64')}({text})")
        form = self.c.require(f"pplc.runtime.{'special' if e.func == 'integrate' else 'ode'}", e.func)
        return f"{form}({', '.join(args)})"

    # ------------------------------------------------------------ nodes passes build
    def _LogDensity(self, e: ast.LogDensity):
        name, args = self.c.distribution(e.distribution)
        return f"{name}({', '.join([self(e.value)] + [self.arg(a) for a in args])})", _ATOM

    def _OverPlates(self, e: ast.OverPlates):
        indices = [p.index for p in e.plates]
        inner = ExprWriter(Context(**{**self.c.__dict__, "locals": self.c.locals | set(indices)}))
        body = inner(e.body)
        self.c.reads |= inner.c.reads
        loops = ", ".join(self.loop(p) for p in e.plates)
        over = self.c.helper("_over")
        return f"{over}(lambda {', '.join(indices)}: jnp.asarray({body}), {loops})", _ATOM

    def loop(self, plate) -> str:
        """A plate as a Python range (its bounds are int sizes or numbers)."""
        if plate.start is None:
            return f"range({self(plate.stop)})"
        return f"range({self(plate.start)}, {self(plate.stop)})"


def distribution_arguments(call: ast.Call, signature: tuple[str, ...]) -> list:
    """A distribution call's argument expressions in the order of its signature."""
    named = named_arguments(call)
    return [named[p] for p in signature]


@dataclass
class Body:
    """What one generated function reads: the model names its code refers to."""

    reads: set[str] = field(default_factory=set)
    computed: set[str] = field(default_factory=set)   # arrays of groups already computed
