"""The `talon` command: convert, inspect, run and verify models, list primitives. A thin layer over the library."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

import talon
from talon.ir.errors import TalonError

from . import files, plots, report, running

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_ERROR = 1
EXIT_DISAGREE = 3
DEBUG_KEY = "talon.debug"


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[DEBUG_KEY] = True


debug_option = click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
                            help="Show the full traceback when something fails.")


def one_line(message: str) -> str:
    """A multi-line message on one line: its `- item` lines joined by "; " after the first, the rest as sentences."""
    lines = [line.strip() for line in message.splitlines() if line.strip()] or [""]
    items = "; ".join(line[2:] for line in lines[1:] if line.startswith("- "))
    parts = [f"{lines[0]} {items}".strip(), *(line for line in lines[1:] if not line.startswith("- "))]
    return ". ".join([*(part.rstrip(".") for part in parts[:-1]), parts[-1]])


def error_line(exc: BaseException) -> str:
    """The one line a failure prints: our typed errors as they are, anything else with its type."""
    if isinstance(exc, (TalonError, FileNotFoundError)):
        return f"error: {one_line(str(exc))}"
    return f"error: {type(exc).__name__}: {one_line(str(exc))} (run with --debug for the traceback)"


class TalonGroup(click.Group):
    """A click group that turns any failure into one line on stderr and exit code 1 (unless --debug)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if ctx.meta.get(DEBUG_KEY):
                raise
            err.print(error_line(exc), markup=False)
            ctx.exit(EXIT_ERROR)


PACKAGES = [Path(talon.__file__).resolve().parents[1] / name for name in ("talon", "converters", "onnx_ops")]


def _ours(filename: str) -> bool:
    """True for a warning issued from this project's packages (not from torch, onnx or their dependencies)."""
    path = Path(filename).resolve()
    return any(path.is_relative_to(package) for package in PACKAGES)


