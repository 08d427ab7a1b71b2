"""Where each name of a model is defined, and the mistakes seen while collecting them.

Split from check.py by job: this module reads the statements once to fill `Definitions`
(data, `~`, `=`, `def` and `extern def`, each by name) and refuses what a table of
definitions alone shows wrong: a name defined twice or two ways, a keyword or a built-in
used as a name, a data declaration or a def inside a loop. check.py then checks each
statement's expressions against these tables (expression_checks.py). The name tables of
the language live here because both read them; check.py re-exports them for its importers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pplc.errors import Span
from pplc.frontend import ast
from pplc.frontend.library import DISTRIBUTIONS, FUNCTIONS

CONSTANTS = {"inf": float("inf"), "pi": 3.141592653589793}
# Words of the language, and Python's, that cannot name a variable (docs/language.md lists
# them). `lambda` is not one: the language has no lambda expressions, and statisticians
# name a Poisson rate `lambda`.
RESERVED = {"data", "factor", "for", "in", "def", "return", "extern", "if", "else", "and",
            "or", "not", "while", "import", "elif", "class", "from", "with", "range"}
SPECIAL_FORMS = set(ast.SPECIAL_FORMS)


@dataclass
class Definitions:
    """Where each name of a model is defined."""

    data: dict[str, ast.DataDecl] = field(default_factory=dict)
    sampled: dict[str, list[ast.Sample]] = field(default_factory=dict)
    assigned: dict[str, list[ast.Assign]] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef] = field(default_factory=dict)
    externs: dict[str, ast.ExternDef] = field(default_factory=dict)
    # The name sets, cached: checks ask for them once per expression, and rebuilding them
    # each time made checking quadratic in the number of statements. The tables only grow
    # (by new keys), so their sizes tell when a cached set is stale.
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def variables(self) -> frozenset[str]:
        return self._cached("variables", (self.data, self.sampled, self.assigned))

    def callables(self) -> frozenset[str]:
        return self._cached("callables", (self.functions, self.externs))

    def _cached(self, key: str, tables: tuple[dict, ...]) -> frozenset[str]:
        sizes = tuple(len(t) for t in tables)
        hit = self._cache.get(key)
        if hit is None or hit[0] != sizes:
            hit = self._cache[key] = (sizes, frozenset().union(*tables))
        return hit[1]


def flatten(statements, plates=()) -> list[tuple[object, tuple[ast.For, ...]]]:
    """Every non-loop statement with the loops around it, outermost first."""
    out = []
    for s in statements:
        if isinstance(s, ast.For):
            out.extend(flatten(s.body, plates + (s,)))
        else:
            out.append((s, plates))
    return out


def collect_definitions(program, source, diags) -> Definitions:
    """Fill the tables of names from the statements, adding a diagnostic for each name
    defined twice, two ways or where no definition may be; every later check reads them."""
    defs = Definitions()
    first_seen: dict[str, Span] = {}
    for statement, loops in flatten(program.statements):
        if isinstance(statement, ast.DataDecl):
            if statement.name in defs.data:
                line = defs.data[statement.name].span.line
                diags.add(f"data '{statement.name}' is declared twice (first on line {line})",
                          source, statement.name_span)
                continue
            if loops:
                diags.add("a data declaration cannot be inside a loop", source, statement.span)
            defs.data[statement.name] = statement
        elif isinstance(statement, ast.Sample):
            defs.sampled.setdefault(statement.target.name, []).append(statement)
        elif isinstance(statement, ast.Assign):
            defs.assigned.setdefault(statement.target.name, []).append(statement)
        elif isinstance(statement, (ast.FunctionDef, ast.ExternDef)):
            table = defs.functions if isinstance(statement, ast.FunctionDef) else defs.externs
            if loops:
                diags.add("a function cannot be defined inside a loop", source, statement.span)
            if statement.name in first_seen:
                diags.add(f"function '{statement.name}' is defined twice (first on line "
                          f"{first_seen[statement.name].line})", source, statement.name_span)
                continue
            if statement.name in FUNCTIONS or statement.name in DISTRIBUTIONS \
                    or statement.name in SPECIAL_FORMS:
                diags.add(f"'{statement.name}' is a built-in name and cannot be redefined",
                          source, statement.name_span)
                continue
            first_seen[statement.name] = statement.name_span
            table[statement.name] = statement
    for name, samples in defs.sampled.items():
        if name in defs.assigned:
            other = defs.assigned[name][0]
            diags.add(f"'{name}' is defined both with '~' (line {samples[0].span.line}) and "
                      f"with '=' (line {other.span.line})", source, other.target.name_span,
                      hint="a variable is either random ('~') or deterministic ('='), not both")
        _check_pieces(name, samples, source, diags)
        for sample in samples:
            if sample.type is not None and sample.target.indices is not None:
                diags.add("a type annotation goes on a whole variable, not on an element",
                          source, sample.type.span)
            if sample.type is not None and name in defs.data:
                diags.add(f"'{name}' already has a type from its data declaration on line "
                          f"{defs.data[name].span.line}", source, sample.type.span)
    for name, assigns in defs.assigned.items():
        if name in defs.data:
            diags.add(f"'{name}' is data (line {defs.data[name].span.line}); it cannot also be "
                      "defined with '='", source, assigns[0].target.name_span)
        _check_pieces(name, assigns, source, diags)
    for name in defs.variables() & defs.callables():
        diags.add(f"'{name}' names both a function and a variable", source,
                  (defs.functions.get(name) or defs.externs[name]).name_span)
    for name in defs.variables():
        if name in RESERVED:
            statement = (defs.data.get(name) or (defs.sampled.get(name) or
                                                 defs.assigned.get(name))[0])
            span = statement.name_span if isinstance(statement, ast.DataDecl) \
                else statement.target.name_span
            diags.add(f"'{name}' is a keyword and cannot be used as a variable name", source,
                      span)
            continue
        # Variables may shadow functions, types and `pi` (they never meet in one position);
        # `inf` is a number literal of the language.
        if name == "inf":
            statement = (defs.data.get(name) or (defs.sampled.get(name) or
                                                 defs.assigned.get(name))[0])
            span = statement.name_span if isinstance(statement, ast.DataDecl) \
                else statement.target.name_span
            diags.add(f"'{name}' is a built-in name and cannot be used as a variable",
                      source, span)
    return defs


def _check_pieces(name, statements, source, diags):
    """A whole-variable definition must be the only one."""
    whole = [s for s in statements if s.target.indices is None]
    if whole and len(statements) > 1:
        other = next(s for s in statements if s is not whole[0])
        first, second = sorted([whole[0], other], key=lambda s: s.span.line)
        diags.add(f"'{name}' is defined twice (first on line {first.span.line})", source,
                  second.target.name_span,
                  hint="each variable has exactly one definition; an array may be defined "
                       "element by element in loops")
