"""Fuzzing harness: mutates valid .t1c files and ONNX models and feeds them to the project's entry points.

Only documented exceptions may come out; each case runs in a worker subprocess under a time and
memory limit, so a hang or an interpreter crash is counted, not fatal. Cases are deterministic by
(seed, target, index). Entry points: ``tools/fuzz.py`` (command line) and :func:`runner.run`.
"""