@contextmanager
def reported_warnings() -> Iterator[None]:
    """Print, once each, the warnings the project's code raises inside the block (approximations, lost data)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for text in dict.fromkeys(str(w.message) for w in caught if _ours(w.filename)):
        err.print(Text("warning: ", style="yellow") + Text(text))


@contextmanager
def spinner(message: str) -> Iterator[None]:
    """A rich spinner on stderr while a long call runs (terminals only, so pipes stay clean)."""
    if not err.is_terminal:
        yield
        return
    with err.status(message):
        yield


def _steps_progress() -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)


def load(path: str, dt: float | None) -> talon.ir.Graph:
    """A graph from a .t1c, .onnx or .nir file, with a spinner and warnings for conversions."""
    with spinner(f"Loading {path}"), reported_warnings():
        return files.load_graph(path, dt)


dt_option = click.option("--dt", type=click.FloatRange(min=0, min_open=True),
                         help="Seconds per TALON timestep, for .nir files (NIR is continuous-time).")


def _human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def _shape_text(shapes: list[list[int]]) -> str:
    return ", ".join("(" + ", ".join(map(str, s)) + ")" for s in shapes) or "-"


# -- the commands ------------------------------------------------------------------------------------
@click.group(cls=TalonGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(talon.__version__, "-V", "--version", prog_name="talon", message="%(prog)s %(version)s")
@debug_option
def cli() -> None:
    """Convert, inspect, run and verify TALON IR (.t1c), ONNX (.onnx) and NIR (.nir) models."""


@cli.command()
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--spiking", is_flag=True, default=None, help="Import Gemm/MatMul layers as SpikingAffine.")
@click.option("--weight-bits", type=int, help="Weight precision recorded on SpikingAffine layers.")
@click.option("--accumulator-bits", type=int, help="Accumulator precision recorded on SpikingAffine layers.")
@click.option("--spike-mode", type=click.Choice(["binary", "graded", "rate"]), help="SpikingAffine spike mode.")
@click.option("--opset", type=int, help="ONNX opset of a written .onnx file.")
@click.option("--to-snn", is_flag=True, help="Convert a ReLU ANN to a spiking network (bridge.ann_to_snn).")
@click.option("--calibration", type=click.Path(dir_okay=False), help="--to-snn: .npy batch of real inputs.")
@click.option("--labels", type=click.Path(dir_okay=False), help="--to-snn: .npy class labels of the calibration.")
@click.option("--timesteps", type=click.IntRange(min=1), default=32, show_default=True,
              help="--to-snn: steps simulated for the conversion report.")
@dt_option
@debug_option
def convert(src: str, dst: str, to_snn: bool, calibration: str | None, labels: str | None, timesteps: int,
            **options: Any) -> None:
    """Convert SRC to DST, formats chosen by extension (.onnx, .t1c, .nir)."""
    reads, writes = files.model_format(src).read_options, files.model_format(dst).write_options
    files.existing(src)
    for path, takes in ((src, reads), (dst, writes)):
        if "dt" in takes and options["dt"] is None:
            raise files.missing_dt(path)
    if to_snn or calibration or labels:
        return _convert_to_snn(src, dst, calibration, labels, timesteps, options)
    from converters import convert as convert_file

    with spinner(f"Converting {src} -> {dst}"), reported_warnings():
        graph = convert_file(src, dst, **options)
    size = Path(dst).stat().st_size
    out.print(f"Converted {src} -> {dst}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
              f"{graph.num_params():,} parameters, {_human_bytes(size)}")


def _convert_to_snn(src: str, dst: str, calibration: str | None, labels: str | None, timesteps: int,
                    options: dict[str, Any]) -> None:
    """`convert --to-snn`: the ANN in SRC as a spiking network in DST, and the conversion report."""
    from talon.bridge.ann_to_snn import REPORT_KEY, ann_to_snn, format_report

    if calibration is None:
        raise files.CliError("--to-snn needs --calibration DATA.npy (a batch of real inputs)")
    writer = files.model_format(dst)
    given = {k: v for k, v in options.items() if v is not None and k != "dt"}
    unknown = sorted(set(given) - set(writer.write_options))
    if unknown:
        raise files.CliError(f"options {unknown} do not apply to --to-snn conversion to {Path(dst).suffix}")
    with spinner(f"Converting {src} -> {dst} (ANN to SNN)"), reported_warnings():
        graph = files.load_graph(src, options.get("dt"))
        y = None if labels is None else np.load(files.existing(labels), allow_pickle=False)
        snn = ann_to_snn(graph, np.load(files.existing(calibration), allow_pickle=False), timesteps=timesteps,
                         labels=y)
        writer.write(snn, Path(dst), **{k: v for k, v in options.items() if k in writer.write_options
                                        and v is not None})
    out.print(format_report(snn.metadata[REPORT_KEY]), markup=False)
    out.print(f"Converted {src} -> {dst}: {len(snn.nodes)} nodes, {snn.num_params():,} parameters")


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--dot", is_flag=True, help="Print the graph as Graphviz DOT text.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the graph picture: .dot/.gv text, or .svg/.png/.pdf through Graphviz.")
@dt_option
@debug_option
def inspect(path: str, as_json: bool, dot: bool, output: str | None, dt: float | None) -> None:
    """Show a model's nodes, shapes, parameters, edges, totals and metadata."""
    graph = load(path, dt)
    if output:
        _write_picture(graph, output)
    if dot:
        click.echo(report.to_dot(graph), nl=False)
        return
    info = report.graph_report(graph)
    info["file"] = {"path": path, "bytes": Path(path).stat().st_size}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    _print_report(info)


def _write_picture(graph: talon.ir.Graph, output: str) -> None:
    """Write DOT text, or render it with Graphviz's `dot` program for picture formats."""
    import shutil
    import subprocess

    text = report.to_dot(graph)
    fmt = Path(output).suffix.lower().lstrip(".")
    if fmt in ("dot", "gv"):
        Path(output).write_text(text)
    elif fmt in ("svg", "png", "pdf"):
        program = shutil.which("dot")
        if program is None:
            raise files.CliError(f"{output}: drawing .{fmt} needs Graphviz's `dot` program, which is not installed; "
                                 "install Graphviz, or write the DOT text with -o graph.dot")
        subprocess.run([program, f"-T{fmt}", "-o", output], input=text, text=True, check=True, capture_output=True)
    else:
        raise files.CliError(f"{output}: unknown picture extension {fmt!r}; expected .dot, .gv, .svg, .png or .pdf")
    err.print(f"wrote {output}", markup=False)


