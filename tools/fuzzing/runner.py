"""Runs fuzz cases in worker subprocesses (time and memory bounded) and counts the outcomes.

Outcomes: ``ok`` (accepted), ``refused`` (a documented exception), ``undocumented`` (any other
exception), ``escape`` (the case opened, from Python, a file outside its folder: the canary file beside
it; or a result holds the canary's bytes), ``misconversion`` (a hostile case's check found a wrong result),
``hang`` (over the wall-clock limit, or over the CPU-time budget per case, which load on the machine
does not eat into; the worker is killed), ``crash`` (the worker died: a signal, an abort
in native code, the memory limit) and ``harness`` (building the mutated input failed; not a finding).
undocumented, escape, misconversion, hang and crash are failures. Each report also gives the workers' peak
resident memory. Case `index` of `target` under `seed` is always the
same input.
"""

from __future__ import annotations

import collections
import json
import math
import os
import random
import resource
import selectors
import signal
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

BAD = ("undocumented", "escape", "misconversion", "hang", "crash")
CANARY_TAG = "fuzz_canary"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STARTUP_S = 180.0
_opened_outside: list[str] = []
_watching = False


def case_rng(seed: int, target: str, index: int) -> random.Random:
    """The random source of one case: a pure function of (seed, target, index)."""
    return random.Random(f"{seed}:{target}:{index}")


def _audit(event: str, args: tuple) -> None:
    """Record opens of the canary file (directly or through a link) while a case runs."""
    if _watching and event == "open" and isinstance(args[0], (str, bytes)):
        path = os.fsdecode(args[0])
        if CANARY_TAG in path or CANARY_TAG in os.path.realpath(path):
            _opened_outside.append(path)


def _where(exc: BaseException) -> str:
    """file:line of the innermost project frame (or the innermost frame) that raised `exc`."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "site-packages" not in f.filename and "/fuzzing/" not in f.filename]
    frame = (ours or frames or [None])[-1]
    return "?" if frame is None else f"{os.path.relpath(frame.filename, REPO)}:{frame.lineno}"


def run_case(target: str, seed: int, index: int, root: str) -> dict[str, Any]:
    """Build and run one case in `root`/case; classify what came out (never raises for the case's input)."""
    global _watching
    from . import hostile
    from .targets import TARGETS

    spec = TARGETS[target]
    case_dir = os.path.join(root, "case")
    shutil.rmtree(case_dir, ignore_errors=True)
    os.makedirs(case_dir)
    result: dict[str, Any] = {"index": index, "outcome": "ok"}
    try:
        case = spec.make(case_rng(seed, target, index), case_dir)
    except Exception as exc:  # noqa: BLE001  (a mutation the libraries refused: a harness limitation, counted apart)
        return {"index": index, "outcome": "harness", "error": type(exc).__name__, "message": str(exc)[:300]}
    _opened_outside.clear()
    _watching = True
    try:
        spec.run(case)
    except spec.allowed as exc:
        result.update(outcome="refused", error=type(exc).__name__)
    except (hostile.Misconversion, hostile.Escape) as exc:
        outcome = "escape" if isinstance(exc, hostile.Escape) else "misconversion"
        result.update(outcome=outcome, error=type(exc).__name__, message=str(exc)[:300], where=_where(exc))
    except Exception as exc:  # noqa: BLE001  (anything else is what the fuzzer looks for)
        result.update(outcome="undocumented", error=f"{type(exc).__module__}.{type(exc).__name__}",
                      message=str(exc)[:300], where=_where(exc))
    finally:
        _watching = False
    if _opened_outside:
        result.update(outcome="escape", error="opened outside the case folder", message=_opened_outside[0], where="")
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return result


def prepare_root(root: str | None = None) -> str:
    """A private working folder (new unless given) holding the canary file that no case may open."""
    root = root or tempfile.mkdtemp(prefix="talon-fuzz-")
    with open(os.path.join(root, CANARY_TAG + ".bin"), "wb") as f:
        f.write(bytes(range(256)) * 64)
    sys.addaudithook(_audit)
    return root


def _allow_cpu_seconds(seconds: float) -> None:
    """Let this process use `seconds` more CPU time; past that the kernel kills it with SIGXCPU."""
    import resource

    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime + seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.getrlimit(resource.RLIMIT_CPU)[1]))


def worker_main(memory_mb: int, root: str, cpu_seconds: float | None = None) -> None:
    """Worker loop: read 'target seed index' lines, answer one JSON line each on the original stdout."""
    import resource

    if memory_mb:
        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a case killed for its CPU time leaves no core file
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to stderr, never into the protocol
    prepare_root(root)
    os.chdir(root)
    from . import seeds

    seeds.t1c_files(), seeds.onnx_models()
    channel.write("ready\n")
    for line in sys.stdin:
        target, seed, index = line.split()
        if cpu_seconds:
            _allow_cpu_seconds(cpu_seconds)
        channel.write(json.dumps(run_case(target, int(seed), int(index), root)) + "\n")


