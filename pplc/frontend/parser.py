"""Source text -> AST, with lark (LALR(1) and an indenter, as Python's own grammar is read).

The Transformer only builds frozen AST nodes with spans; all checks run afterwards
(lark wraps exceptions raised in callbacks in `VisitError`). It is lark's non-recursive
transformer, so that a deeply nested text (5,000 parentheses) is read without exhausting
Python's stack; the nesting check then bounds the depth of what the recursive passes see.
Syntax errors become diagnostics in `syntax_errors.py`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedInput
from lark.indenter import DedentError, Indenter
from lark.visitors import Transformer_NonRecursive

from pplc.errors import Diagnostics, Source, Span, error
from pplc.frontend import ast
from pplc.frontend.nesting import check_nesting
from pplc.frontend.syntax_errors import dedent_error, syntax_error
from pplc.frontend.text import check_indentation, decode, normalize
from pplc.frontend.tilde_on_expression import OnExpression, declarations, refuse

_GRAMMAR = Path(__file__).with_name("grammar.lark")


class _Indenter(Indenter):
    NL_type = "_NEWLINE"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


@functools.cache
def _parser() -> Lark:
    return Lark(_GRAMMAR.read_text(), parser="lalr", postlex=_Indenter(),
                propagate_positions=True, maybe_placeholders=True)


def _span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _tspan(token: Token) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column)


def _number(text: str) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    def __init__(self, source: Source):
        super().__init__()
        self.source = source

    # ---- statements
    def start(self, meta, items):
        return ast.Program(tuple(i for i in items if i is not None), self.source)

    def data_decl(self, meta, items):
        name, type_ = items
        return ast.DataDecl(str(name), type_, _span(meta), _tspan(name))

    def sample(self, meta, items):
        target, type_, dist = items
        return ast.Sample(target, type_, dist, (), _span(meta))

    def assign(self, meta, items):
        target, value = items
        return ast.Assign(target, value, _span(meta))

    def factor(self, meta, items):
        return ast.Factor(items[0], _span(meta))

    def sample_on_call(self, meta, items):
        left, distribution = items
        return OnExpression(left, distribution, _span(meta))

    def extern_def(self, meta, items):
        name, _lpar, params, _rpar = items
        return ast.ExternDef(str(name), tuple(params or ()), _span(meta), _tspan(name))

    def decorator(self, meta, items):
        return items[0], _span(meta)

    def decorated(self, meta, items):
        *decorators, statement = items
        if not isinstance(statement, ast.Sample):
            return _Misplaced(tuple(decorators), statement)
        return ast.Sample(statement.target, statement.type, statement.distribution,
                          tuple(str(d) for d, _ in decorators), statement.span,
                          tuple(span for _, span in decorators))

    def for_statement(self, meta, items):
        var, range_name, lpar, arguments, rpar, body = items
        header = Span(meta.line, meta.column, rpar.end_line, rpar.end_column + 1)
        return _ForHeader(var, range_name, arguments, body, header)

    def block(self, meta, items):
        return tuple(items)

    def def_statement(self, meta, items):
        name, _lpar, params, rpar, body = items
        header = Span(meta.line, meta.column, rpar.end_line, rpar.end_column + 1)
        return _DefHeader(str(name), tuple(params or ()), body, header, _tspan(name))

    def return_statement(self, meta, items):
        return _Return(items[0], _span(meta))

    def params(self, meta, items):
        return tuple(str(p) for p in items if p is not None)

    def target(self, meta, items):
        name, _l, subscripts, _r = items
        return ast.Target(str(name), subscripts, _span(meta), _tspan(name))

    def type(self, meta, items):
        name, *parts = items
        shape = tuple(e for kind, value in parts if kind == "shape" for e in value)
        bounds = tuple(k for kind, value in parts if kind == "bounds" for k in value)
        return ast.Type(str(name), shape, bounds, _span(meta))

    def type_bounds_part(self, meta, items):
        return ("bounds", items[1])

    def type_shape_part(self, meta, items):
        return ("shape", items[1])

    def type_bounds(self, meta, items):
        return tuple(i for i in items if i is not None)

    # ---- expressions
    def number(self, meta, items):
        return ast.Number(_number(str(items[0])), _span(meta))

    def name(self, meta, items):
        return ast.Name(str(items[0]), _span(meta))

    def paren(self, meta, items):
        return items[1]

    def list_expr(self, meta, items):
        return ast.ListExpr(tuple(i for i in items[1:-1] if i is not None), _span(meta))

    def if_expr(self, meta, items):
        body, test, orelse = items
        return ast.IfExp(test, body, orelse, _span(meta))

    def or_expr(self, meta, items):
        return ast.BoolOp("or", items[0], items[1], _span(meta))

    def and_expr(self, meta, items):
        return ast.BoolOp("and", items[0], items[1], _span(meta))

    def not_expr(self, meta, items):
        return ast.UnaryOp("not", items[0], _span(meta))

    def compare(self, meta, items):
        left, op, right = items
        return ast.Compare(str(op), left, right, _span(meta))

    def binary(self, meta, items):
        left, op, right = items
        return ast.BinOp(str(op), left, right, _span(meta))

    def unary(self, meta, items):
        op, operand = items
        return ast.UnaryOp(str(op), operand, _span(meta))

    def index(self, meta, items):
        value, _l, subscripts, _r = items
        return ast.Index(value, subscripts, _span(meta))

    def call(self, meta, items):
        name, _l, arguments, _r = items
        arguments = arguments or ()
        args = tuple(a for a in arguments if not isinstance(a, ast.Keyword))
        keywords = tuple(a for a in arguments if isinstance(a, ast.Keyword))
        return _CallParts(str(name), args, keywords, arguments, _span(meta), _tspan(name))

    def subscripts(self, meta, items):
        return tuple(i for i in items if i is not None)

    def slice(self, meta, items):
        start, stop = items
        return ast.Slice(start, stop, _span(meta))

    def arguments(self, meta, items):
        return tuple(i for i in items if i is not None)

    def keyword(self, meta, items):
        name, value = items
        return ast.Keyword(str(name), value, _span(meta))


class _CallParts(ast.Call):
    """A call as parsed, remembering argument order so that `f(a=1, 2)` can be refused."""

    def __init__(self, func, args, keywords, ordered, span, func_span):
        super().__init__(func, args, keywords, span, func_span)
        object.__setattr__(self, "ordered", ordered)


class _ForHeader:
    """Carries a `for` loop from the transformer to `_finish`, which checks `range(...)`."""

    def __init__(self, var, range_name, arguments, body, span):
        self.var, self.range_name, self.arguments, self.body, self.span = (
            var, range_name, arguments, body, span)


class _DefHeader:
    """A `def` as parsed, with any statements in its body: `_finish` keeps the local
    assignments and the final return, and refuses the rest."""

    def __init__(self, name, params, body, span, name_span):
        self.name, self.params, self.body, self.span, self.name_span = (
            name, params, body, span, name_span)


class _Return:
    """`return EXPR`, wherever it was written (only the end of a def body is right)."""

    def __init__(self, value, span):
        self.value, self.span = value, span


class _Misplaced:
    """Decorators on a statement that is not a `~`."""

    def __init__(self, decorators, statement):
        self.decorators, self.statement = decorators, statement


def parse(text: str, path: str = "<model>") -> ast.Program:
    """Parse a model's text into an AST; raise PplcError with a located diagnostic on error."""
    text = normalize(text)
    source = Source(path, text if text.endswith("\n") else text + "\n")
    check_indentation(source)
    try:
        tree = _parser().parse(source.text)
    except UnexpectedInput as exc:
        raise syntax_error(exc, source) from None
    except DedentError:
        raise dedent_error(source) from None
    program = _ToAst(source).transform(tree)
    check_nesting(program.statements, source)  # before anything walks the tree recursively
    return _finish(program, source)


