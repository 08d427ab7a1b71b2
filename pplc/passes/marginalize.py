"""Summing discrete latents out of the density.

For a latent z with finite support {0, ..., K-1} (Bernoulli, Categorical, Binomial with a
known total_count), defined element by element over its loops, and observed children that
read it element by element:

    z[n] ~ D(theta);  y[n] ~ F(phi(z[n]))
    ==>  factor logsumexp_k ( log D(k | theta) + log F(y[n] | phi(k)) )     for each n
         z[n] = log_softmax_k (the same terms)    (recorded: P(z[n] = k | everything else))

so the sampler sees only continuous parameters, and the per-element log-probabilities of
z given each draw are kept, from which z itself is drawn for every posterior draw. The
sum is vectorized over the plate like any other piece: O(N K) per evaluation. The
elements are independent given the rest (each z[n] enters only its own terms, and nothing
but those observations reads it), so drawing each from its conditional is a joint draw.

A Markov chain z[0] ~ D0; z[t] ~ D(z[t - 1]) read as z[t] by observations is summed out by
the forward algorithm; its smoothed marginals P(z[t] = k | everything else) are recorded
as z, and its log terms (initial, transition, emission: `chain_term`) as internal
deterministics, from which pplc/inference/discrete.py draws whole paths by forward
filtering-backward sampling.
"""

from __future__ import annotations

from dataclasses import replace

from pplc.frontend import ast
from pplc.ir.build import replace_variables
from pplc.ir.graph import Graph, Kind, Note, Piece, Variable

NAME = "marginalize"
FINITE = {"Bernoulli", "Categorical", "Binomial"}


def marginalize(graph: Graph) -> Graph:
    plans = {}   # name -> (variable, plan) or a reason it is not summed out
    for variable in graph.of_kind(Kind.LATENT):
        if not any(p.distribution.func in FINITE for p in variable.pieces):
            continue
        plan = _plan(graph, variable) if len(variable.pieces) == 1 else \
            _plan_chain(graph, variable)
        plans[variable.name] = plan if isinstance(plan, str) else (variable, plan)
    # A statement that reads two discrete latents would be folded into both sums, each
    # reading the other as a value: neither is summed out.
    readers: dict[tuple[str, int], list[str]] = {}
    for name, plan in plans.items():
        if not isinstance(plan, str):
            for child, i in plan[1][-1]:
                readers.setdefault((child.name, i), []).append(name)
    for (child, _), names in readers.items():
        for name in names:
            others = [other for other in names if other != name]
            if others and not isinstance(plans[name], str):
                plans[name] = (f"'{child}' also reads '{others[0]}': discrete latents read "
                               "by one statement cannot be summed out one by one")
    notes, rewritten, folded = [], [], []
    for name, plan in plans.items():
        if isinstance(plan, str):
            notes.append(Note(NAME, graph[name].pieces[0].span,
                              f"{name}: not marginalized — {plan}"))
            continue
        variable, plan = plan
        folded.extend(plan[-1])
        if len(variable.pieces) != 1:
            rewritten.extend(_rewrite_chain(variable, *plan))
            notes.append(Note(NAME, variable.pieces[0].span,
                              f"{name}: a Markov chain over {plan[2]} states, summed "
                              "out by the forward algorithm (O(T K^2)); for each draw its "
                              "path is drawn jointly by forward filtering-backward sampling, "
                              f"and {name}_prob holds each element's smoothed "
                              f"marginal P({name}[t] = k | data, parameters)"))
            continue
        count, children = plan
        rewritten.extend(_rewrite(graph, variable, count, children))
        names = ", ".join(sorted({c.name for c, _ in children}))
        notes.append(Note(NAME, variable.pieces[0].span,
                          f"{name}: summed out over its {count} values with {names}; "
                          f"for each draw its values are drawn from their exact conditional "
                          f"(its elements are independent given the parameters: each enters "
                          f"only its own terms), given in {name}_prob"))
    if not rewritten:
        return graph.with_notes(*notes) if notes else graph
    # Every observation less the pieces folded into any sum (two latents may each explain
    # some of one variable's statements).
    return replace_variables(graph, rewritten + _without_folded(folded)).with_notes(*notes)


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
    # The joint terms themselves, recorded with each draw (the density never reads them):
    # logsumexp over k of terms[n] is log p(y[n] | parameters), the pointwise
    # log-likelihood of LOO (pplc/inference/summed_out_likelihood.py).
    terms = Variable(mixture_terms(variable.name), Kind.DETERMINISTIC,
                     (Piece(piece.plates, piece.indices, None, joint, span),), None,
                     variable.span, internal=True)
    return [factor, conditional, terms]


def mixture_terms(name: str) -> str:
    """The internal deterministic holding a summed-out mixture's joint log terms:
    [..., k] = log p(z = k | parameters) + log p(its observations | z = k, parameters)."""
    return f"terms@{name}"


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
    # What drawing whole paths needs (forward filtering-backward sampling,
    # pplc/inference/discrete.py): the chain's log terms, recorded with each draw. The
    # density never reads them. A transition that does not read the loop variable is the
    # same at every step: one K x K matrix instead of T - 1 of them.
    t = rest.plates[0].index
    homogeneous = all(t not in {n.id for n in ast.names_in(with_state(rest.distribution, j))}
                      for j in states)
    recorded = {"initial": initial, "transition": transition.body if homogeneous
                else transition, "emission": emission}
    terms = [Variable(chain_term(name, part), Kind.DETERMINISTIC,
                      (Piece((), None, None, expr, span),), None, variable.span, internal=True)
             for part, expr in recorded.items()]
    return [factor, marginals, *terms]


CHAIN_TERMS = ("initial", "transition", "emission")


def chain_term(name: str, part: str) -> str:
    """The internal deterministic holding one of a summed-out chain's log terms:
    `initial` [k] = log p(z[0] = k); `transition` [j, k] = log p(z[t] = k | z[t - 1] = j),
    or [t - 1, j, k] when it changes with t; `emission` [t, k] = log p(y[t] | z[t] = k),
    every observation read at t summed."""
    return f"{part}@{name}"


def _without_folded(children) -> list[Variable]:
    """The observed children less the pieces folded into the factor; one with no piece
    left is plain data."""
    folded = {(c.name, i) for c, i in children}
    out = []
    for child in {c.name: c for c, _ in children}.values():
        keep = tuple(p for j, p in enumerate(child.pieces) if (child.name, j) not in folded)
        out.append(replace(child, pieces=keep, kind=Kind.OBSERVED if keep else Kind.DATA))
    return out
