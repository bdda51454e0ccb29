"""The `talon` command: convert, inspect, run and verify models, list primitives. A thin layer over the library."""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

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


def as_data(value: Any) -> str:
    """Text from a file (a node name, a message quoting one) made safe to print: control characters escaped
    (no terminal escape sequences); print it with markup=False or inside Text, never as markup."""
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii")
                   for c in str(value))


def data_text(value: Any) -> Text:
    """`as_data(value)` as rich Text, so that table cells show it literally (a name like '[/bold]' too)."""
    return Text(as_data(value))


def error_line(exc: BaseException) -> str:
    """The one line a failure prints: our typed errors as they are, anything else with its type."""
    if isinstance(exc, (TalonError, FileNotFoundError)):
        return f"error: {as_data(one_line(str(exc)))}"
    return f"error: {type(exc).__name__}: {as_data(one_line(str(exc)))} (run with --debug for the traceback)"


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


def human_bytes(n: int) -> str:
    """A byte count as B, KB, MB or GB."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def shape_text(shapes: list[list[int]]) -> str:
    """Shapes as "(2, 3), (4)", or "-" for none."""
    return ", ".join("(" + ", ".join(map(str, s)) + ")" for s in shapes) or "-"


# -- options several commands share --------------------------------------------------------------------
JSON_SCHEMA_VERSION = 1  # docs/cli-json.md; bumped only when a key changes meaning or disappears

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (docs/cli-json.md).")
seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random inputs.")
atol_option = click.option("--atol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
                           help="Accepted absolute difference.")
rtol_option = click.option("--rtol", type=click.FloatRange(min=0), default=0.0, show_default=True,
                           help="Accepted difference relative to the second run's value.")


def emit_json(command: str, payload: dict[str, Any]) -> None:
    """Print a command's result as one JSON document headed by its schema name and version."""
    from .report import jsonable

    click.echo(json.dumps({"schema": f"talon.{command}", "version": JSON_SCHEMA_VERSION, **jsonable(payload)},
                          indent=2))


def input_options(default_batch: int | None) -> Callable[[Callable], Callable]:
    """--steps, --batch, --input, --random, --rate and --seed: where a command's inputs come from."""
    batch_help = "Batch size of random inputs" + (f" (default {default_batch}, or the .onnx file's fixed batch)."
                                                   if default_batch else ".")
    options = [
        click.option("--steps", "-T", type=click.IntRange(min=1), help="Timesteps (default 10, or the input file's T)."),
        click.option("--batch", "-B", type=click.IntRange(min=1), help=batch_help),
        click.option("--input", "input_path", type=click.Path(dir_okay=False),
                     help="Inputs: .npy (T, B, ...) or (B, ...), or .npz keyed by input name."),
        click.option("--random", "distribution", type=click.Choice(files.DISTRIBUTIONS), default="gaussian",
                     show_default=True, help="Random inputs: standard normal, uniform on [0, 1), or spikes at --rate."),
        click.option("--rate", type=click.FloatRange(0, 1), default=0.1, show_default=True,
                     help="Spike probability per element and step of --random bernoulli inputs."),
        seed_option,
    ]

    def decorate(command: Callable) -> Callable:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def make_inputs(graph: talon.ir.Graph, path: str, options: dict[str, Any], default_batch: int = 1) -> dict[str, np.ndarray]:
    """The inputs input_options describe: the --input file, else random ones (batch: --batch, else the .onnx
    file's fixed batch, else default_batch). Pops those options."""
    steps, batch, input_path = options.pop("steps"), options.pop("batch"), options.pop("input_path")
    distribution, rate, seed = options.pop("distribution"), options.pop("rate"), options.pop("seed")
    if input_path:
        ctx = click.get_current_context()
        given = [f"--{name}" for name in ("random", "rate", "seed", "batch")
                 if ctx.get_parameter_source("distribution" if name == "random" else name)
                 is click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"give either --input or {'/'.join(given)}, not both")
        return files.load_inputs(input_path, graph, steps)
    if batch is None:
        batch = files.fixed_batch(path) or default_batch
    return files.random_inputs(graph, steps or 10, batch, seed, distribution, rate)


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
@click.option("--opset", type=int, callback=lambda ctx, param, value: _check_opset(value),
              help="ONNX opset of a written .onnx file.")
