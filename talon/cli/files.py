"""Model files and input arrays for the CLI: a graph from any supported file, inputs from .npy/.npz or a seed."""

from __future__ import annotations

import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from talon import ir
from talon.errors import CliError


def model_format(path: str | Path) -> Any:
    """The converters' Format (reader, writer, options) for a path's extension; CliError for unknown ones."""
    from converters.convert import FORMATS

    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise CliError(f"{path}: unknown extension {suffix or '(none)'!r}; expected one of {', '.join(FORMATS)}")
    return FORMATS[suffix]


def existing(path: str | Path) -> Path:
    """The path, if it names a file; CliError otherwise."""
    if not Path(path).is_file():
        raise CliError(f"{path}: no such file")
    return Path(path)


def missing_dt(path: str | Path) -> CliError:
    """The error for a .nir file given without --dt (NIR is continuous-time and stores no timestep)."""
    return CliError(f"{path}: NIR files store no timestep; pass --dt SECONDS, the time of one TALON step "
                    "(snnTorch exports use 1e-4)")


def load_graph(path: str | Path, dt: float | None = None) -> ir.Graph:
    """Read any model file the converters know (.t1c, .onnx, .nir) as a TALON IR graph; .nir files need `dt`."""
    fmt = model_format(path)
    if "dt" not in fmt.read_options:
        return fmt.read(existing(path))
    if dt is None:
        raise missing_dt(path)
    return fmt.read(existing(path), dt=dt)


def input_shapes(graph: ir.Graph) -> dict[str, tuple[int, ...]]:
    """Shape (without batch) of each graph input, by input name."""
    return {name: tuple(graph.nodes[name].shape) for name in graph.inputs}


DISTRIBUTIONS = ("gaussian", "uniform", "bernoulli")


def random_inputs(graph: ir.Graph, steps: int, batch: int, seed: int, distribution: str = "gaussian",
                  rate: float = 0.1) -> dict[str, np.ndarray]:
    """float32 inputs of shape (steps, batch, *shape) for every graph input: standard normal ("gaussian"),
    uniform on [0, 1) ("uniform") or spikes that are 1 with probability `rate` ("bernoulli")."""
    rng = np.random.default_rng(seed)
    draw = {"gaussian": rng.standard_normal, "uniform": rng.random,
            "bernoulli": lambda size: rng.random(size) < rate}
    if distribution not in draw:
        raise CliError(f"unknown input distribution {distribution!r}; expected one of {', '.join(DISTRIBUTIONS)}")
    return {name: draw[distribution]((steps, batch, *shape)).astype(np.float32)
            for name, shape in input_shapes(graph).items()}


def fixed_batch(path: str | Path) -> int | None:
    """The batch size an .onnx file fixes on its graph inputs (torch.onnx.export writes [1, ...]), else None."""
    if Path(path).suffix.lower() != ".onnx":
        return None
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    batches = {dims[0].dim_value for value in model.graph.input if value.name not in initializers
               and (dims := value.type.tensor_type.shape.dim) and dims[0].HasField("dim_value")}
    return batches.pop() if len(batches) == 1 else None


def load_inputs(path: str | Path, graph: ir.Graph, steps: int | None) -> dict[str, np.ndarray]:
    """Inputs of shape (T, B, *shape) from a .npy (one input) or .npz (keyed by input name) file.

    A (B, *shape) array is repeated over `steps` timesteps (default 1); a (T, B, *shape) array sets T.
    """
    path = existing(path)
    shapes = input_shapes(graph)
    if path.suffix == ".npz":
        with _numpy_file(path):
            with np.load(path, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        missing = sorted(set(shapes) - set(arrays))
        if missing:
            raise CliError(f"{path}: no array for input(s) {missing}; the file holds {sorted(arrays)}")
    elif path.suffix == ".npy":
        if len(shapes) != 1:
            raise CliError(f"{path}: the model has inputs {sorted(shapes)}; give a .npz file keyed by input name")
        with _numpy_file(path):
            arrays = {next(iter(shapes)): np.load(path, allow_pickle=False)}
    else:
        raise CliError(f"{path}: unknown input extension {path.suffix!r}; expected .npy or .npz")
    for name in shapes:
        if arrays[name].dtype.kind not in "biuf":
            raise CliError(f"{path}: input {name!r} holds {arrays[name].dtype} values; inputs must be real numbers "
                           "(complex, text and object arrays are refused)")
    return {name: _timed(path, name, np.asarray(arrays[name], dtype=np.float32), shape, steps)
            for name, shape in shapes.items()}


@contextmanager
def _numpy_file(path: Path) -> Iterator[None]:
    """CliError naming the file when numpy cannot read it (not .npy/.npz data, object arrays needing pickle)."""
    try:
        yield
    except ValueError as exc:
        why = "holds object arrays, which are never loaded (they would need pickle)" if "allow_pickle" in str(exc) \
            else f"is not a readable numpy file ({exc})"
        raise CliError(f"{path}: {why}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CliError(f"{path}: is not a readable numpy file ({exc})") from None


def _timed(path: Path, name: str, array: np.ndarray, shape: tuple[int, ...], steps: int | None) -> np.ndarray:
    """The array as (T, B, *shape), checking its shape against the model's input."""
    if array.ndim == len(shape) + 1 and array.shape[1:] == shape:
        return np.broadcast_to(array, (steps or 1, *array.shape)).copy()
    if array.ndim == len(shape) + 2 and array.shape[2:] == shape:
        if steps is not None and steps != array.shape[0]:
            raise CliError(f"{path}: input {name!r} holds {array.shape[0]} timesteps but --steps is {steps}")
        return array
    dims = ", ".join(map(str, shape))
    raise CliError(f"{path}: bad input array shape {array.shape} for input {name!r}; "
                   f"expected (T, B, {dims}) or (B, {dims})")
