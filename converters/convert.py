"""Conversion between files by extension (.onnx, .t1c, .nir), through TALON IR; one small table of formats."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from talon import ir
from talon.ir import Graph

from talon.errors import require

from .errors import ConversionError
from .ir_to_onnx import ir_to_onnx, save_onnx
from .nir import nir_to_ir, save_nir
from .onnx_to_ir import onnx_to_ir


@dataclass(frozen=True)
class Format:
    """How one file format is read and written, and which keyword options each direction takes."""

    read: Callable[..., Graph]
    write: Callable[..., None]
    read_options: tuple[str, ...] = ()
    write_options: tuple[str, ...] = ()


def _write_onnx(graph: Graph, path: Path, opset: int | None = None) -> None:
    save_onnx(ir_to_onnx(graph, opset=opset), path)


FORMATS: dict[str, Format] = {
    ".onnx": Format(onnx_to_ir, _write_onnx,
                    read_options=("spiking", "weight_bits", "accumulator_bits", "spike_mode", "host_fallback"),
                    write_options=("opset",)),
    ".t1c": Format(lambda path: ir.read(path), lambda graph, path: ir.write(path, graph)),
    ".nir": Format(nir_to_ir, lambda graph, path, dt=None, strict=False: save_nir(graph, path, dt=dt, strict=strict),
                   read_options=("dt", "strict", "exact_threshold"), write_options=("dt", "strict")),
}


def _format(path: Path, role: str) -> Format:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ConversionError(f"{path}: unknown {role} extension {suffix!r}; expected one of {sorted(FORMATS)}")
    return FORMATS[suffix]


def convert(src: str | os.PathLike, dst: str | os.PathLike, **options: Any) -> Graph:
    """Read `src` and write `dst`, each in the format its extension names; returns the IR graph in between.

    Each option goes to the side that takes it (see FORMATS): .onnx reading takes spiking, weight_bits,
    accumulator_bits, spike_mode, host_fallback; .onnx writing opset; .nir dt (both ways), strict and exact_threshold.
    Options neither side takes are refused, and None values are left to the defaults."""
    require(src, (str, os.PathLike), "convert: src", ConversionError)
    require(dst, (str, os.PathLike), "convert: dst", ConversionError)
    src, dst = Path(src), Path(dst)
    source, target = _format(src, "source"), _format(dst, "destination")
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(source.read_options) - set(target.write_options))
    if unknown:
        raise ConversionError(f"options {unknown} do not apply to converting {src.suffix} to {dst.suffix}")
    graph = source.read(src, **{k: v for k, v in options.items() if k in source.read_options})
    target.write(graph, dst, **{k: v for k, v in options.items() if k in target.write_options})
    return graph