@dataclass
class Report:
    """Counts of outcomes, refusals by exception type, and failures grouped with their first case."""

    target: str
    counts: collections.Counter = field(default_factory=collections.Counter)
    refused: collections.Counter = field(default_factory=collections.Counter)
    failures: dict[tuple, dict] = field(default_factory=dict)
    peak_mb: int = 0  # the largest resident set of a worker after a case (the worker's peak so far)

    def add(self, result: dict[str, Any]) -> None:
        outcome = result["outcome"]
        self.peak_mb = max(self.peak_mb, result.get("rss_mb", 0))
        self.counts[outcome] += 1
        if outcome == "refused":
            self.refused[result["error"]] += 1
        elif outcome in BAD:
            key = (outcome, result.get("error", ""), result.get("where", ""))
            entry = self.failures.setdefault(key, {"count": 0, "first": result})
            entry["count"] += 1

    @property
    def bad(self) -> int:
        return sum(self.counts[o] for o in BAD)

    def format(self) -> str:
        total = sum(self.counts.values())
        lines = [f"target {self.target}: {total} cases; "
                 + ", ".join(f"{o} {self.counts[o]}" for o in ("ok", "refused", *BAD, "harness"))
                 + f"; peak worker memory {self.peak_mb} MB"]
        lines += [f"  refused {name}: {n}" for name, n in self.refused.most_common()]
        for (outcome, error, where), entry in sorted(self.failures.items(), key=lambda kv: -kv[1]["count"]):
            first = entry["first"]
            lines.append(f"  FAIL {outcome} {error} at {where}: {entry['count']} (first case {first['index']}: "
                         f"{first.get('message', '')[:160]!r})")
        return "\n".join(lines)


class _Worker:
    """One worker subprocess and the case it is running."""

    def __init__(self, memory_mb: int, quiet: bool, cpu_seconds: float | None, startup_s: float | None):
        tools = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tools, os.environ.get("PYTHONPATH", "")]),
               "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        self.root = tempfile.mkdtemp(prefix="talon-fuzz-")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from fuzzing.runner import worker_main; worker_main({memory_mb}, {self.root!r}, {cpu_seconds!r})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL if quiet else None,
            text=True, env=env,
        )
        self.job: tuple[str, int] | None = None  # (target, case index) being run
        self.deadline = time.monotonic() + startup_s if startup_s is not None else math.inf
        self.ready = False

    def send(self, target: str, index: int, seed: int, timeout: float | None) -> None:
        self.job = (target, index)
        self.deadline = time.monotonic() + timeout if timeout is not None else math.inf
        self.proc.stdin.write(f"{target} {seed} {index}\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def run(targets: Sequence[str], cases: Iterable[int], seed: int = 0, workers: int = 2, timeout: float | None = 20.0,
        memory_mb: int = 4096, quiet: bool = True, cpu_seconds: float | None = None) -> dict[str, Report]:
    """Run the given case indices of each target on one pool of `workers` subprocesses; a Report per target.
    `timeout`: wall-clock seconds per case (None: no wall-clock limit, worker start-up included);
    `cpu_seconds`: CPU time per case, a bound on work that a busy machine does not shorten."""
    indices = list(cases)
    pending = collections.deque((t, i) for t in targets for i in indices)
    reports = {t: Report(t) for t in targets}
    sel = selectors.DefaultSelector()
    pool: list[_Worker] = []

    def spawn() -> None:
        w = _Worker(memory_mb, quiet, cpu_seconds, STARTUP_S if timeout is not None else None)
        pool.append(w)
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)

    def retire(w: _Worker, outcome: str, detail: str) -> None:
        sel.unregister(w.proc.stdout)
        pool.remove(w)
        w.kill()
        if w.job is not None:
            reports[w.job[0]].add({"index": w.job[1], "outcome": outcome, "error": detail, "where": ""})
        elif not w.ready:
            raise RuntimeError(f"a fuzz worker failed to start ({detail}); run with --verbose to see why")
        if pending:
            spawn()

    for _ in range(max(1, min(workers, len(pending)))):
        spawn()
    try:
        while pool:
            for w in [w for w in pool if w.ready and w.job is None]:
                if pending:
                    w.send(*pending.popleft(), seed, timeout)
                else:
                    sel.unregister(w.proc.stdout)
                    pool.remove(w)
                    w.kill()
            if not pool:
                break
            deadline = min(w.deadline for w in pool)
            wait = max(0.0, deadline - time.monotonic()) if deadline != math.inf else None
            for key, _ in sel.select(timeout=wait):
                w = key.data
                line = w.proc.stdout.readline()
                if not line:
                    code = w.proc.wait()
                    if code == -signal.SIGXCPU:
                        retire(w, "hang", f"over {cpu_seconds:g} s of CPU time")
                    else:
                        retire(w, "crash", f"signal {-code}" if code < 0 else f"exit status {code}")
                elif line.strip() == "ready":
                    w.ready = True
                else:
                    reports[w.job[0]].add(json.loads(line))
                    w.job = None
            now = time.monotonic()
            for w in [w for w in pool if w.deadline <= now and (w.job is not None or not w.ready)]:
                retire(w, "hang", f"over {timeout:g} s" if w.ready else "startup")
    finally:
        for w in pool:
            w.kill()
    return reports
