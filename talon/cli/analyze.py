"""`talon analyze`: per-node and total costs of a model, and with --run its measured spikes and synaptic operations."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from . import analysis, running
from .app import (
    data_text,
    human_bytes,
    run_with_progress,
    shape_text,
    cli,
    debug_option,
    dt_option,
    emit_json,
    input_options,
    json_option,
    load,
    make_inputs,
    out,
)


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--run", "measure", is_flag=True, help="Also run the model and measure spikes and synaptic operations.")
@click.option("--backend", type=click.Choice(running.BACKENDS), default="torch", show_default=True,
              help="Backend of the --run.")
@input_options(default_batch=None)
@dt_option
@json_option
@debug_option
def analyze(path: str, measure: bool, backend: str, dt: float | None, as_json: bool, **input_args: Any) -> None:
    """Count parameters, neurons, synapses, MACs per step and memory per node; with --run, measured spikes,
    firing rates and synaptic operations (NeuroBench's: each spike times the synapses it drives)."""
    graph = load(path, dt)
    result: dict[str, Any] = {"model": path, **analysis.static_report(graph), "run": None}
    if measure:
        inputs = make_inputs(graph, path, input_args)
        probed, probes = running.with_probes(graph, lambda node: True)
        outputs = run_with_progress(probed, backend, inputs)
        result["run"] = {"backend": backend, **analysis.run_report(graph, running.probed_values(outputs, probes))}
    if as_json:
        emit_json("analyze", result)
        return
    _print_static(result)
    if result["run"]:
        _print_run(result["run"])


def _print_static(result: dict[str, Any]) -> None:
    table = Table(title=result["model"], title_justify="left")
    columns = ("node", "type", "input shape", "output shape", "params", "neurons", "synapses", "MACs/step",
               "weights", "state")
    for col in columns:
        table.add_column(col, justify="left" if col in columns[:4] else "right")
    for row in result["nodes"]:
        bits = f" @{row['weight_bits']}b" if row["params"] and row["weight_bits"] != analysis.FLOAT_BITS else ""
        table.add_row(data_text(row["name"]), data_text(row["type"]), shape_text(row["input_shapes"]), shape_text(row["output_shapes"]),
                      f"{row['params']:,}", f"{row['neurons']:,}", f"{row['synapses']:,}", f"{row['macs']:,}",
                      human_bytes(row["weight_bytes"]) + bits, human_bytes(row["state_bytes"]))
    out.print(table)
    t = result["totals"]
    out.print(f"totals: {t['nodes']} nodes, {t['edges']} edges, {t['params']:,} parameters, {t['neurons']:,} neurons, "
              f"{t['synapses']:,} synapses, {t['macs']:,} MACs per step, {human_bytes(t['weight_bytes'])} of weights, "
              f"{human_bytes(t['state_bytes'])} of neuron state", markup=False)
    out.print("op types: " + ", ".join(f"{k} {v}" for k, v in result["op_types"].items()), markup=False)


def _number(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def _print_run(run: dict[str, Any]) -> None:
    table = Table(title=f"measured on {run['backend']}: {run['steps']} timesteps, batch {run['batch']} "
                        "(per step = per timestep and batch item)", title_justify="left")
    for col in ("node", "type", "neurons", "spikes", "spikes/step", "firing rate", "synops", "synops/step",
                "input"):
        table.add_column(col, justify="left" if col in ("node", "type", "input") else "right")
    for a in run["layers"]:
        source = "-" if a["input_is_spikes"] is None else ("spikes" if a["input_is_spikes"] else "values")
        table.add_row(data_text(a["name"]), data_text(a["type"]), _number(a["neurons"] or None), _number(a["spikes"]),
                      _number(a["spikes_per_step"], 2), _number(a["firing_rate"]), _number(a["synops"]),
                      _number(a["synops_per_step"], 1), source)
    out.print(table)
    t = run["totals"]
    rate = "-" if t["firing_rate"] is None else f"{t['firing_rate']:.4f}"
    out.print(f"totals: {t['spikes']:,} spikes ({t['spikes_per_step']:.2f} per step), firing rate {rate}, "
              f"{t['synops']:,} synaptic operations ({t['synops_per_step']:.1f} per step)", markup=False)
