"""The `pplc` commands, one function each (`cmd_check`, `cmd_sample`, ...), and the table
`COMMANDS` of them. cli.py parses the command line, runs the command named in `COMMANDS` and
turns exceptions and signals into exit statuses (`EXIT_*`).

Split by job: here the commands that check, show and build a model and those that read a
saved fit (predict, plot); run_commands.py holds `sample` and `fit`; command_support.py
what they all share (loading the model, output checks, background imports, exit statuses).
"""

from __future__ import annotations

import sys
from pathlib import Path

from pplc.command_support import check_outputs, condition_model, load_model
# cli.py imports the exit statuses and join_background from here, as before the split.
from pplc.command_support import (EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED,  # noqa: F401
                                  EXIT_USER_ERROR, join_background)
from pplc.errors import error
from pplc.run_commands import cmd_fit, cmd_sample


def cmd_check(args) -> int:
    model = load_model(args)
    if args.data:
        conditioned = condition_model(model, args)
        graph = conditioned.graph
        print(f"{args.model}: ok with {args.data}: {conditioned.dim} unconstrained "
              f"parameters")
    else:
        model.check_externs()
        graph = model.graph
        print(f"{args.model}: ok")
    from pplc.ir.graph import Kind
    for kind in (Kind.LATENT, Kind.OBSERVED, Kind.DETERMINISTIC):
        names = [v.name for v in graph.of_kind(kind) if not v.internal]
        if names:
            print(f"  {kind.value}: {', '.join(names)}")
    if args.pedantic:
        from pplc.ir.pedantic import pedantic
        as_written = conditioned.unoptimized_graph if args.data else model.graph
        warnings = pedantic(as_written)
        for warning in warnings:
            print(warning.render(), file=sys.stderr)
        print(f"{len(warnings)} pedantic warning{'s' if len(warnings) != 1 else ''}")
    return 0


def cmd_ir(args) -> int:
    from pplc.ir.printer import format_graph

    model = load_model(args)
    conditioned = condition_model(model, args) if args.data else None
    print(format_graph(conditioned.graph if conditioned else model.graph), end="")
    if args.plan and conditioned:
        from pplc.backends.plan import format_plan
        print(format_plan(conditioned.lowered), end="")
    elif args.plan:   # what can be decided before the data give the sizes
        from pplc.backends.plan import plan_without_data, render
        from pplc.passes.pipeline import run_passes
        graph = run_passes(model.graph, ("reparameterize", *args.no_pass))
        print("# without data: reparameterization and the sizes are decided with the data\n"
              + render(plan_without_data(graph), graph), end="")
    return 0


def cmd_explain(args) -> int:
    from pplc.backends.plan import factor_notes, loop_notes, sharding_notes

    conditioned = condition_model(load_model(args), args)
    notes = conditioned.graph.notes + tuple(loop_notes(conditioned.lowered)) \
        + tuple(factor_notes(conditioned.lowered)) + tuple(sharding_notes(conditioned.lowered))
    for note in notes:
        print(f"{conditioned.graph.source.path}:{note.span.line}:{note.span.column}: "
              f"{note.message}    [{note.pass_name}]")
    if not notes:
        print(f"{args.model}: no pass changed anything"
              + (f" (off: {', '.join(args.no_pass)})" if args.no_pass else ""))
    return 0


def cmd_graph(args) -> int:
    from pplc.ir.graphviz import render

    check_outputs(args, "output")   # a picture is redrawn over an old one (no --force)
    model = load_model(args)
    if args.after and not args.data:
        raise error("--after needs --data: the passes decide from the data")
    if args.data:
        # The model as written, with plate sizes from the data; --after shows the rewrites.
        conditioned = condition_model(model, args)
        graph, sizes = conditioned.unoptimized_graph, dict(conditioned.lowered.data.sizes)
        if args.after:
            from pplc.passes.pipeline import run_passes
            graph = run_passes(graph, args.no_pass, until=args.after)
    else:
        graph, sizes = model.graph, None
    path = render(graph, args.output, sizes=sizes)
    print(f"picture written to {path}")
    return 0


def cmd_build(args) -> int:
    from pplc import __version__
    from pplc.backends.codegen import DISABLED_PASSES, check_module, generate_module
    from pplc.files import write_atomically

    output = Path(args.output)
    check_outputs(args, "output")
    if output.suffix != ".py":
        raise error(f"the output '{output}' should be a Python file (.py)")
    model = load_model(args)
    if args.data:
        from pplc.datafiles import read_data

        data, data_source = read_data(args.data)
        conditioned = model.condition(data, data_source, disabled_passes=DISABLED_PASSES)
        text = generate_module(conditioned.graph, conditioned.unoptimized_graph,
                               model_path=args.model, version=__version__,
                               lowered=conditioned.lowered)
        check_module(text, data, conditioned, path=str(output))
    else:
        from pplc.passes.pipeline import run_passes
        text = generate_module(run_passes(model.graph, DISABLED_PASSES), model.graph,
                               model_path=args.model, version=__version__)

    def write(tmp):
        Path(tmp).write_text(text)
    write_atomically(output, write)
    print(f"module written to {output}")
    return 0


def cmd_predict(args) -> int:
    from pplc.inference.posterior import Posterior

    output = Path(args.output)
    check_outputs(args, "output")
    if not args.no_cache:
        from pplc.cache import enable_compilation_cache
        enable_compilation_cache()
    fit = Posterior.from_netcdf(args.draws)
    result = condition_model(load_model(args), args).predictions(fit, seed=args.seed)
    print(f"{Path(args.model).name}: predictions at {args.data} from {args.draws} "
          f"({result.num_chains} chains x {result.num_draws} draws)")
    for name, values in result.posterior_predictive.items():
        means = values.mean(axis=(0, 1))
        print(f"  {name}: shape {values.shape[2:]}, predictive means from "
              f"{means.min():.4g} to {means.max():.4g}")
    result.to_netcdf(output)
    print(f"predictions written to {output}")
    return 0


def cmd_plot(args) -> int:
    """The picture's path, kind and file are checked before ArviZ is imported (~2 s)."""
    from pplc.plots import KINDS, check_picture_path
    from pplc.errors import did_you_mean

    if args.kind not in KINDS:
        raise error(f"unknown kind of plot '{args.kind}'",
                    hint=did_you_mean(args.kind, KINDS) or "kinds: " + ", ".join(KINDS))
    check_picture_path(args.output)
    check_outputs(args, "output")
    if not Path(args.fit).exists():
        raise error(f"cannot read '{args.fit}': no such file",
                    hint="pass a file written by 'pplc sample --output' or 'pplc fit --output'")
    from pplc.inference.posterior import Posterior
    from pplc.plots import plot

    posterior = Posterior.from_netcdf(args.fit)
    for note in plot(posterior, args.kind, args.output, args.vars):
        print(note, file=sys.stderr)
    print(f"picture written to {args.output}")
    return 0


COMMANDS = {"check": cmd_check, "ir": cmd_ir, "graph": cmd_graph, "sample": cmd_sample,
             "fit": cmd_fit, "explain": cmd_explain, "build": cmd_build,
             "predict": cmd_predict, "plot": cmd_plot}