@click.option("--host-fallback", is_flag=True, default=None,
              help="Keep ONNX nodes without a TALON equivalent as HostRegion nodes run by onnxruntime.")
@click.option("--to-snn", is_flag=True, help="Convert a ReLU ANN to a spiking network (bridge.ann_to_snn).")
@click.option("--calibration", type=click.Path(dir_okay=False), help="--to-snn: .npy batch of real inputs.")
@click.option("--labels", type=click.Path(dir_okay=False), help="--to-snn: .npy class labels of the calibration.")
@click.option("--timesteps", type=click.IntRange(min=1), default=32, show_default=True,
              help="--to-snn: steps simulated for the conversion report.")
@dt_option
@json_option
@debug_option
def convert(src: str, dst: str, as_json: bool, to_snn: bool, calibration: str | None, labels: str | None,
            timesteps: int, **options: Any) -> None:
    """Convert SRC to DST, formats chosen by extension (.onnx, .t1c, .nir)."""
    reads = files.model_format(src).read_options
    files.model_format(dst)
    files.existing(src)
    if "dt" in reads and options["dt"] is None:  # writing takes the dt a NIR import kept, when there is one
        raise files.missing_dt(src)
    if to_snn or calibration or labels:
        return _convert_to_snn(src, dst, calibration, labels, timesteps, options)
    from converters import UnsupportedOperatorError
    from converters import convert as convert_file

    try:
        with spinner(f"Converting {src} -> {dst}"), reported_warnings():
            graph = convert_file(src, dst, **options)
    except UnsupportedOperatorError as exc:
        _print_refusal(src, exc)
        click.get_current_context().exit(EXIT_ERROR)
    size = Path(dst).stat().st_size
    if as_json:
        emit_json("convert", {"source": src, "destination": dst, "nodes": len(graph.nodes), "edges": len(graph.edges),
                              "params": graph.num_params(), "bytes": size})
        return
    out.print(f"Converted {src} -> {dst}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
              f"{graph.num_params():,} parameters, {human_bytes(size)}")
    _print_coverage(graph)


def _print_refusal(src: str, exc: Any) -> None:
    """The nodes without a TALON equivalent as a short table by op type, and the way forward."""
    table = Table(title=f"{src}: {len(exc.nodes)} ONNX node(s) have no TALON IR equivalent", title_justify="left")
    table.add_column("op type", no_wrap=True)
    table.add_column("count", justify="right")
    table.add_column("nodes", no_wrap=True)
    table.add_column("reason (first node)")
    groups: dict[str, list[Any]] = {}
    for node in exc.nodes:
        groups.setdefault(node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}",
                          []).append(node)
    for op, nodes in groups.items():
        names = "\n".join(n.name or "(unnamed)" for n in nodes[:3]) + (f"\n+{len(nodes) - 3} more" if len(nodes) > 3 else "")
        table.add_row(data_text(op), str(len(nodes)), data_text(names), data_text(nodes[0].reason))
    err.print(table)
    err.print(f"error: {src} cannot be converted natively; rerun with --host-fallback to keep these nodes as "
              "HostRegion nodes run by onnxruntime", markup=False)


def _print_coverage(graph: talon.ir.Graph) -> None:
    """The TALON-native share and the host regions, when the graph records a conversion report."""
    from converters.coverage import REPORT_KEY, ConversionReport

    if REPORT_KEY in graph.metadata:
        for line in ConversionReport.from_metadata(graph.metadata[REPORT_KEY]).lines():
            out.print(line, markup=False)


def _check_opset(opset: int | None) -> int | None:
    """The --opset value when ir_to_onnx can write it and this onnx knows it; BadParameter at once otherwise."""
    if opset is None:
        return None
    import onnx

    from converters.ir_to_onnx import MIN_OPSET

    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise click.BadParameter(f"{opset} is outside the opsets TALON writes with this onnx ({MIN_OPSET}..{newest})")
    return opset


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
              help="Write the graph picture: .dot/.gv text, or .svg/.png/.pdf (Graphviz when installed, else matplotlib).")
