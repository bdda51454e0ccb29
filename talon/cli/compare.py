"""`talon compare A B`: structural differences between two models, then both run on the same inputs."""

from __future__ import annotations

from typing import Any

import click

from . import running
from .app import (
    Pair,
    as_data,
    run_with_progress,
    atol_option,
    cli,
    debug_option,
    dt_option,
    emit_json,
    finish_comparison,
    input_options,
    json_option,
    load,
    make_inputs,
    out,
    rtol_option,
)
from .diffing import StructuralDiff, structural_diff
from .files import CliError, input_shapes


@cli.command()
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option("--backend", type=click.Choice(running.BACKENDS), default="torch", show_default=True,
              help="Backend both models run on.")
@input_options(default_batch=None)
@atol_option
@rtol_option
@dt_option
@json_option
@debug_option
def compare(a: str, b: str, backend: str, atol: float, rtol: float, dt: float | None, as_json: bool,
            **input_args: Any) -> None:
    """Compare two models: nodes added, removed or changed, fields (largest difference per array), edges; then the
    same inputs through both: largest difference per output and spike agreement. Exit 3 when they differ."""
    first, second = load(a, dt), load(b, dt)
    diff = structural_diff(first, second, atol, rtol)
    in_a, in_b = _paired(first.inputs, second.inputs, input_shapes(first), input_shapes(second), "input")
    out_a, out_b = _paired(first.outputs, second.outputs, None, None, "output")
    inputs = make_inputs(first, a, input_args)
    probed_a, probes_a = running.with_probes(first, lambda node: True)
    probed_b, probes_b = running.with_probes(second, lambda node: True)
    runs_a = run_with_progress(probed_a, backend, inputs)
    runs_b = run_with_progress(probed_b, backend, {y: inputs[x] for x, y in zip(in_a, in_b)})
    pair = Pair(a, b, running.compare(runs_a, runs_b, out_a, atol, rtol, b_names=out_b),
                running.first_divergence(first, running.probed_values(runs_a, probes_a),
                                         running.probed_values(runs_b, probes_b), atol, rtol))
    if not as_json:
        _print_diff(diff)
    head = {"a": a, "b": b, "backend": backend, "structure": diff.as_dict()}
    finish_comparison("compare", head, [pair], inputs, atol, rtol, as_json, extra_failures=not diff.equal)


def _paired(names_a: list[str], names_b: list[str], shapes_a: dict | None, shapes_b: dict | None,
            role: str) -> tuple[list[str], list[str]]:
    """The two graphs' inputs (or outputs) matched by name when the names agree, else by position."""
    if sorted(names_a) == sorted(names_b):
        names_b = list(names_a)
    elif len(names_a) != len(names_b):
        raise CliError(f"the models have different {role}s: {names_a} and {names_b}")
    if shapes_a is not None:
        bad = [(x, shapes_a[x], y, shapes_b[y]) for x, y in zip(names_a, names_b) if shapes_a[x] != shapes_b[y]]
        if bad:
            raise CliError(f"the models' {role} shapes differ: " + "; ".join(
                f"{x!r} {sx} vs {y!r} {sy}" for x, sx, y, sy in bad) + "; they cannot run on the same inputs")
    return names_a, names_b


def _print_diff(diff: StructuralDiff) -> None:
    lines = [f"nodes only in A (removed): {', '.join(diff.removed)}" if diff.removed else "",
             f"nodes only in B (added): {', '.join(diff.added)}" if diff.added else "",
             *(f"node {c['node']!r} changed type: {c['a']} -> {c['b']}" for c in diff.changed_type),
             *(_field_line(f) for f in diff.fields),
             *(f"edge only in A: {s} -> {d}" for s, d in diff.edges_removed),
             *(f"edge only in B: {s} -> {d}" for s, d in diff.edges_added),
             *(f"node {n!r}: the order of its edges differs" for n in diff.edge_order),
             f"metadata differs: {', '.join(diff.metadata)}" if diff.metadata else ""]
    lines = [line for line in lines if line]
    out.print("structure: " + ("no differences" if not lines else f"{len(lines)} difference(s)"), markup=False)
    for line in lines:
        out.print(f"  {as_data(line)}", markup=False)


def _field_line(f: Any) -> str:
    if f.max_diff is None:
        return f"node {f.node!r} field {f.field}: {f.a!r} -> {f.b!r}"
    tolerance = " (within tolerance)" if f.within_tolerance else ""
    kinds = f" ({f.a} vs {f.b})" if isinstance(f.a, str) and f.a != f.b else ""
    return f"node {f.node!r} field {f.field}: largest difference {f.max_diff:.3e}{kinds}{tolerance}"

