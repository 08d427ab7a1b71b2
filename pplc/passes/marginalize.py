"""Summing discrete latents out of the density.

For a latent z with finite support {0, ..., K-1} (Bernoulli, Categorical, Binomial with a
known total_count), defined element by element over its loops, and observed children that
read it element by element:

    z[n] ~ D(theta);  y[n] ~ F(phi(z[n]))
    ==>  factor logsumexp_k ( log D(k | theta) + log F(y[n] | phi(k)) )     for each n
         z[n] = log_softmax_k (the same terms)    (recorded: P(z[n] = k | everything else))

so the sampler sees only continuous parameters, and the per-element log-probabilities of
z given each draw are kept, from which z itself is drawn for every posterior draw. The
sum is vectorized over the plate like any other piece: O(N K) per evaluation.
"""

from __future__ import annotations

from dataclasses import replace

from pplc.frontend import ast
from pplc.ir.build import replace_variables
from pplc.ir.graph import Graph, Kind, Note, Piece, Variable

NAME = "marginalize"
FINITE = {"Bernoulli", "Categorical", "Binomial"}


def marginalize(graph: Graph) -> Graph:
    notes, rewritten = [], []
    for variable in graph.of_kind(Kind.LATENT):
        if not any(p.distribution.func in FINITE for p in variable.pieces):
            continue
        if len(variable.pieces) != 1:
            chain = _plan_chain(graph, variable)
            if isinstance(chain, str):
                notes.append(Note(NAME, variable.pieces[0].span,
                                  f"{variable.name}: not marginalized — {chain}"))
                continue
            rewritten.extend(_rewrite_chain(variable, *chain))
            notes.append(Note(NAME, variable.pieces[0].span,
                              f"{variable.name}: a Markov chain over {chain[2]} states, summed "
                              "out by the forward algorithm (O(T K^2)); its smoothed "
                              "marginals are recorded"))
            continue
        plan = _plan(graph, variable)
        if isinstance(plan, str):
            notes.append(Note(NAME, variable.pieces[0].span,
                              f"{variable.name}: not marginalized — {plan}"))
            continue
        count, children = plan
        rewritten.extend(_rewrite(graph, variable, count, children))
        names = ", ".join(sorted({c.name for c, _ in children}))
        notes.append(Note(NAME, variable.pieces[0].span,
                          f"{variable.name}: summed out over its {count} values with {names}; "
                          f"its values are drawn from their conditional for each draw"))
    if not rewritten:
        return graph.with_notes(*notes) if notes else graph
    return replace_variables(graph, rewritten).with_notes(*notes)


def _plan(graph: Graph, variable: Variable):
    """(number of values, [(child, piece index)]) or a reason it cannot be done."""
    piece = variable.pieces[0]
    loop_vars = tuple(p.index for p in piece.plates)
    if piece.indices is not None:
        if not all(isinstance(i, ast.Name) for i in piece.indices) or \
                tuple(i.id for i in piece.indices) != loop_vars:
            return "its subscripts are not exactly its loop variables"
    elif piece.plates:
        return "it is defined inside a loop without subscripts"
    count = _support_size(graph, variable)
    if isinstance(count, str):
        return count
    def check(child_name, child_piece):
        if _plates_text(child_piece) != _plates_text(piece):
            return f"'{child_name}' reads it inside different loops"
        if not _reads_elementwise(child_piece.distribution, variable.name, loop_vars):
            return f"'{child_name}' reads it other than element by element"
        return None
    children = _observed_children(graph, variable.name, check)
    return children if isinstance(children, str) else (count, children)


def _observed_children(graph: Graph, name: str, check):
    """[(child, piece index)] for every piece of an observed variable whose distribution
    reads `name`, each accepted by `check(child name, piece)` (which returns a reason
    against, or None); or the first reason it cannot be summed out."""
    children = []
    for child_name in graph.dag.successors(name):
        child = graph[child_name]
        if child.kind is not Kind.OBSERVED:
            return f"'{child_name}' depends on it and is not observed data"
        for i, piece in enumerate(child.pieces):
            if name not in {n.id for n in ast.names_in(piece.distribution)}:
                continue
            reason = check(child_name, piece)
            if reason is not None:
                return reason
            children.append((child, i))
    return children or "no observed variable depends on it"


def _plates_text(piece: Piece) -> tuple:
    return tuple((p.index, ast.to_source(p.start) if p.start else "0", ast.to_source(p.stop))
                 for p in piece.plates)


def _reads_elementwise(expr, name: str, loop_vars: tuple) -> bool:
    """Every read of `name` is `name[loop vars]` (or bare `name` for a scalar z)."""
    ok = True

    def visit(node):
        nonlocal ok
        if isinstance(node, ast.Index) and isinstance(node.value, ast.Name) \
                and node.value.id == name:
            if tuple(getattr(i, "id", None) for i in node.indices) != loop_vars:
                ok = False
            return node  # do not descend
        if isinstance(node, ast.Name) and node.id == name and loop_vars:
            ok = False
        return None

    ast.substitute(expr, visit)
    return ok


def _support_size(graph: Graph, variable: Variable) -> int | str:
    """The number of values of a discrete latent, as the shaped graph records it, or why
    it is not known."""
    if not graph.shaped:
        return "the model is not conditioned on data, which give the number of its values"
    if variable.name not in graph.states:
        return "the number of its values is not a known whole number"
    return graph.states[variable.name]