@dt_option
@debug_option
def inspect(path: str, as_json: bool, dot: bool, output: str | None, dt: float | None) -> None:
    """Show a model's nodes, shapes, parameters, edges, totals and metadata."""
    graph = load(path, dt)
    if output:
        _write_picture(graph, output, Path(path).name)
    if dot:
        click.echo(report.to_dot(graph), nl=False)
        return
    info = report.graph_report(graph)
    info["file"] = {"path": path, "bytes": Path(path).stat().st_size}
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    _print_report(info)
    _print_coverage(graph)


def _write_picture(graph: talon.ir.Graph, output: str, title: str) -> None:
    """Write DOT text, or a picture: through Graphviz's `dot` program when installed, else drawn with matplotlib."""
    import shutil
    import subprocess

    text = report.to_dot(graph)
    fmt = Path(output).suffix.lower().lstrip(".")
    if fmt in ("dot", "gv"):
        Path(output).write_text(text)
    elif fmt in ("svg", "png", "pdf"):
        program = shutil.which("dot")
        if program is None:
            plots.save_graph_picture(output, graph, title)
        else:
            subprocess.run([program, f"-T{fmt}", "-o", output], input=text, text=True, check=True,
                           capture_output=True)
    else:
        raise files.CliError(f"{output}: unknown picture extension {fmt!r}; expected .dot, .gv, .svg, .png or .pdf")
    err.print(f"wrote {output}", markup=False)


def _print_report(info: dict[str, Any]) -> None:
    table = Table(title=data_text(info["file"]["path"]), title_justify="left")
    for col, justify in (("node", "left"), ("type", "left"), ("input shape", "left"),
                         ("output shape", "left"), ("params", "right")):
        table.add_column(col, justify=justify)
    for row in info["nodes"]:
        table.add_row(data_text(row["name"]), data_text(row["type"]), shape_text(row["input_shapes"]),
                      shape_text(row["output_shapes"]), f"{row['params']:,}")
    out.print(table)
    back = {tuple(e) for e in info["back_edges"]}
    edges = [f"{s} -> {d}" + (" (feedback)" if (s, d) in back else "") for s, d in info["edges"]]
    out.print("edges: " + as_data("; ".join(edges) or "none"), markup=False)
    totals = info["totals"]
    neurons = ", ".join(f"{n:,} {kind}" for kind, n in totals["neurons"].items()) or "none"
    out.print(f"totals: {totals['nodes']} nodes, {totals['edges']} edges, {totals['params']:,} parameters, "
              f"{human_bytes(totals['bytes'])} of arrays, neurons: {neurons}; "
              f"file {human_bytes(info['file']['bytes'])}", markup=False)
    out.print(as_data(f"inputs: {', '.join(info['inputs']) or 'none'}; outputs: {', '.join(info['outputs']) or 'none'}"),
              markup=False)
    out.print("metadata: " + as_data(json.dumps(info["metadata"]) if info["metadata"] else "none"), markup=False)


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(running.BACKENDS), default="torch", show_default=True,
              help="torch, or onnxruntime (an .onnx file runs as it is; other files through their ONNX export).")
