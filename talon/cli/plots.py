"""Spike raster plots (matplotlib is an optional extra: `pip install 'talon-ir-bridge[plot]'`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .files import CliError


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend; CliError naming the extra to install when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError("--raster needs matplotlib, which is not installed: pip install 'talon-ir-bridge[plot]'") from None
    return plt


def save_raster(path: str | Path, trains: Mapping[str, np.ndarray], batch_index: int = 0) -> None:
    """One panel per spiking layer: a dot at (timestep, neuron) for each spike of one batch item."""
    plt = pyplot()
    if not trains:
        raise CliError("--raster: no layer of the model output spikes in this run; nothing to plot")
    fig, axes = plt.subplots(len(trains), 1, figsize=(8, 1.2 + 1.8 * len(trains)), squeeze=False, sharex=True)
    for ax, (layer, spikes) in zip(axes[:, 0], trains.items()):
        flat = spikes[:, batch_index].reshape(spikes.shape[0], -1)
        steps, neurons = np.nonzero(flat)
        ax.scatter(steps, neurons, s=4, marker="|", color="black")
        ax.set_ylabel(f"{layer}\nneuron")
        ax.set_ylim(-0.5, flat.shape[1] - 0.5)
    axes[-1, 0].set_xlabel("timestep")
    axes[-1, 0].set_xlim(-0.5, max(spikes.shape[0] for spikes in trains.values()) - 0.5)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
