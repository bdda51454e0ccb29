"""Fuzz the project's readers, converters and executors with mutated .t1c files and ONNX models.

    python tools/fuzz.py --target t1c --cases 10000          # counts per outcome
    python tools/fuzz.py --target all --cases 200 --seed 3
    python tools/fuzz.py --target onnx --replay 1234         # one case in this process, with its traceback

Targets: t1c (ir.read), torch (bridge.ir_to_torch + one call), onnx (converters.onnx_to_ir),
ort (onnx_ops.OrtExecutor + one call). Exit status 1 when any case hangs, crashes, escapes its
folder or raises an undocumented exception.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from fuzzing.runner import case_rng, prepare_root, run  # noqa: E402

TARGET_NAMES = ("t1c", "torch", "onnx", "ort", "t1c_hostile", "nir", "onnx_hostile", "state", "writes", "cli")


def replay(target: str, seed: int, index: int) -> None:
    """Run one case in this process and let its exception propagate; its input stays in the printed folder."""
    from fuzzing.targets import TARGETS

    case_dir = os.path.join(prepare_root(), "case")
    os.makedirs(case_dir)
    case = TARGETS[target].make(case_rng(seed, target, index), case_dir)
    given = case if isinstance(case, str) else "a ModelProto"
    print(f"case {index} of {target} (seed {seed}): input {given}, files in {case_dir}")
    TARGETS[target].run(case)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", choices=[*TARGET_NAMES, "all"], default="all")
    parser.add_argument("--cases", type=int, default=1000, help="cases per target")
    parser.add_argument("--start", type=int, default=0, help="first case index")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per case")
    parser.add_argument("--memory-mb", type=int, default=4096, help="address-space limit per worker")
    parser.add_argument("--replay", type=int, metavar="INDEX", help="run one case in this process")
    parser.add_argument("--verbose", action="store_true", help="show the workers' stderr")
    args = parser.parse_args(argv)
    targets = TARGET_NAMES if args.target == "all" else (args.target,)
    if args.replay is not None:
        replay(targets[0], args.seed, args.replay)
        return 0
    started = time.monotonic()
    reports = run(targets, range(args.start, args.start + args.cases), args.seed, args.workers, args.timeout,
                  args.memory_mb, quiet=not args.verbose)
    for report in reports.values():
        print(report.format())
    print(f"{len(targets) * args.cases} cases in {time.monotonic() - started:.0f} s with {args.workers} workers")
    return 1 if any(r.bad for r in reports.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
