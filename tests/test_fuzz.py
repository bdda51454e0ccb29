"""A short fuzz run (tools/fuzz.py) per target: mutated .t1c files and ONNX models fed to ir.read,
ir_to_torch (+ one call), onnx_to_ir and OrtExecutor (+ one call). No case may hang, crash the
interpreter or open a file outside its folder, and only documented exceptions may come out
(tools/fuzzing/targets.py lists them). A hang is a case over its CPU-time budget: a bound on work, which a
busy machine does not shorten as it does a wall-clock limit. The long run is benchmarks/fuzz_long.py."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
sys.path.insert(0, str(TOOLS))
from fuzzing import runner, seeds  # noqa: E402
from fuzzing.targets import TARGETS  # noqa: E402

CASES = 300
HOSTILE_CASES = 24  # the hostile targets' cases are larger (each builds a whole attack); the long run does more
HOSTILE = ("t1c_hostile", "nir", "onnx_hostile", "state", "writes", "cli")


def test_seed_corpus_is_valid():
    seeds.check_seeds()


@pytest.mark.parametrize("target", ["t1c", "onnx"])
def test_cases_are_deterministic_by_seed(tmp_path: Path, target: str):
    made = []
    for run in range(2):
        case_dir = tmp_path / str(run)
        case_dir.mkdir()
        case = TARGETS[target].make(runner.case_rng(5, target, 17), str(case_dir))
        made.append(Path(case).read_bytes() if isinstance(case, str) else case.SerializeToString())
    assert made[0] == made[1]


@pytest.mark.parametrize("target", list(TARGETS))
def test_short_fuzz_run(target: str):
    """No hang, crash, escape or misconversion (checked first), then no undocumented exception; the message
    lists each kind."""
    cases = HOSTILE_CASES if target in HOSTILE else CASES
    report = runner.run([target], range(cases), seed=0, workers=2, timeout=None, cpu_seconds=60)[target]
    assert sum(report.counts.values()) == cases
    assert report.counts["harness"] <= cases // 20, report.format()  # mutations libraries refuse to build stay rare
    bad = tuple(report.counts[o] for o in ("hang", "crash", "escape", "misconversion"))
    assert bad == (0, 0, 0, 0), report.format()
    assert report.counts["undocumented"] == 0, report.format()


def test_every_hostile_class_has_a_target():
    assert set(HOSTILE) <= set(TARGETS)


def test_a_case_spinning_past_its_cpu_budget_is_killed():
    """The budget a worker sets before each case: a loop that never ends dies of SIGXCPU after 1 s of CPU."""
    code = "from fuzzing.runner import _allow_cpu_seconds\n_allow_cpu_seconds(1)\nwhile True:\n    pass\n"
    done = subprocess.run([sys.executable, "-c", code], cwd=TOOLS, capture_output=True)
    assert done.returncode == -signal.SIGXCPU, done.stderr
