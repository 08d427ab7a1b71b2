"""The generated code of recursions: arrays whose elements read earlier elements.

Each runs the evaluation order the plan holds (backends/plan.py `scans`, `groups`) with
pplc's own scans (runtime/scans.py, copied by source): a scan over one loop carrying the
array or a window of its last slices, one element per step in a dependency order found
for the build data, or several arrays in one joint scan (ARMA's `nu` and `err`). Without
data, the order of a recursion is one the text alone proves (`h[t] = f(h[t - 1])`).
"""

from __future__ import annotations

import textwrap

import numpy as np

from pplc.backends import recurrence, scan_forms
from pplc.backends.codegen.expressions import Body, ExprWriter
from pplc.backends.codegen.layout import WIDTH, function
from pplc.backends.codegen.shapes import tuple_text
from pplc.backends.recurrence import Scan
from pplc.errors import error
from pplc.frontend import ast
from pplc.ir.graph import Piece, Variable


class RecursionWriter:
    """ModuleWriter's part that writes recursions (a mixin: it uses the writer's names,
    runtime, plan and blocks)."""

    def _compute_group(self, group: recurrence.Group) -> str:
        """One function computing arrays defined in terms of each other's elements, stage
        by stage as the plan orders them (a joint scan: scans.joint_scan)."""
        names = [self.names(n) for n in group.names]
        fn = self.names.fresh("compute_" + "_".join(names))
        body = Body()
        w = self.writer(body)
        lines = []
        for name, own in zip(group.names, names):
            variable = self.graph[name]
            element = self.concrete[name][len(variable.pieces[0].indices):]
            shape = tuple_text(self.extent_dims(variable, w) + tuple(str(n) for n in element))
            dtype = "jnp.int64" if np.issubdtype(self.dtypes[name], np.integer) \
                else "jnp.float64"
            lines.append(f"{own} = jnp.zeros({shape}, {dtype})")
        for stage in group.stages:
            lines.append("")
            if stage.joint:
                lines += self._joint_lines(w, group, stage)
                continue
            ((name, i),) = stage.pieces
            variable = self.graph[name]
            lines += self._recursive_lines(w, variable, variable.pieces[i], self.names(name))
        lines.append(f"return {', '.join(names)}")
        body.reads -= set(group.names)
        args = self._ordered(body.reads)
        doc = "\n".join(f"{self.statement(self.graph[n], p)}    {self.where(p.span)}"
                         for n in group.names for p in self.graph[n].pieces)
        self.blocks.append(function(f"{fn}({', '.join(self.names(a) for a in args)})",
                                    "Computed together: " + ", ".join(group.names)
                                    + " read each other's elements.\n" + doc, lines))
        for name in group.names:
            self.computes[name] = fn
            self.compute_args[name] = args
        return fn

    def _joint_lines(self, w: ExprWriter, group: recurrence.Group, stage) -> list[str]:
        """Pieces of several arrays in one scan over the loop they share: each a function
        of the arrays as they stand and the loop indices (pplc/runtime/scans.py)."""
        names = [self.names(n) for n in group.names]
        over = self.runtime.helper("_over")
        lines, entries = [], []
        for (name, i), at in zip(stage.pieces, stage.plates):
            variable = self.graph[name]
            piece = variable.pieces[i]
            indices = [p.index for p in piece.plates]
            inner = self.writer(Body(reads=w.c.reads), indices + list(group.names))
            loop_names = [inner(ast.Name(n, piece.span)) for n in indices]
            fn = self._piece_function(variable, piece)
            lines += [f"def {fn}({', '.join(names + loop_names)}):",
                      f"    return {self.index_tuple(inner, piece)}, {inner(piece.value)}"]
            others = [n for k, n in enumerate(loop_names) if k != at]
            loops = ", ".join(inner.loop(p) for k, p in enumerate(piece.plates) if k != at)
            call = f"{fn}(*arrays, {', '.join(loop_names)})"
            entries.append(f"({group.names.index(name)}, lambda arrays, {loop_names[at]}: "
                           f"{over}(lambda {', '.join(others)}: {call}"
                           f"{', ' + loops if loops else ''}))" if others else
                           f"({group.names.index(name)}, lambda arrays, {loop_names[at]}: "
                           f"{call})")
            steps = inner.loop(piece.plates[at])
        joint_scan = self.runtime.require("pplc.runtime.scans", "joint_scan")
        return lines + [f"{', '.join(names)} = {joint_scan}([{', '.join(entries)}], "
                        f"({', '.join(names)},), {steps})"]

    def _recursive_lines(self, w: ExprWriter, variable: Variable, piece: Piece, own: str
                         ) -> list[str]:
        """A recursive piece, run by the scan the plan chose (pplc/runtime/scans.py,
        copied by source): the element as a function of the loop indices, then the scan."""
        scan = self._scan(variable, piece)
        indices = [p.index for p in piece.plates]
        fn = self._piece_function(variable, piece)
        over = self.runtime.helper("_over")
        if scan.order is not None:
            return self._ordered_lines(w, variable, piece, own, scan, fn)
        if scan.form:
            return self._algebraic_lines(w, variable, piece, own, scan, fn)
        if scan.at_once or not scan.lags or not _in_axis_order(piece, scan):
            inner = self.writer(Body(reads=w.c.reads), indices + [variable.name])
            names = [inner(ast.Name(i, piece.span)) for i in indices]
            head = [f"def {fn}({', '.join([own] + names)}):  # "
                    + ("reads elements defined above" if scan.at_once else
                       f"reads earlier elements: a scan over {indices[scan.plate]}"),
                    f"    return {self.index_tuple(inner, piece)}, {inner(piece.value)}"]
            if scan.at_once:
                loops = ", ".join(inner.loop(p) for p in piece.plates)
                values = f"{over}(lambda {', '.join(names)}: {fn}({own}, {', '.join(names)}), " \
                    f"{loops})" if names else f"{fn}({own})"
                return head + [f"index, value = {values}",
                               f"{own} = {own}.at[index].set(jnp.asarray(value, {own}.dtype))"]
            others = [n for k, n in enumerate(names) if k != scan.plate]
            loops = ", ".join(inner.loop(p) for k, p in enumerate(piece.plates)
                              if k != scan.plate)
            scan_loop = self.runtime.require("pplc.runtime.scans", "scan_loop")
            steps = inner.loop(piece.plates[scan.plate])
            return head + [f"{own} = {scan_loop}(lambda {own}, {names[scan.plate]}: {over}("
                           f"lambda {', '.join(others)}: {fn}({own}, {', '.join(names)})"
                           f"{', ' + loops if loops else ''}), {own}, {steps})"]
        # A window of the last slices: each read h[.., t - k, ..] is the slice `own_lagk`.
        depth = max(scan.lags)
        lag_names = {k: self.names.fresh(f"{own}_lag{k}") for k in scan.lags}
        value = ast.substitute(piece.value, recurrence.lag_read(
            variable.name, scan.axis, indices[scan.plate], lag_names))
        inner = self.writer(Body(reads=w.c.reads), indices + list(lag_names.values()))
        names = [inner(ast.Name(i, piece.span)) for i in indices]
        lags = list(lag_names.values())
        others = [n for k, n in enumerate(names) if k != scan.plate]
        loops = ", ".join(inner.loop(p) for k, p in enumerate(piece.plates) if k != scan.plate)
        window = ", ".join(f"window[{depth - k}]" for k in lag_names)
        lagged_scan = self.runtime.require("pplc.runtime.scans", "lagged_scan")
        steps = inner.loop(piece.plates[scan.plate])
        return [f"def {fn}({', '.join(lags + names)}):  # reads the last {depth} slice(s): a "
                f"scan over {indices[scan.plate]} carrying them",
                f"    return {inner(value)}",
                f"{own} = {lagged_scan}(lambda window, {names[scan.plate]}: {over}("
                f"lambda {', '.join(others)}: {fn}({window}, {', '.join(names)})"
                f"{', ' + loops if loops else ''}), {own}, {scan.axis}, {depth}, {steps}"
                + (f", {scan.unroll})" if scan.unroll > 1 else ")")]

    def _algebraic_lines(self, w: ExprWriter, variable: Variable, piece: Piece, own: str,
                         scan: Scan, fn: str) -> list[str]:
        """A linear or log-semiring recurrence (backends/scan_forms.py): its parts at every
        step at once, then scans.linear_recurrence or scans.semiring_recurrence."""
        indices = [p.index for p in piece.plates]
        order = [scan.plate] + [k for k in range(len(indices)) if k != scan.plate]
        inner = self.writer(Body(reads=w.c.reads), indices)
        names = [inner(ast.Name(indices[k], piece.span)) for k in order]
        loops = ", ".join(inner.loop(piece.plates[k]) for k in order)
        linear = scan.form == scan_forms.LINEAR
        parts = (scan_forms.linear_parts if linear else scan_forms.semiring_parts)(
            variable.name, piece, scan.axis)
        texts = ", ".join("None" if p is None else inner(p) for p in parts)
        over = self.runtime.helper("_over")
        every = f"*{over}(lambda {', '.join(names)}: {fn}({', '.join(names)}), {loops})"
        head = [f"def {fn}({', '.join(names)}):  # the parts of a {scan.form} recurrence, "
                f"at every step at once", f"    return {texts}"]
        steps, how = inner.loop(piece.plates[scan.plate]), f"{scan.parallel}, {scan.unroll}"
        if linear:
            written = [i.id for i in piece.indices]
            others = [indices[k] for k in order[1:]]
            axes = [0] + [1 + k for k in sorted(range(len(others)),
                                                 key=lambda k: written.index(others[k]))]
            call = self.runtime.require("pplc.runtime.scans", "linear_recurrence")
            return head + [f"{own} = {call}({own}, {scan.axis}, {steps}, {every}, {axes!r}, "
                           f"{how})"]
        call = self.runtime.require("pplc.runtime.scans", "semiring_recurrence")
        return head + [f"{own} = {call}({own}, {steps}, {every}, {how})"]

    def _scan(self, variable: Variable, piece: Piece) -> Scan:
        """The loop a recursive piece is scanned over, as the plan decided: for the build
        data, or, without data, from the subscripts alone (`plan.scans_from_text`)."""
        scan = self.plan.scans.get((variable.name, variable.pieces.index(piece)))
        if scan is None:
            raise error(f"pplc build cannot tell from the text alone in which order to "
                        f"compute the elements of '{variable.name}'", self.source, piece.span,
                        hint="pass --data: the order is found from the subscripts' values")
        return scan

    def _ordered_lines(self, w: ExprWriter, variable: Variable, piece: Piece, own: str,
                       scan: Scan, fn: str) -> list[str]:
        """One element per step in the dependency order the plan found for the build data
        (scans.ordered_scan): the order is a constant of the module, so an array of
        another shape is refused rather than computed in a wrong order."""
        indices = [p.index for p in piece.plates]
        inner = self.writer(Body(reads=w.c.reads), indices + [variable.name])
        names = [inner(ast.Name(i, piece.span)) for i in indices]
        order = self.names.fresh(f"ORDER_{own}")
        rows = np.asarray(scan.order).tolist()
        self.blocks.append(f"# The order in which {variable.name}'s elements are computed "
                           f"(line {piece.span.line}), found\n# from the data given to "
                           f"pplc build: each row is ({', '.join(indices)}).\n"
                           + textwrap.fill(f"{order} = np.array({rows!r}, dtype=np.int64)",
                                           width=WIDTH, subsequent_indent="    ",
                                           break_on_hyphens=False))
        shape = tuple(self.concrete[variable.name])
        self.fixed_by.append(f"the order of {variable.name}'s elements")
        ordered_scan = self.runtime.require("pplc.runtime.scans", "ordered_scan")
        return [f"def {fn}({', '.join([own] + names)}):  # reads its own elements, in the "
                "order below",
                f"    return {self.index_tuple(inner, piece)}, {inner(piece.value)}",
                f"if {own}.shape != {shape!r}:",
                f"    raise ValueError(\"the order of {variable.name}'s elements was found "
                f"for the data pplc build was given ({variable.name} of shape {shape}): "
                f"build the module again for these data\")",
                f"{own} = {ordered_scan}(lambda {own}, row: {fn}({own}, *row), {own}, "
                f"{order})"]


def _in_axis_order(piece: Piece, scan: Scan) -> bool:
    """Whether the loops other than the scanned one write the array's axes in their own
    order (the window's slices are then built without a transpose)."""
    written = [i.id for i in piece.indices]
    others = [p.index for k, p in enumerate(piece.plates) if k != scan.plate]
    return [written.index(o) for o in others] == sorted(written.index(o) for o in others)
