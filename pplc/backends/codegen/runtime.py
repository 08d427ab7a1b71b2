"""The runtime a generated module carries: pplc's own functions, copied as source text.

A generated module must not import pplc, yet its numbers must be pplc's to rounding. So the
distribution densities and samplers (runtime/distributions.py, truncation in
runtime/truncation.py), the constraint transforms (runtime/elementwise_transforms.py,
runtime/vector_transforms.py), `integrate` (runtime/special.py), `ode` (runtime/ode.py, its
solver runtime/tsit5.py) and the passes' helpers (runtime/functions.py) are copied into it
by source: `Runtime.require` finds a top-level definition in its module, copies it with the
definitions and imports it reads (transitively, dependencies first), and nothing else, so a
module carries only what its model uses. A copied import must be of jax, numpy or the
standard library (a built module runs where only jax and numpy are installed); anything else
is a bug here (`InternalError`).

The helpers only generated code needs (`_over`, `_assemble`, ...) live in
codegen/helpers.py and are copied the same way. Nothing is written out by hand here.
"""

from __future__ import annotations

import ast as pyast
import functools
import importlib
import inspect
from dataclasses import dataclass, field

from pplc.errors import InternalError

# Modules whose source may be copied, and modules a copied import may name.
HELPERS = "pplc.backends.codegen.helpers"
SOURCES = (HELPERS, "pplc.runtime.numerics", "pplc.runtime.densities", "pplc.runtime.multivariate",
           "pplc.runtime.cdfs", "pplc.runtime.distributions", "pplc.runtime.truncation",
           "pplc.runtime.elementwise_transforms", "pplc.runtime.vector_transforms",
           "pplc.runtime.transforms", "pplc.runtime.special", "pplc.runtime.tsit5",
           "pplc.runtime.ode", "pplc.runtime.functions", "pplc.runtime.scans")
_ALLOWED_IMPORTS = ("jax", "numpy", "math", "functools", "typing", "__future__")


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


def _pplc_origin(statement: str) -> tuple[str, str] | None:
    """(module, name) of `from pplc.x import name`, whose definition is copied like the
    importing module's own; None for imports of other packages."""
    words = statement.split()
    if words[0] != "from" or not words[1].startswith("pplc"):
        return None
    if len(words) != 4:   # `... import name as alias` would need renaming in the copy
        raise InternalError(f"codegen: a copied helper needs '{statement}'")
    return words[1], words[3]


def _import_text(node, alias) -> str:
    if isinstance(node, pyast.Import):
        return f"import {alias.name}" + (f" as {alias.asname}" if alias.asname else "")
    name = alias.name + (f" as {alias.asname}" if alias.asname else "")
    return f"from {'.' * node.level}{node.module or ''} import {name}"


# The module's helper sections, in the order they are written.
_GROUPS = {module: f"from pplc/{module.removeprefix('pplc.').replace('.', '/')}.py"
           for module in SOURCES}
_GROUPS[HELPERS] = "helpers of the generated code (pplc/backends/codegen/helpers.py)"
_GROUPS["wrappers"] = "the model's distributions"


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
            origin = _pplc_origin(index.imports[name])
            if origin is not None:   # another pplc module's definition: copied in turn
                return self.require(*origin)
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

    def helper(self, name: str) -> str:
        """One of the generated code's own helpers (codegen/helpers.py), copied by source."""
        return self.require(HELPERS, name)

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


def helper_names() -> set[str]:
    """Every name a copied helper may define in a module (model names must avoid them)."""
    names: set[str] = set()
    for module in SOURCES:
        index = _index(module)
        names |= set(index.definitions) | set(index.imports)
    return names
