"""The summary table as HTML, for notebooks (`Posterior._repr_html_`).

The same rows as the terminal table (`report.summary_rows`: latents first in the order
the model declares them, arrays of deterministics on one line), the run's counts and the
plain-words warnings, so a notebook user sees what `pplc sample` prints.
"""

from __future__ import annotations

import html

from pplc.inference.report import COLUMNS, summary_rows, warnings


def summary_html(posterior) -> str:
    """An HTML table of `posterior`'s summary, with its counts, timings and warnings."""
    summary = posterior.summary()
    rows = summary_rows(summary, posterior)
    what = "prior draws" if posterior.prior else "draws"
    title = (f"{posterior.attrs.get('inference_method', 'pplc')}: {posterior.num_chains} "
             f"chain{'s' if posterior.num_chains != 1 else ''} x {posterior.num_draws} "
             f"{what}")
    cell = 'style="text-align:right; font-family:monospace"'
    out = [f"<div class=\"pplc-summary\"><table><caption>{html.escape(title)}</caption>",
           "<thead><tr><th style=\"text-align:left\">parameter</th>"
           + "".join(f"<th {cell}>{html.escape(c)}</th>" for c in COLUMNS) + "</tr></thead>",
           "<tbody>"]
    for row in rows:
        out.append(f"<tr><td style=\"text-align:left; font-family:monospace\">"
                   f"{html.escape(row.label)}</td>"
                   + "".join(f"<td {cell}>{html.escape(c)}</td>" for c in row.cells)
                   + "</tr>")
    out.append("</tbody></table>")
    collapsed = [row.collapsed for row in rows if row.collapsed]
    if collapsed:
        out.append(f"<p>{html.escape(', '.join(collapsed))}: one line per array (min..max "
                   "over its elements); <code>posterior.print_summary(expand=True)</code> "
                   "shows the elements</p>")
    out.append(f"<p>{posterior.divergences} divergences, {posterior.n_grad_evals} gradient "
               f"evaluations, compile {posterior.compile_seconds:.2f} s, sampling "
               f"{posterior.sampling_seconds:.2f} s</p>")
    for line in warnings(summary, posterior):
        out.append(f"<p style=\"color:#a60\"><b>warning:</b> {html.escape(line)}</p>")
    out.append("</div>")
    return "\n".join(out)