@input_options(default_batch=None)
@click.option("--save", type=click.Path(dir_okay=False), help="Save outputs and per-layer spikes to an .npz file.")
@click.option("--raster", type=click.Path(dir_okay=False), help="Draw a spike raster plot (needs matplotlib).")
@dt_option
@json_option
@debug_option
def run(path: str, backend: str, save: str | None, raster: str | None, dt: float | None, as_json: bool,
        **input_args: Any) -> None:
    """Run a model over T timesteps with state; print per-layer spike counts and rates."""
    if raster:
        plots.check_raster_path(raster)  # fail before a long run: matplotlib missing, an unknown image format
    graph = load(path, dt)
    inputs = make_inputs(graph, path, input_args)
    as_is = backend == "onnxruntime" and Path(path).suffix.lower() == ".onnx"
    if as_is:  # the file itself: its intermediate values are not outputs, so no per-layer spikes
        probed, probes = graph, {}
        with spinner("Preparing onnxruntime on the file"):
            step = running.onnxruntime_step(path, graph.inputs, graph.outputs)
        outputs = _run_steps_with_progress(step, backend, inputs)
    else:
        probed, probes = running.with_spike_probes(graph)
        outputs = run_with_progress(probed, backend, inputs)
    stats = running.spike_stats(outputs, probes)
    results = {n: outputs[n] for n in graph.outputs}
    trains = {layer: outputs[p] for p, layer in probes.items() if running.is_binary(outputs[p])}  # spiking layers
    written = {}
    if save:
        arrays = {name: outputs[name] for name in graph.outputs}
        arrays.update({f"spikes.{layer}": spikes for layer, spikes in trains.items()})
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        np.savez(save, **arrays)
        written["save"] = save
    if raster:
        plots.save_raster(raster, trains, title=f"{Path(path).name} on {backend}")
        written["raster"] = raster
    if as_json:
        steps, batch = next(iter(results.values())).shape[:2]
        emit_json("run", {"model": path, "backend": backend, "file_as_is": as_is, "steps": steps, "batch": batch,
                          "layers": [s.__dict__ for s in stats],
                          "outputs": {n: _output_summary(v) for n, v in results.items()}, "written": written})
        return
    _print_run(f"{path} on {backend}" + (" (the file as is)" if as_is else ""), None if as_is else stats, results)
    if save:
        out.print(f"saved {', '.join(arrays)} to {save}", markup=False)
    if raster:
        out.print(f"raster plot written to {raster}", markup=False)


def _output_summary(value: np.ndarray) -> dict[str, Any]:
    return {"shape": list(value.shape), "mean": float(value.mean()), "max": float(value.max()),
            "min": float(value.min())}


def _print_run(title: str, stats: list[running.LayerSpikes] | None, outputs: dict[str, np.ndarray]) -> None:
    """The per-layer spike table (None: not recorded) and a one-line summary of each output ([T, B, ...])."""
    steps, batch = next(iter(outputs.values())).shape[:2]
    if stats is None:
        out.print(f"{title}: {steps} timesteps, batch {batch}; per-layer spikes are recorded on --backend torch, "
                  "or on onnxruntime for a converted model", markup=False)
    elif not stats:
        out.print("no stateful (LIF/IF/...) layers")
    else:
        table = Table(title=f"{title}: {steps} timesteps, batch {batch}", title_justify="left")
        for col in ("layer", "neurons", "spikes", "rate"):
            table.add_column(col, justify="left" if col == "layer" else "right")
        for s in stats:
            spikes = ("-", "-") if s.spikes is None else (f"{s.spikes:,}", f"{s.rate:.4f}")
            table.add_row(data_text(s.layer), f"{s.neurons:,}", *spikes)
        out.print(table)
    for name, value in outputs.items():
        out.print(as_data(f"output {name!r}: shape {tuple(value.shape)} (T, B, ...), mean {value.mean():.6g}, "
                          f"max {value.max():.6g}"), markup=False)


