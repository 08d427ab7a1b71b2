"""The forms lark reads loosely, and their conversion to AST nodes once the text is parsed.

Split from parser.py by job: the transformer there builds frozen AST nodes, and where the
grammar accepts more than the language (a loop over anything, a def body of any statements,
`return` anywhere, decorators on any statement, keyword arguments before positional ones)
it leaves one of the helper objects below. `finish_program` then replaces them with AST
nodes, reporting each misuse at its span, all together; it runs after the nesting check,
so its recursive walk of expressions stays within Python's stack.
"""

from __future__ import annotations

from pplc.errors import Diagnostics, Source, Span
from pplc.frontend import ast
from pplc.frontend.syntax_errors import token_span
from pplc.frontend.tilde_on_expression import OnExpression, declarations, refuse


class CallParts(ast.Call):
    """A call as parsed, remembering argument order so that `f(a=1, 2)` can be refused."""

    def __init__(self, func, args, keywords, ordered, span, func_span):
        super().__init__(func, args, keywords, span, func_span)
        object.__setattr__(self, "ordered", ordered)


class ForHeader:
    """Carries a `for` loop from the transformer to `finish_program`, which checks
    `range(...)`."""

    def __init__(self, var, range_name, arguments, body, span):
        self.var, self.range_name, self.arguments, self.body, self.span = (
            var, range_name, arguments, body, span)


class DefHeader:
    """A `def` as parsed, with any statements in its body: `finish_program` keeps the local
    assignments and the final return, and refuses the rest."""

    def __init__(self, name, params, body, span, name_span):
        self.name, self.params, self.body, self.span, self.name_span = (
            name, params, body, span, name_span)


class Return:
    """`return EXPR`, wherever it was written (only the end of a def body is right)."""

    def __init__(self, value, span):
        self.value, self.span = value, span


class Misplaced:
    """Decorators on a statement that is not a `~`."""

    def __init__(self, decorators, statement):
        self.decorators, self.statement = decorators, statement


# ---------------------------------------------------------------- post-parse shaping

_DEF_BODY = "a def may contain only local assignments `name = EXPR` and a final `return EXPR`"
# What each statement is called, and how to write it instead, when it appears in a def body.
_NOT_IN_A_DEF = {
    ast.Sample: ("a '~' statement", "declare random variables outside the def and pass them "
                                    "in as arguments"),
    ast.Factor: ("'factor'", "write the factor outside the def: `factor f(x)`"),
    ast.DataDecl: ("a data declaration", "declare data at the top level and pass it in as an "
                                         "argument"),
    ForHeader: ("a loop", "functions broadcast, so compute on whole arrays; or loop outside "
                          "the def and call it for each element"),
    DefHeader: ("another def", "define functions at the top level; one def may call another"),
    ast.ExternDef: ("an extern def", "declare `extern def` at the top level"),
    Misplaced: ("a decorator", "@centered and @noncentered go before a '~' statement outside "
                               "functions"),
    OnExpression: ("a '~' statement", "declare random variables outside the def and pass them "
                                      "in as arguments"),
}


