"""ANN -> SNN conversion accuracy on scikit-learn's digits, next to SpikingJelly's ann2snn and Sinabs' from_model.

Trains a small CNN (conv, BatchNorm, ReLU, average pooling, twice, and a linear head) on load_digits (no
download), exports it to ONNX, converts it with talon.bridge.ann_to_snn (both reset modes) and prints the test
accuracy of the running output sum at T = 8 .. 128, beside the peers converting the same trained weights and
fed the same real-valued input at every step. `--noise 0.3` trains and tests on digits with added Gaussian
noise (the harder case); `--deep` uses three conv blocks. Peers are skipped when not installed (bench extra).

    PYTHONPATH=. python benchmarks/bench_ann_to_snn.py [--noise 0.3] [--deep] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np
import torch
from torch import nn

STEPS = (8, 16, 32, 64, 128)


def digits(noise: float, seed: int):
    """(train x, train y, test x, test y): 8x8 images in [0, 1] (plus noise), 497 test digits held back."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]
    if noise:
        x = np.clip(x + np.random.default_rng(seed).normal(0, noise, x.shape), 0, 1).astype(np.float32)
    return train_test_split(x, data.target, test_size=497, random_state=seed, stratify=data.target)


def cnn(deep: bool) -> nn.Sequential:
    """Conv-BN-ReLU-AvgPool blocks and a linear head for 1x8x8 inputs."""
    widths = (1, 16, 32, 32) if deep else (1, 16, 32)
    layers: list[nn.Module] = []
    size = 8
    for i, (cin, cout) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
        if i < 2:
            layers.append(nn.AvgPool2d(2))
            size //= 2
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(widths[-1] * size * size, 10))


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, seed: int, epochs: int = 15) -> nn.Module:
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def running_accuracy(outputs: np.ndarray, y: np.ndarray) -> list[float]:
    """Test accuracy (%) of the argmax of the output summed over the first T steps, for each T in STEPS."""
    sums = np.cumsum(outputs, axis=0)
    return [100.0 * float(np.mean(sums[t - 1].argmax(-1) == y)) for t in STEPS]


def talon_rows(proto, xtr, ytr, xte, yte) -> dict[str, list[float]]:
    from talon.bridge import GraphExecutor
    from talon.bridge.ann_to_snn import ann_to_snn, encode

    rows = {}
    for mode in ("subtract", "zero"):
        snn = ann_to_snn(proto, xtr, timesteps=32, reset_mode=mode, labels=ytr)
        with torch.no_grad():
            out = GraphExecutor(snn).run_sequence(encode(xte, STEPS[-1])).numpy()
        rows[f"TALON ann_to_snn, IF reset_mode={mode!r} (binary spikes)"] = running_accuracy(out, yte)
    return rows


def spikingjelly_row(model, xtr, xte, yte) -> dict[str, list[float]]:
    try:
        from spikingjelly.activation_based import ann2snn, functional
    except ImportError:
        return {}
    loader = [torch.from_numpy(xtr[i:i + 128]) for i in range(0, len(xtr), 128)]
    recipe = ann2snn.RateCodingRecipe(dataloader=loader, mode="99.9%")
    snn = ann2snn.FXConverter(recipe=recipe, device="cpu").convert(copy.deepcopy(model)).eval()
    functional.reset_net(snn)
    x = torch.from_numpy(xte)
    with torch.no_grad():
        out = np.stack([snn(x).numpy() for _ in range(STEPS[-1])])
    return {'SpikingJelly RateCodingRecipe(mode="99.9%") (binary spikes)': running_accuracy(out, yte)}


def sinabs_rows(model, xte, yte) -> dict[str, list[float]]:
    try:
        import sinabs
        from sinabs.activation import MultiSpike, SingleSpike
    except ImportError:
        return {}
    rows = {}
    steps = STEPS[-1]
    for label, fn in (("single-spike IAF (binary spikes)", SingleSpike), ("multi-spike IAF (graded)", MultiSpike)):
        snn = sinabs.from_model(copy.deepcopy(model), input_shape=(1, 8, 8), spike_fn=fn,
                                num_timesteps=steps).spiking_model.eval()
        x = torch.from_numpy(xte)
        seq = x.unsqueeze(1).expand(len(x), steps, *x.shape[1:]).reshape(-1, *x.shape[1:])  # [B*T, ...]
        with torch.no_grad():
            out = snn(seq).reshape(len(x), steps, -1).transpose(0, 1).numpy()
        rows[f"Sinabs from_model, {label}"] = running_accuracy(out, yte)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--noise", type=float, default=0.0, help="std of Gaussian noise added to the digits")
    parser.add_argument("--deep", action="store_true", help="three conv blocks instead of two")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    start = time.perf_counter()
    xtr, xte, ytr, yte = digits(args.noise, args.seed)
    model = train(cnn(args.deep), xtr, ytr, args.seed)
    trained = time.perf_counter() - start
    with torch.no_grad():
        ann = 100.0 * float(np.mean(model(torch.from_numpy(xte)).argmax(1).numpy() == yte))
    proto = torch.onnx.export(model, (torch.from_numpy(xte[:1]),), dynamo=True, verbose=False).model_proto
    rows = {**talon_rows(proto, xtr, ytr, xte, yte), **spikingjelly_row(model, xtr, xte, yte),
            **sinabs_rows(model, xte, yte)}
    print(f"digits, noise {args.noise}, {'3' if args.deep else '2'} conv blocks, seed {args.seed}: ANN test accuracy "
          f"{ann:.1f}% on {len(yte)} held-back digits (trained in {trained:.0f} s)")
    print("| conversion | " + " | ".join(f"T={t}" for t in STEPS) + " |")
    print("|---|" + "---|" * len(STEPS))
    for label, accs in rows.items():
        print(f"| {label} | " + " | ".join(f"{a:.1f}" for a in accs) + " |")


if __name__ == "__main__":
    main()
