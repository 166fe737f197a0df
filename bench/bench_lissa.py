"""LiSSA speed: our batched LiSSA against a loop written the way the reference code works, same run, same batches.

The reference (zhangbinchi/certified-deep-unlearning) runs the repetitions one after another and gets each
Hessian-vector product by a double backward: ``torch.autograd.grad(loss, params, create_graph=True)``, then a
second ``grad`` of ⟨∇L, v⟩, with the regulariser inside the differentiated loss. The baseline below does
exactly that (with the paper's (λ + wd)/2·‖w‖² regulariser instead of the code's per-tensor norms, pitfall Z1,
so that both compute the same quantity), on the same model, the same gradient g and the *same* sampled batches
(``lissa_batch_indices``). Printed: wall times, the speed-up ratios and the relative difference of the two
estimates. Not a test: ratios are measured side by side in one process.

    UNLEARN_DATA_DIR=../shared/data .venv/bin/python bench/bench_lissa.py             # paper defaults
    UNLEARN_DATA_DIR=../shared/data .venv/bin/python bench/bench_lissa.py --depth 100  # quick check
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from unlearn_core.curvature import lissa, lissa_batch_indices
from unlearn_core.data import load_dataset
from unlearn_core.device import describe_device, resolve_device
from unlearn_core.functional import flat_gradient, num_params
from unlearn_core.models import build_model
from unlearn_core.training import TrainConfig, train


def reference_lissa(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    g: torch.Tensor,
    indices: torch.Tensor,
    *,
    lam: float,
    weight_decay: float,
    scale: float,
) -> torch.Tensor:
    """The reference code's structure: repetitions in sequence, double backward with ``create_graph=True``."""
    params = [p for p in model.parameters() if p.requires_grad]
    sizes = [p.numel() for p in params]
    depth, reps, _ = indices.shape
    estimates = []
    for r in range(reps):
        v = g.clone()
        for t in range(depth):
            idx = indices[t, r]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss = loss + 0.5 * (lam + weight_decay) * sum((p * p).sum() for p in params)
            grads = torch.autograd.grad(loss, params, create_graph=True)
            dot = sum((gr * vv.view_as(gr)).sum() for gr, vv in zip(grads, torch.split(v, sizes), strict=True))
            hv = torch.autograd.grad(dot, params)
            v = g + v - torch.cat([h.reshape(-1) for h in hv]).detach() / scale
        estimates.append(v / scale)
    return torch.stack(estimates).mean(0)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a wall-clock timing covers it (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=1000, help="LiSSA depth s (default 1000, the paper's)")
    parser.add_argument("--reps", type=int, default=10, help="repetitions (default 10)")
    parser.add_argument("--batch", type=int, default=10, help="batch per sampled Hessian (default 10)")
    parser.add_argument("--scale", type=float, default=1000.0, help="H (default 1000)")
    parser.add_argument("--lam", type=float, default=0.01, help="λ (default 0.01)")
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--epochs", type=int, default=1, help="quick training epochs before the benchmark")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timing rounds; medians are compared")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto; on CUDA every timing ends "
                        "with a synchronize")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    data = load_dataset(args.dataset)
    model = build_model("mlp", input_shape=data.input_shape, num_classes=data.num_classes, seed=0, hidden=(32, 32))
    t0 = time.perf_counter()
    train(model, data.x_train, data.y_train, TrainConfig(epochs=args.epochs, weight_decay=args.weight_decay))
    print(f"model: mlp {data.input_shape} → {data.num_classes}, p = {num_params(model)}, trained {args.epochs} "
          f"epoch(s) in {time.perf_counter() - t0:.1f} s; torch threads = {torch.get_num_threads()}")
    model.eval().to(device)
    x, y = data.x_train[1000:].to(device), data.y_train[1000:].to(device)  # the retain set of a 1,000-point forget set
    g = flat_gradient(model, x, y, weight_decay=args.weight_decay)
    seed = 0
    indices = lissa_batch_indices(x.shape[0], depth=args.depth, reps=args.reps, batch_size=args.batch,
                                  seed=seed).to(device)
    common = dict(lam=args.lam, scale=args.scale, depth=args.depth, reps=args.reps, batch_size=args.batch,
                  weight_decay=args.weight_decay, seed=seed)

    methods = {
        "ours (auto: hand-written MLP HVP)": "auto",
        "ours (generic torch.func vmap)": "functorch",
        "reference-style loop": None,
    }
    for backend in ("auto", "functorch"):
        lissa(model, x, y, g, **{**common, "depth": 5}, hvp_backend=backend)  # warm-up
    # Rounds alternate the methods so that a burst of load from other processes hits all of them; the medians
    # are compared.
    timings: dict[str, list[float]] = {name: [] for name in methods}
    results: dict[str, torch.Tensor] = {}
    for _ in range(args.rounds):
        for name, backend in methods.items():
            synchronize(device)
            start = time.perf_counter()
            if backend is None:
                est = reference_lissa(model, x, y, g, indices, lam=args.lam, weight_decay=args.weight_decay,
                                      scale=args.scale)
            else:
                est = lissa(model, x, y, g, **common, hvp_backend=backend).ihvp
            synchronize(device)
            timings[name].append(time.perf_counter() - start)
            results[name] = est

    hvps = args.depth * args.reps
    print(f"LiSSA: depth {args.depth}, reps {args.reps}, batch {args.batch}, H {args.scale:g}, λ {args.lam:g}, "
          f"wd {args.weight_decay:g} ({hvps} HVPs), median of {args.rounds} alternating round(s); device "
          f"{describe_device(device)}")
    median = {name: statistics.median(ts) for name, ts in timings.items()}
    for name, seconds in median.items():
        runs = ", ".join(f"{t:.2f}" for t in timings[name])
        print(f"  {name:36s} {seconds:8.2f} s  {seconds / hvps * 1e6:8.1f} µs/HVP   (runs: {runs} s)")
    ref = results["reference-style loop"]
    base = median["reference-style loop"]
    for name in list(methods)[:2]:
        rel = float(torch.linalg.vector_norm(results[name] - ref) / torch.linalg.vector_norm(ref))
        print(f"  speed-up of {name}: {base / median[name]:.1f}×   "
              f"relative difference to the reference estimate: {rel:.2e}")


if __name__ == "__main__":
    main()
