"""A `~` whose left side is a function call: `log10(earn) ~ Normal(mu, sigma)`.

Stan allows it, and users coming from Stan write it. pplc refuses it, with a located error
that says what to write instead, for two reasons:

* On a function of **parameters** (`log(sigma) ~ Normal(0, 1)` with `sigma` a `~`
  variable) the statement is not the density it looks like: the density of log(sigma) is
  not a density of sigma without the log-Jacobian of the transform (here `-log(sigma)`), and
  silently leaving it out would give another posterior than the one written.
* On a function of **data** no Jacobian is needed, but the transformed values are then an
  observation without a variable: posterior predictive draws (`--predict`) and the
  pointwise log-likelihood (`arviz.loo`) are made per observed variable, and a term without
  one would be silently left out of both. Giving the transformed values as data of their
  own (`data log10_earn: real[N]`, `log10_earn ~ Normal(mu, sigma)`) keeps every layer
  right, and the hint says so; the `factor` form is shown for a Normal.

The parser reads the statement (grammar rule `sample_on_call`) only to refuse it here,
where the program's `data` declarations tell a function of data from one of parameters.
"""

from __future__ import annotations

from pplc.errors import Diagnostics, Source, Span
from pplc.frontend import ast


class OnExpression:
    """`CALL ~ DIST`, carried from the parser's transformer to `refuse`."""

    def __init__(self, left, distribution, span: Span):
        self.left, self.distribution, self.span = left, distribution, span


def declarations(statements) -> tuple[dict[str, ast.DataDecl], dict[str, int]]:
    """The data declarations, and the first line of each name defined by `~` or `=`, of
    statements as the parser's transformer leaves them (a loop's body in `.body`, a
    misplaced decorator's statement in `.statement`)."""
    declared: dict[str, ast.DataDecl] = {}
    defined: dict[str, int] = {}
    for s in statements:
        s = getattr(s, "statement", s)
        if isinstance(s, ast.DataDecl):
            declared.setdefault(s.name, s)
        elif isinstance(s, (ast.Sample, ast.Assign)):
            defined.setdefault(s.target.name, s.span.line)
        elif isinstance(getattr(s, "body", None), tuple) and hasattr(s, "var"):
            inner_declared, inner_defined = declarations(s.body)
            for name, decl in inner_declared.items():
                declared.setdefault(name, decl)
            for name, line in inner_defined.items():
                defined.setdefault(name, line)
    return declared, defined


def refuse(statement: OnExpression, left: ast.Call, distribution: ast.Expr,
           declared: dict[str, ast.DataDecl], defined: dict[str, int], source: Source,
           diags: Diagnostics) -> None:
    """Add the error for one such statement. `declared`: the program's data declarations;
    `defined`: the names on the left of `~` or `=` anywhere, with their first line."""
    text, dist = ast.to_source(left), ast.to_source(distribution)
    names = [n for n in ast.names_in(left)]
    model = [n for n in names if n.id in defined and n.id not in declared]
    if model:
        name = model[0]
        diags.add(
            f"'{text} ~ {dist}' puts a distribution on a function of '{name.id}', a variable "
            f"of the model (line {defined[name.id]}), not on data: the density of {text} is not "
            f"a density of {name.id} without the log-Jacobian of the transform, which pplc does "
            "not add", source, left.span,
            hint=f"put the distribution on '{name.id}' itself (for `log(x) ~ Normal(m, s)` "
                 "write `x ~ LogNormal(m, s)`), or, to keep this form, add the "
                 f"log-Jacobian with `factor` (for `log(x)`: `factor -log(x)`)")
        return
    data = [n.id for n in names if n.id in declared]
    new = f"{left.func}_{data[0]}" if data else f"{left.func}_values"
    shape = ""
    if len(set(data)) == 1 and declared[data[0]].type.shape:
        shape = "[" + ", ".join(ast.to_source(e) for e in declared[data[0]].type.shape) + "]"
    target, values = new, text
    (argument,) = left.args if len(left.args) == 1 and not left.keywords else (None,)
    if isinstance(argument, ast.Index) and isinstance(argument.value, ast.Name):
        # log(x[n]) in a loop: the new array is indexed as x was.
        target = new + "[" + ", ".join(ast.to_source(i) for i in argument.indices) + "]"
        values = f"{left.func}({argument.value.id})"
    hint = (f"give the transformed values as data of their own: declare `data {new}: "
            f"real{shape}`, pass the values of {values} in the data, and write "
            f"`{target} ~ {dist}`; the "
            "posterior predictive (--predict) and the pointwise log-likelihood (arviz.loo) "
            "then include it")
    factor = _normal_factor(text, distribution)
    if factor:
        hint += f". Or add its density with `factor`, up to a constant: `{factor}`"
    diags.add(
        f"a '~' needs a variable on its left, not an expression: {text} is a function of "
        "data, and its values would be an observation without a name, which the posterior "
        "predictive and the pointwise log-likelihood could not report", source, left.span,
        hint=hint)


def _normal_factor(text: str, distribution) -> str | None:
    """The `factor` of `TEXT ~ Normal(loc, scale)`, without the constant -log(2 pi) / 2."""
    if not isinstance(distribution, ast.Call) or distribution.func != "Normal":
        return None
    given = dict(zip(("loc", "scale"), distribution.args))
    given.update((k.name, k.value) for k in distribution.keywords)
    if set(given) != {"loc", "scale"}:
        return None
    loc, scale = (_atom(given[k]) for k in ("loc", "scale"))
    return f"factor -log({ast.to_source(given['scale'])}) - 0.5 * (({text} - {loc}) / {scale}) ** 2"


def _atom(expr) -> str:
    text = ast.to_source(expr)
    return text if isinstance(expr, (ast.Name, ast.Number, ast.Index, ast.Call)) else f"({text})"