def finish_program(program: ast.Program, source: Source) -> ast.Program:
    """Replace the parser's helper objects with AST nodes, checking forms lark accepts loosely:
    loops over range(...), def bodies, `return` and decorators, argument order."""
    diags = Diagnostics()
    declared, defined = declarations(program.statements)

    def statement(s):
        if isinstance(s, OnExpression):
            refuse(s, expr(s.left), expr(s.distribution), declared, defined, source, diags)
            return None
        if isinstance(s, ForHeader):
            args = [expr(a) for a in (s.arguments or ())]
            if str(s.range_name) != "range":
                diags.add(f"a loop must run over range(...), not '{s.range_name}'", source,
                          token_span(s.range_name),
                          hint="write `for i in range(N):` or `for i in range(a, b):`")
            elif any(isinstance(a, ast.Keyword) for a in args) or not 1 <= len(args) <= 2:
                diags.add("range takes one or two positional arguments: range(stop) or "
                          "range(start, stop)", source, s.span)
            start, stop = (None, args[0]) if len(args) == 1 else (args + [None, None])[:2]
            body = tuple(b for b in map(statement, s.body) if b is not None)
            return ast.For(str(s.var), start, stop, body, s.span, token_span(s.var))
        if isinstance(s, ast.Sample):
            return ast.Sample(target(s.target), s.type and type_(s.type), expr(s.distribution),
                              s.decorators, s.span, s.decorator_spans)
        if isinstance(s, ast.Assign):
            return ast.Assign(target(s.target), expr(s.value), s.span)
        if isinstance(s, ast.Factor):
            return ast.Factor(expr(s.expr), s.span)
        if isinstance(s, ast.DataDecl):
            return ast.DataDecl(s.name, type_(s.type), s.span, s.name_span)
        if isinstance(s, DefHeader):
            return function(s)
        if isinstance(s, Return):
            diags.add("'return' is only allowed as the last line of a def body", source,
                      Span(s.span.line, s.span.column, s.span.line, s.span.column + 6),
                      hint="a model's statements define variables; `return` ends a `def`")
            return None
        if isinstance(s, Misplaced):
            misplaced(s)
            return statement(s.statement)
        return s

    def misplaced(m: Misplaced):
        (name, span), *_ = m.decorators
        what = _statement_kind(m.statement)
        diags.add(f"a decorator (@{name}) must come right before a '~' statement, not before "
                  f"{what}", source, span,
                  hint="@centered and @noncentered choose the parameterization of a random "
                       "variable")

    def function(d: DefHeader) -> ast.FunctionDef:
        body, result = [], None
        for item in d.body:
            if result is not None:
                diags.add(f"nothing may follow the `return` that ends def '{d.name}'", source,
                          _first_span(item),
                          hint=f"{_DEF_BODY}; the return on line {result.span.line} ends it")
                break
            if isinstance(item, Return):
                result = item
            elif isinstance(item, ast.Assign) and item.target.indices is None:
                body.append(ast.LocalAssign(item.target.name, expr(item.value), item.span))
            elif isinstance(item, ast.Assign):
                diags.add(f"{_DEF_BODY}, not an assignment to an element", source,
                          item.target.span,
                          hint="assign a whole local name; build an array with a list "
                               "literal, [a, b, c]")
            else:
                decorated = isinstance(item, ast.Sample) and item.decorators
                what, hint = _NOT_IN_A_DEF[Misplaced if decorated else type(item)]
                diags.add(f"{_DEF_BODY}, not {what}", source, _first_span(item), hint=hint)
        if result is None:
            diags.add(f"def '{d.name}' has no `return`", source, d.name_span,
                      hint="a def ends with `return EXPR`, the value it computes")
            value = ast.Number(0, d.name_span)
        else:
            value = expr(result.value)
        return ast.FunctionDef(d.name, d.params, tuple(body), value, d.span, d.name_span)

    def target(t: ast.Target) -> ast.Target:
        if t.indices is None:
            return t
        return ast.Target(t.name, tuple(expr(i) for i in t.indices), t.span, t.name_span)

    def type_(t: ast.Type) -> ast.Type:
        return ast.Type(t.base, tuple(expr(e) for e in t.shape),
                        tuple(ast.Keyword(k.name, expr(k.value), k.span) for k in t.bounds),
                        t.span)

    def expr(e):
        if isinstance(e, CallParts):
            seen_keyword = False
            for a in e.ordered:
                if isinstance(a, ast.Keyword):
                    seen_keyword = True
                elif seen_keyword:
                    diags.add("positional argument follows keyword argument", source, a.span)
                    break
            args = tuple(expr(a) for a in e.args)
            if e.func in ast.SPECIAL_FORMS and args and isinstance(args[0], ast.Name):
                args = (ast.FunctionRef(args[0].id, args[0].span),) + args[1:]
            return ast.Call(e.func, args,
                            tuple(ast.Keyword(k.name, expr(k.value), k.span) for k in e.keywords),
                            e.span, e.func_span)
        if isinstance(e, ast.Index):
            return ast.Index(expr(e.value), tuple(expr(i) for i in e.indices), e.span)
        if isinstance(e, ast.Slice):
            return ast.Slice(e.start and expr(e.start), e.stop and expr(e.stop), e.span)
        if isinstance(e, ast.BinOp):
            return ast.BinOp(e.op, expr(e.left), expr(e.right), e.span)
        if isinstance(e, ast.Compare):
            return ast.Compare(e.op, expr(e.left), expr(e.right), e.span)
        if isinstance(e, ast.BoolOp):
            return ast.BoolOp(e.op, expr(e.left), expr(e.right), e.span)
        if isinstance(e, ast.UnaryOp):
            return ast.UnaryOp(e.op, expr(e.operand), e.span)
        if isinstance(e, ast.IfExp):
            return ast.IfExp(expr(e.test), expr(e.body), expr(e.orelse), e.span)
        if isinstance(e, ast.ListExpr):
            return ast.ListExpr(tuple(expr(i) for i in e.items), e.span)
        if isinstance(e, ast.Keyword):
            return ast.Keyword(e.name, expr(e.value), e.span)
        return e

    statements = tuple(statement(s) for s in program.statements)
    diags.raise_if_any()
    return ast.Program(tuple(s for s in statements if s is not None), source)


def _statement_kind(s) -> str:
    if isinstance(s, ast.Assign):
        return "an '=' statement"
    if isinstance(s, Return):
        return "a return"
    return _NOT_IN_A_DEF[type(s)][0]


def _first_span(s) -> Span:
    """Where a statement begins: its decorator, its header, or its first token."""
    if isinstance(s, Misplaced):
        return s.decorators[0][1]
    if isinstance(s, ast.Sample) and s.decorator_spans:
        return s.decorator_spans[0]
    return s.span
