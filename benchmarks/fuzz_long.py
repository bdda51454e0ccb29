"""The long fuzz run: 10,000 cases per target (t1c, torch, onnx, ort), printing the counts per outcome.

Run: python benchmarks/fuzz_long.py [--cases 10000] [--seed 0] [--workers 2]
(the same as ``python tools/fuzz.py --target all --cases 10000``; see tools/fuzz.py for replaying a case).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import fuzz  # noqa: E402

if __name__ == "__main__":
    sys.exit(fuzz.main(["--target", "all", "--cases", "10000", *sys.argv[1:]]))
