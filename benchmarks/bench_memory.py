"""Benchmark: peak resident memory of converting (converters.onnx_to_ir) and writing (ir.write) a model with
~100 M float32 parameters (~400 MB) kept in ONNX external data, relative to its weight size (target: <= ~2x).

Each measurement runs in a fresh interpreter; "growth" is the peak (VmHWM) minus the memory resident after
the imports, divided by the weight bytes. onnx.load of the same file is measured beside it for scale.

Run: python benchmarks/bench_memory.py [--width 3162] [--layers 10] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import rss  # noqa: E402

TARGET = 2.0  # "about twice": within 5 %


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=3162)
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--dir", default=None, help="folder for the temporary model (default: system temp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path, weight_bytes = rss.write_external_mlp(os.path.join(tmp, "model"), args.width, args.layers)
        out = os.path.join(tmp, "model.t1c")
        print(f"model: {args.layers} x Gemm {args.width}x{args.width}, {weight_bytes / 4e6:.1f} M parameters, "
              f"{weight_bytes / 1e6:.0f} MB of float32 weights in external data")
        runs = {
            "onnx.load (reference)": ("import onnx", f"m = onnx.load({path!r})"),
            "onnx_to_ir": ("from converters import onnx_to_ir", f"g = onnx_to_ir({path!r})"),
            "onnx_to_ir + ir.write": ("from converters import onnx_to_ir\nfrom talon import ir",
                                      f"g = onnx_to_ir({path!r})\nir.write({out!r}, g)"),
        }
        worst = 0.0
        for name, (setup, work) in runs.items():
            mem = rss.peak_rss(setup, work)
            growth = (mem["peak"] - mem["base"]) / weight_bytes
            if name != "onnx.load (reference)":
                worst = max(worst, growth)
            print(f"{name:24s} peak {mem['peak'] / 1e6:7.0f} MB, after imports {mem['base'] / 1e6:5.0f} MB, "
                  f"growth / weight bytes = {growth:.2f}, peak / weight bytes = {mem['peak'] / weight_bytes:.2f}")
        verdict = "OK" if worst <= TARGET * 1.05 else "OVER TARGET"
        print(f"worst growth ratio {worst:.2f} (target <= {TARGET:.1f}): {verdict}")


if __name__ == "__main__":
    main()