def parse_file(path: str | Path) -> ast.Program:
    """Parse a model file: UTF-8 text (`text.decode`), a byte-order mark allowed."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read model file '{path}': {exc.strerror or exc}") from None
    return parse(decode(data, str(path)), str(path))


# ---------------------------------------------------------------- post-parse shaping

_DEF_BODY = "a def may contain only local assignments `name = EXPR` and a final `return EXPR`"
# What each statement is called, and how to write it instead, when it appears in a def body.
_NOT_IN_A_DEF = {
    ast.Sample: ("a '~' statement", "declare random variables outside the def and pass them "
                                    "in as arguments"),
    ast.Factor: ("'factor'", "write the factor outside the def: `factor f(x)`"),
    ast.DataDecl: ("a data declaration", "declare data at the top level and pass it in as an "
                                         "argument"),
    _ForHeader: ("a loop", "functions broadcast, so compute on whole arrays; or loop outside "
                           "the def and call it for each element"),
    _DefHeader: ("another def", "define functions at the top level; one def may call another"),
    ast.ExternDef: ("an extern def", "declare `extern def` at the top level"),
    _Misplaced: ("a decorator", "@centered and @noncentered go before a '~' statement outside "
                                "functions"),
    OnExpression: ("a '~' statement", "declare random variables outside the def and pass them "
                                      "in as arguments"),
}


def _finish(program: ast.Program, source: Source) -> ast.Program:
    """Replace the parser's helper objects with AST nodes, checking forms lark accepts loosely:
    loops over range(...), def bodies, `return` and decorators, argument order."""
    diags = Diagnostics()
    declared, defined = declarations(program.statements)

    def statement(s):
        if isinstance(s, OnExpression):
            refuse(s, expr(s.left), expr(s.distribution), declared, defined, source, diags)
            return None
        if isinstance(s, _ForHeader):
            args = [expr(a) for a in (s.arguments or ())]
            if str(s.range_name) != "range":
                diags.add(f"a loop must run over range(...), not '{s.range_name}'", source,
                          _tspan(s.range_name),
                          hint="write `for i in range(N):` or `for i in range(a, b):`")
            elif any(isinstance(a, ast.Keyword) for a in args) or not 1 <= len(args) <= 2:
                diags.add("range takes one or two positional arguments: range(stop) or "
                          "range(start, stop)", source, s.span)
            start, stop = (None, args[0]) if len(args) == 1 else (args + [None, None])[:2]
            body = tuple(b for b in map(statement, s.body) if b is not None)
            return ast.For(str(s.var), start, stop, body, s.span, _tspan(s.var))
        if isinstance(s, ast.Sample):
            return ast.Sample(target(s.target), s.type and type_(s.type), expr(s.distribution),
                              s.decorators, s.span, s.decorator_spans)
        if isinstance(s, ast.Assign):
            return ast.Assign(target(s.target), expr(s.value), s.span)
        if isinstance(s, ast.Factor):
            return ast.Factor(expr(s.expr), s.span)
        if isinstance(s, ast.DataDecl):
            return ast.DataDecl(s.name, type_(s.type), s.span, s.name_span)
        if isinstance(s, _DefHeader):
            return function(s)
        if isinstance(s, _Return):
            diags.add("'return' is only allowed as the last line of a def body", source,
                      Span(s.span.line, s.span.column, s.span.line, s.span.column + 6),
                      hint="a model's statements define variables; `return` ends a `def`")
            return None
        if isinstance(s, _Misplaced):
            misplaced(s)
            return statement(s.statement)
        return s

    def misplaced(m: _Misplaced):
        (name, span), *_ = m.decorators
        what = _statement_kind(m.statement)
        diags.add(f"a decorator (@{name}) must come right before a '~' statement, not before "
                  f"{what}", source, span,
                  hint="@centered and @noncentered choose the parameterization of a random "
                       "variable")

    def function(d: _DefHeader) -> ast.FunctionDef:
        body, result = [], None
        for item in d.body:
            if result is not None:
                diags.add(f"nothing may follow the `return` that ends def '{d.name}'", source,
                          _first_span(item),
                          hint=f"{_DEF_BODY}; the return on line {result.span.line} ends it")
                break
            if isinstance(item, _Return):
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
                what, hint = _NOT_IN_A_DEF[_Misplaced if decorated else type(item)]
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
        if isinstance(e, _CallParts):
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
    if isinstance(s, _Return):
        return "a return"
    return _NOT_IN_A_DEF[type(s)][0]


def _first_span(s) -> Span:
    """Where a statement begins: its decorator, its header, or its first token."""
    if isinstance(s, _Misplaced):
        return s.decorators[0][1]
    if isinstance(s, ast.Sample) and s.decorator_spans:
        return s.decorator_spans[0]
    return s.span