def _print_report(info: dict[str, Any]) -> None:
    table = Table(title=f"{info['file']['path']}", title_justify="left")
    for col, justify in (("node", "left"), ("type", "left"), ("input shape", "left"),
                         ("output shape", "left"), ("params", "right")):
        table.add_column(col, justify=justify)
    for row in info["nodes"]:
        table.add_row(row["name"], row["type"], _shape_text(row["input_shapes"]), _shape_text(row["output_shapes"]),
                      f"{row['params']:,}")
    out.print(table)
    back = {tuple(e) for e in info["back_edges"]}
    edges = [f"{s} -> {d}" + (" (feedback)" if (s, d) in back else "") for s, d in info["edges"]]
    out.print("edges: " + ("; ".join(edges) or "none"), markup=False)
    totals = info["totals"]
    neurons = ", ".join(f"{n:,} {kind}" for kind, n in totals["neurons"].items()) or "none"
    out.print(f"totals: {totals['nodes']} nodes, {totals['edges']} edges, {totals['params']:,} parameters, "
              f"{_human_bytes(totals['bytes'])} of arrays, neurons: {neurons}; "
              f"file {_human_bytes(info['file']['bytes'])}", markup=False)
    out.print(f"inputs: {', '.join(info['inputs']) or 'none'}; outputs: {', '.join(info['outputs']) or 'none'}",
              markup=False)
    out.print("metadata: " + (json.dumps(info["metadata"]) if info["metadata"] else "none"), markup=False)


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(running.BACKENDS), default="torch", show_default=True)
@click.option("--steps", "-T", type=click.IntRange(min=1), help="Timesteps (default 10, or the input file's T).")
@click.option("--batch", "-B", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size of random inputs.")
@click.option("--input", "input_path", type=click.Path(dir_okay=False),
              help="Inputs: .npy (T, B, ...) or (B, ...), or .npz keyed by input name.")
@click.option("--random", "seed", type=int, help="Seed of standard-normal random inputs (the default, seed 0).")
@click.option("--save", type=click.Path(dir_okay=False), help="Save outputs and per-layer spikes to an .npz file.")
@click.option("--raster", type=click.Path(dir_okay=False), help="Draw a spike raster plot (needs matplotlib).")
@dt_option
@debug_option
def run(path: str, backend: str, steps: int | None, batch: int, input_path: str | None, seed: int | None,
        save: str | None, raster: str | None, dt: float | None) -> None:
    """Run a model over T timesteps with state; print per-layer spike counts and rates."""
    if input_path and seed is not None:
        raise click.UsageError("give either --input or --random, not both")
    if raster:
        plots.pyplot()  # fail before a long run when matplotlib is missing
    graph = load(path, dt)
    if input_path:
        inputs = files.load_inputs(input_path, graph, steps)
    else:
        inputs = files.random_inputs(graph, steps or 10, batch, 0 if seed is None else seed)
    probed, probes = running.with_spike_probes(graph)
    outputs = _run_with_progress(probed, backend, inputs)
    _print_run(f"{path} on {backend}", running.spike_stats(outputs, probes), {n: outputs[n] for n in graph.outputs})
    trains = {layer: outputs[p] for p, layer in probes.items() if running.is_binary(outputs[p])}  # spiking layers
    if save:
        arrays = {name: outputs[name] for name in graph.outputs}
        arrays.update({f"spikes.{layer}": spikes for layer, spikes in trains.items()})
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        np.savez(save, **arrays)
        out.print(f"saved {', '.join(arrays)} to {save}", markup=False)
    if raster:
        plots.save_raster(raster, trains)
        out.print(f"raster plot written to {raster}", markup=False)


def _print_run(title: str, stats: list[running.LayerSpikes], outputs: dict[str, np.ndarray]) -> None:
    """The per-layer spike table and a one-line summary of each output ([T, B, ...])."""
    steps, batch = next(iter(outputs.values())).shape[:2]
    table = Table(title=f"{title}: {steps} timesteps, batch {batch}", title_justify="left")
    for col in ("layer", "neurons", "spikes", "rate"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for s in stats:
        spikes = ("-", "-") if s.spikes is None else (f"{s.spikes:,}", f"{s.rate:.4f}")
        table.add_row(s.layer, f"{s.neurons:,}", *spikes)
    out.print(table if stats else "no stateful (LIF/IF/...) layers")
    for name, value in outputs.items():
        out.print(f"output {name!r}: shape {tuple(value.shape)} (T, B, ...), mean {value.mean():.6g}, "
                  f"max {value.max():.6g}", markup=False)


def _run_with_progress(graph: talon.ir.Graph, backend: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Build the backend's executor and run every timestep, showing a progress bar."""
    steps = next(iter(inputs.values())).shape[0]
    with spinner(f"Preparing the {backend} executor"):
        step = running.backend_step(graph, backend)
    with _steps_progress() as progress:
        task = progress.add_task(f"{backend}", total=steps)
        return running.run_steps(step, inputs, lambda: progress.advance(task))


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--steps", "-T", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch", "-B", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
@click.option("--atol", type=float, default=1e-4, show_default=True, help="Largest accepted absolute difference.")
@dt_option
@debug_option
def verify(path: str, steps: int, batch: int, seed: int, atol: float, dt: float | None) -> None:
    """Run a model on torch and onnxruntime (and an .onnx file as is) and compare; exit 3 on disagreement."""
    graph = load(path, dt)
    inputs = files.random_inputs(graph, steps, batch, seed)
    results = {backend: _run_with_progress(graph, backend, inputs) for backend in running.BACKENDS}
    pairs = [("torch", "onnxruntime", running.compare(results["torch"], results["onnxruntime"], graph.outputs))]
    if Path(path).suffix.lower() == ".onnx":
        with spinner("Preparing onnxruntime on the original file"):
            step = running.onnxruntime_step(path, graph.inputs, graph.outputs)
        original = running.run_steps(step, inputs)
        pairs.append(("original .onnx on onnxruntime", "converted IR on torch",
                      running.compare(original, results["torch"], graph.outputs)))
    failed = _print_comparisons(pairs, atol, steps, batch)
    if failed:
        err.print(f"error: {failed} output comparison(s) disagree (atol {atol:g}, spikes must match)", markup=False)
        click.get_current_context().exit(EXIT_DISAGREE)
    out.print("all outputs agree", markup=False)


def _print_comparisons(pairs: list[tuple[str, str, list[running.Comparison]]], atol: float, steps: int,
                       batch: int) -> int:
    """Print one table per compared pair; return the number of disagreeing outputs."""
    failed = 0
    for left, right, comparisons in pairs:
        table = Table(title=f"{left} vs {right} ({steps} timesteps, batch {batch})", title_justify="left")
        for col in ("output", "max |diff|", "spike agreement", "result"):
            table.add_column(col, justify="left" if col in ("output", "result") else "right")
        for c in comparisons:
            ok = c.ok(atol)
            failed += not ok
            agreement = "-" if c.spike_agreement is None else f"{100 * c.spike_agreement:.2f}%"
            table.add_row(c.output, f"{c.max_diff:.3e}", agreement, "[green]ok[/]" if ok else "[red]DIFFERS[/]")
        out.print(table)
    return failed


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@debug_option
def primitives(as_json: bool) -> None:
    """List the TALON IR primitives with their fields and kinds."""
    from talon.ir.primitives.base import get_primitive, list_primitives, primitive_fields

    rows = []
    for name in list_primitives():
        cls = get_primitive(name)
        flags = [flag for flag in ("stateful", "merge", "multi_output") if getattr(cls, flag)]
        fields = [{"name": f.name, "kind": f.metadata["kind"], "required": _required(f)} for f in primitive_fields(cls)]
        rows.append({"name": name, "fields": fields, "flags": flags, "doc": (cls.__doc__ or "").split("\n")[0]})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"{len(rows)} TALON IR primitives", title_justify="left")
    for col in ("primitive", "fields (kind, * = required)", "flags"):
        table.add_column(col)
    for row in rows:
        fields = ", ".join(f"{f['name']}{'*' if f['required'] else ''}:{f['kind']}" for f in row["fields"])
        table.add_row(row["name"], fields, ", ".join(row["flags"]))
    out.print(table)


def _required(field: Any) -> bool:
    import dataclasses

    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `talon` console script and `python -m talon`."""
    cli.main(args=argv, prog_name="talon")