def _rewrite(graph: Graph, variable: Variable, count: int, children) -> list[Variable]:
    piece = variable.pieces[0]
    span = piece.span
    loop_vars = tuple(p.index for p in piece.plates)

    def fix(expr, k):
        def visit(node):
            if isinstance(node, ast.Index) and isinstance(node.value, ast.Name) \
                    and node.value.id == variable.name:
                return ast.Number(k, node.span)
            if isinstance(node, ast.Name) and node.id == variable.name and not loop_vars:
                return ast.Number(k, node.span)
            return None
        return ast.substitute(expr, visit)

    terms = []
    for k in range(count):
        term = ast.LogDensity(piece.distribution, ast.Number(k, span), span)
        for child, i in children:
            child_piece = child.pieces[i]
            value = ast.Name(child.name, span) if child_piece.indices is None else \
                ast.Index(ast.Name(child.name, span), child_piece.indices, span)
            term = ast.BinOp("+", term, ast.LogDensity(fix(child_piece.distribution, k),
                                                       value, span), span)
        terms.append(term)
    joint = ast.ListExpr(tuple(terms), span)
    factor = Variable(f"marginal@{variable.name}", Kind.FACTOR,
                      (Piece(piece.plates, None, None,
                             ast.Call("logsumexp", (joint,), (), span, span), span),),
                      None, variable.span, internal=True)
    conditional = Variable(variable.name, Kind.DETERMINISTIC,
                           (Piece(piece.plates, piece.indices, None,
                                  ast.Call("log_softmax", (joint,), (), span, span), span),),
                           None, variable.span, marginalized=True)
    return [factor, conditional] + _without_folded(children)


# ---------------------------------------------------------------- Markov chains (HMMs)


def _plan_chain(graph: Graph, variable: Variable):
    """z[0] ~ D0; for t in range(1, T): z[t] ~ D(z[t - 1]); observations read z[t]."""
    why = ("it is defined in several pieces that are not a Markov chain z[0] ~ ..., "
           "z[t] ~ ...(z[t - 1]) for t in range(1, T)")
    if len(variable.pieces) != 2:
        return why
    first = next((p for p in variable.pieces if not p.plates), None)
    rest = next((p for p in variable.pieces if p.plates), None)
    if first is None or rest is None or len(rest.plates) != 1:
        return why
    plate = rest.plates[0]
    t = plate.index
    if first.indices is None or len(first.indices) != 1 \
            or not isinstance(first.indices[0], ast.Number) or first.indices[0].value != 0:
        return why
    if not isinstance(plate.start, ast.Number) or plate.start.value != 1 \
            or rest.indices is None or len(rest.indices) != 1 \
            or getattr(rest.indices[0], "id", None) != t:
        return why
    lag = f"{variable.name}[{t} - 1]"
    reads = [n for n in ast.walk(rest.distribution)
             if isinstance(n, ast.Index) and isinstance(n.value, ast.Name)
             and n.value.id == variable.name]
    if not reads or any(ast.to_source(n) != lag for n in reads):
        return f"its transitions must read only {lag}"
    count = _support_size(graph, variable)
    if isinstance(count, str):
        return count
    stop = ast.to_source(plate.stop)

    def check(child_name, piece):
        if len(piece.plates) != 1 or ast.to_source(piece.plates[0].stop) != stop or \
                (piece.plates[0].start is not None and ast.to_source(piece.plates[0].start)
                 != "0"):
            return f"'{child_name}' must read it in one loop over range({stop})"
        if not _reads_elementwise(piece.distribution, variable.name, (piece.plates[0].index,)):
            return f"'{child_name}' reads it other than element by element"
        return None
    children = _observed_children(graph, variable.name, check)
    return children if isinstance(children, str) else (first, rest, count, children)


def _rewrite_chain(variable: Variable, first: Piece, rest: Piece, count: int, children):
    span = first.span
    name = variable.name

    def with_state(expr, value):
        def visit(node):
            if isinstance(node, ast.Index) and isinstance(node.value, ast.Name) \
                    and node.value.id == name:
                return ast.Number(value, node.span)
            return None
        return ast.substitute(expr, visit)

    states = range(count)
    initial = ast.ListExpr(tuple(ast.LogDensity(first.distribution, ast.Number(k, span), span)
                                 for k in states), span)
    transition = ast.OverPlates(ast.ListExpr(tuple(
        ast.ListExpr(tuple(ast.LogDensity(with_state(rest.distribution, j),
                                          ast.Number(k, span), span) for k in states), span)
        for j in states), span), rest.plates, span)
    emission = None
    for child, i in children:
        piece = child.pieces[i]
        value = ast.Name(child.name, span) if piece.indices is None else \
            ast.Index(ast.Name(child.name, span), piece.indices, span)
        term = ast.OverPlates(ast.ListExpr(tuple(
            ast.LogDensity(with_state(piece.distribution, k), value, span) for k in states),
            span), piece.plates, span)
        emission = term if emission is None else ast.BinOp("+", emission, term, span)
    args = (initial, transition, emission)
    factor = Variable(f"marginal@{name}", Kind.FACTOR,
                      (Piece((), None, None, ast.Call("hmm_forward", args, (), span, span),
                             span),), None, variable.span, internal=True)
    marginals = Variable(name, Kind.DETERMINISTIC,
                         (Piece((), None, None, ast.Call("hmm_smooth", args, (), span, span),
                                span),), None, variable.span, marginalized=True)
    return [factor, marginals] + _without_folded(children)


def _without_folded(children) -> list[Variable]:
    """The observed children less the pieces folded into the factor; one with no piece
    left is plain data."""
    folded = {(c.name, i) for c, i in children}
    out = []
    for child in {c.name: c for c, _ in children}.values():
        keep = tuple(p for j, p in enumerate(child.pieces) if (child.name, j) not in folded)
        out.append(replace(child, pieces=keep, kind=Kind.OBSERVED if keep else Kind.DATA))
    return out