def run_with_progress(graph: talon.ir.Graph, backend: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Build the backend's executor and run every timestep, showing a progress bar."""
    with spinner(f"Preparing the {backend} executor"):
        step = running.backend_step(graph, backend)
    return _run_steps_with_progress(step, backend, inputs)


def _run_steps_with_progress(step: running.Step, label: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run every timestep of a prepared step function, showing a progress bar."""
    steps = next(iter(inputs.values())).shape[0]
    with _steps_progress() as progress:
        task = progress.add_task(label, total=steps)
        return running.run_steps(step, inputs, lambda: progress.advance(task))


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@input_options(default_batch=2)
@atol_option
@rtol_option
@dt_option
@json_option
@debug_option
def verify(path: str, atol: float, rtol: float, dt: float | None, as_json: bool, **input_args: Any) -> None:
    """Run a model on torch and onnxruntime (and an .onnx file as is) and compare; exit 3 on disagreement.

    When outputs differ, names the first node, timestep, batch item and neuron where the two runs part."""
    graph = load(path, dt)
    inputs = make_inputs(graph, path, input_args, default_batch=2)
    probed, probes = running.with_probes(graph, lambda node: True)
    results = {backend: run_with_progress(probed, backend, inputs) for backend in running.BACKENDS}
    values = {backend: running.probed_values(result, probes) for backend, result in results.items()}
    pairs = [Pair("torch", "onnxruntime",
                  running.compare(results["torch"], results["onnxruntime"], graph.outputs, atol, rtol),
                  running.first_divergence(graph, values["torch"], values["onnxruntime"], atol, rtol))]
    if Path(path).suffix.lower() == ".onnx":
        with spinner("Preparing onnxruntime on the original file"):
            step = running.onnxruntime_step(path, graph.inputs, graph.outputs)
        original = running.run_steps(step, inputs)
        pairs.append(Pair("original .onnx on onnxruntime", "converted IR on torch",
                          running.compare(original, results["torch"], graph.outputs, atol, rtol)))
    finish_comparison("verify", {"model": path}, pairs, inputs, atol, rtol, as_json)


@dataclass
class Pair:
    """Two runs compared: their labels, each output's comparison, and where they first part (when known)."""

    left: str
    right: str
    comparisons: list[running.Comparison]
    divergence: running.Divergence | None = None

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)


def finish_comparison(command: str, head: dict[str, Any], pairs: list[Pair], inputs: dict[str, np.ndarray],
                      atol: float, rtol: float, as_json: bool, extra_failures: int = 0) -> None:
    """Print the compared runs (tables or JSON) and exit 3 when any output disagrees (or extra_failures > 0)."""
    steps, batch = next(iter(inputs.values())).shape[:2]
    failed = sum(not c.ok for pair in pairs for c in pair.comparisons)
    agree = not failed and not extra_failures
    if as_json:
        emit_json(command, {**head, "steps": steps, "batch": batch, "atol": atol, "rtol": rtol, "agree": agree,
                            "runs": [{"left": p.left, "right": p.right, "agree": p.ok,
                                      "outputs": [c.__dict__ for c in p.comparisons],
                                      "divergence": p.divergence.__dict__ if p.divergence else None}
                                     for p in pairs]})
    else:
        _print_comparisons(pairs, steps, batch)
    if not agree:
        if not as_json:
            err.print(f"error: {failed} output comparison(s) disagree (atol {atol:g}, rtol {rtol:g}, "
                      "spikes must match)" if failed else "error: the models differ", markup=False)
        click.get_current_context().exit(EXIT_DISAGREE)
    if not as_json:
        out.print("all outputs agree", markup=False)


def _print_comparisons(pairs: list[Pair], steps: int, batch: int) -> None:
    """One table per compared pair, and where the runs first part."""
    for pair in pairs:
        table = Table(title=f"{pair.left} vs {pair.right} ({steps} timesteps, batch {batch})", title_justify="left")
        for col in ("output", "max |diff|", "spike agreement", "result"):
            table.add_column(col, justify="left" if col in ("output", "result") else "right")
        for c in pair.comparisons:
            agreement = "-" if c.spike_agreement is None else f"{100 * c.spike_agreement:.2f}%"
            table.add_row(data_text(c.output), f"{c.max_diff:.3e}", agreement, "[green]ok[/]" if c.ok else "[red]DIFFERS[/]")
        out.print(table)
        d = pair.divergence
        if d is not None:
            out.print(f"first divergence: node {d.layer!r}, timestep {d.timestep}, batch item {d.batch}, neuron "
                      f"{tuple(d.neuron)}: {d.a:.6g} ({pair.left}) vs {d.b:.6g} ({pair.right})", markup=False)


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
        table.add_row(data_text(row["name"]), data_text(fields), ", ".join(row["flags"]))
    out.print(table)


def _required(field: Any) -> bool:
    import dataclasses

    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `talon` console script and `python -m talon`."""
    cli.main(args=argv, prog_name="talon")
