"""How deeply a model nests, bounded so that no later stage runs out of Python's stack.

The checks, the graph builder and the JAX evaluator walk expressions recursively, two or
three Python frames per level, and a call of a `def` is written out in place, so a chain
of defs nests as deeply as one long expression. Python's default stack holds about 1,000
frames: a 5,000-term sum (`a + a + ... + a` nests one level per operator) or 2,000 defs
that call each other in a chain would end in a RecursionError reported as a pplc bug. This
module refuses them first, with a diagnostic at the place that is too deep; a model that
passes has at most `MAX_DEPTH` levels, which every stage handles. Parentheses add no level
(the parser is non-recursive), so `((((x))))` of any depth is accepted.

Each enclosing loop costs `LOOP_COST` levels, because the evaluator nests a `vmap` per loop.
Measured with `sample` on one chain (pplc 0.1, JAX 0.4, Python's default stack): a sum of
about 300 terms, 260 inside 8 loops, 160 inside 32 loops, and an `ode` right-hand side of
about 270 levels are the most that run; the limits keep a margin of about 100 levels for
the caller's own frames (pytest, IPython). Python's own parser stops at 200 nested
parentheses.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from pplc.errors import Diagnostics, Source, error
from pplc.frontend import ast

MAX_DEPTH = 200  # levels of nested expressions, with calls of defs written out
MAX_LOOPS = 32  # loops nested in loops (NumPy 1 arrays have at most 32 axes)
LOOP_COST = 5  # levels of expression that one enclosing loop costs

_LONG_CHAIN = ("each operator of a chain such as a + b + c + ... nests one level: write a "
               "long sum as sum([a, b, c, ...]), or split the expression into named parts")
_SPLIT = "split the expression into named parts (x1 = ..., then x2 = ... x1 ...)"


def check_nesting(statements: Iterable[object], source: Source) -> None:
    """Refuse an expression deeper than MAX_DEPTH or loops deeper than MAX_LOOPS.

    `statements` are as the parser's transformer leaves them (before
    `parsed_forms.finish_program`, which is recursive): AST statements and the parser's
    helper objects for loops, defs, returns and misplaced decorators. Iterative, so that any depth is measured without recursion."""
    pending: list[tuple[object, int]] = [(s, 0) for s in reversed(tuple(statements))]
    while pending:
        statement, loops = pending.pop()
        body = getattr(statement, "body", None)
        if body is not None and not isinstance(statement, ast.FunctionDef):
            inner = loops + (1 if hasattr(statement, "range_name") else 0)
            if inner > MAX_LOOPS:
                raise error(f"loops nested too deeply: more than {MAX_LOOPS} levels", source,
                            statement.span, hint="a model needs one loop per array dimension")
            pending.extend((s, inner) for s in reversed(tuple(body)))
        inner_statement = getattr(statement, "statement", None)  # under misplaced decorators
        if inner_statement is not None:
            pending.append((inner_statement, loops))
        for expr in _expressions(statement):
            _check_expression(expr, loops, source)


def _expressions(statement: object) -> Iterator[object]:
    """The expressions of a statement as parsed: values, subscripts, types, loop bounds."""
    for attr in ("distribution", "value", "expr"):
        value = getattr(statement, attr, None)
        if value is not None and not isinstance(value, str):
            yield value
    target = getattr(statement, "target", None)
    if isinstance(target, ast.Target):
        yield from target.indices or ()
    type_ = getattr(statement, "type", None)
    if isinstance(type_, ast.Type):
        yield from type_.shape
        yield from (k.value for k in type_.bounds)
    yield from (a for a in getattr(statement, "arguments", None) or () if a is not None)


def _check_expression(root: object, loops: int, source: Source) -> None:
    limit = _limit(loops)
    pending = [(root, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > limit:
            hint = _LONG_CHAIN if isinstance(node, (ast.BinOp, ast.BoolOp)) else _SPLIT
            raise error(_too_deep(loops), source, node.span, hint=hint)
        pending.extend((c, depth + 1) for c in reversed(tuple(ast.children(node)))
                       if c is not None)


def _limit(loops: int) -> int:
    return MAX_DEPTH - LOOP_COST * loops


def _too_deep(loops: int, suffix: str = "") -> str:
    inside = f" inside {loops} nested loop{'s' if loops > 1 else ''}" if loops else ""
    return f"expression nested too deeply: more than {_limit(loops)} levels{inside}{suffix}"


# ---------------------------------------------------------------- defs written out


def check_expanded_depth(functions: dict[str, ast.FunctionDef], callees_first: list[str],
                         roots: Iterable[tuple[object, int]], source: Source,
                         diags: Diagnostics) -> None:
    """Refuse a def, or a model expression, that nests more than MAX_DEPTH levels once the
    defs it calls are written out in place (a chain of 2,000 defs each calling the next).

    `roots` are the model's expressions with the number of loops around each.
    `callees_first` orders the (acyclic) defs so that each comes after those it calls;
    each expression is already at most MAX_DEPTH deep by itself, so the recursion over one
    expression is bounded, and the chain of defs is followed through `depths`, not the
    stack."""
    depths: dict[str, int] = {}
    deepest: dict[str, str | None] = {}  # the callee that makes a def deep
    for name in callees_first:
        fn = functions[name]
        local: dict[str, int] = {}
        for assign in fn.body:
            local[assign.name] = _depth(assign.value, depths, local)
        depths[name] = _depth(fn.result, depths, local)
        called = [n.func if isinstance(n, ast.Call) else n.name
                  for e in [*(a.value for a in fn.body), fn.result] for n in ast.walk(e)
                  if isinstance(n, (ast.Call, ast.FunctionRef))]
        deepest[name] = max((c for c in called if c in depths and c != name),
                            key=lambda c: depths[c], default=None)
        if depths[name] > MAX_DEPTH:
            diags.add(f"def '{name}' nests too deeply: with the defs it calls written out, "
                      f"its value is more than {MAX_DEPTH} levels deep", source, fn.name_span,
                      hint=f"it calls {_chain(name, deepest)}; compute intermediate values "
                           "as model variables instead of through a long chain of defs")
            return
    for root, loops in roots:
        if _depth(root, depths, {}) > _limit(loops):
            diags.add(_too_deep(loops, " with the defs it calls written out"), source,
                      root.span, hint=_SPLIT)
            return


def _depth(node, depths: dict[str, int], local: dict[str, int]) -> int:
    if isinstance(node, ast.Name):
        return local.get(node.id, 1)
    if isinstance(node, ast.FunctionRef):
        return depths.get(node.name, 1)
    below = max((_depth(c, depths, local) for c in ast.children(node) if c is not None),
                default=0)
    if isinstance(node, ast.Call) and node.func in depths:
        return depths[node.func] + below
    return 1 + below


def _chain(name: str, deepest: dict[str, str | None]) -> str:
    chain = [name]
    while deepest.get(chain[-1]) is not None and len(chain) <= len(deepest):
        chain.append(deepest[chain[-1]])
    if len(chain) > 6:
        return " -> ".join(chain[:3] + ["..."] + chain[-2:]) + f" ({len(chain)} defs)"
    return " -> ".join(chain)
