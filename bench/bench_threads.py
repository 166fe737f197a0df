"""How many intra-op threads should torch use for a training step of a given size? Measured, side by side.

For each model, one optimizer step (forward, backward, Adam, projection — what ``training.train`` does) is timed
with 1 thread and with all cores, alternating, on a quiet machine and again with a busy neighbour process (one
core spinning in pure Python, as another job or a browser would). It prints the median step time and the ratio
t(all cores) / t(1 thread): below 1, more threads pay; above 1, they cost.

Why this matters: torch's default uses every core. When the work per step is small, the threads' start-up and
spinning synchronisation cost more than they save, and when another process holds a core, a spinning worker that
waits for it multiplies the step time (issue 15: a digits MLP step took 7.5–40 ms with 2 threads against 1 ms
with one).

    python bench/bench_threads.py [--repeats 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from torch import nn

from unlearn_core.device import intra_op_threads
from unlearn_core.models import build_model, model_shape
from unlearn_core.training import TrainConfig, make_optimizer, project_to_ball

CASES = [  # (label, model, input shape, options, batch)
    ("digits MLP 32-32", "mlp", (1, 8, 8), {"hidden": (32, 32)}, 128),
    ("MNIST MLP 32-32", "mlp", (1, 28, 28), {"hidden": (32, 32)}, 128),
    ("MNIST MLP 256-256", "mlp", (1, 28, 28), {"hidden": (256, 256)}, 128),
    ("MNIST MLP 1024-1024", "mlp", (1, 28, 28), {"hidden": (1024, 1024)}, 128),
    ("MNIST small CNN", "cnn", (1, 28, 28), {}, 128),
    ("CIFAR AllCNN w=32", "allcnn", (3, 32, 32), {"width": 32}, 64),
]


def step_time(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, threads: int, repeats: int,
              budget_s: float = 2.0) -> float:
    """Median seconds of one training step with ``threads`` intra-op threads (``repeats`` steps, or fewer when they
    take longer than ``budget_s``)."""
    torch.set_num_threads(threads)
    opt = make_optimizer(model, TrainConfig())
    times: list[float] = []
    begin = time.perf_counter()
    for i in range(repeats + 5):
        if len(times) >= 5 and time.perf_counter() - begin > budget_s:
            break
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        project_to_ball(model, 20.0)
        if i >= 5:  # warm-up steps excluded
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(repeats: int, rounds: int, cores: int, load: float) -> list[dict]:
    """Both thread counts per case; ``load`` is the load the rule is shown for (idle: 0, one busy core: 1)."""
    rows = []
    for label, name, shape, options, batch in CASES:
        model = build_model(name, input_shape=shape, num_classes=10, **options)
        x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
        one, many = [], []
        for _ in range(rounds):  # alternate, so that a change of load hits both sides
            one.append(step_time(model, x, y, threads=1, repeats=repeats))
            many.append(step_time(model, x, y, threads=cores, repeats=repeats))
        shape_info = model_shape(name, input_shape=shape, num_classes=10, **options)
        rows.append({"case": label, "step_gflop": 3 * shape_info.flops * batch / 1e9,
                     "t1_ms": 1e3 * statistics.median(one), "tn_ms": 1e3 * statistics.median(many),
                     "rule": intra_op_threads(step_flops=3.0 * shape_info.flops * batch, cores=cores, load=load)})
    return rows


def show(title: str, rows: list[dict], cores: int) -> None:
    print(f"\n{title}")
    print(f"{'case':<22} {'GFLOP/step':>10} {'1 thread':>10} {f'{cores} threads':>10} {'ratio':>7} {'rule':>5}")
    for r in rows:
        print(f"{r['case']:<22} {r['step_gflop']:>10.4f} {r['t1_ms']:>8.2f}ms {r['tn_ms']:>8.2f}ms "
              f"{r['tn_ms'] / r['t1_ms']:>7.2f} {r['rule']:>5}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=100, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of 1 thread / all cores")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"cores: {cores}; torch {torch.__version__}; other load (1-min load average): {os.getloadavg()[0]:.2f}")
    show("quiet (no neighbour started by this bench; rule shown for an idle machine)",
         measure(args.repeats, args.rounds, cores, load=0.0), cores)
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        show("busy neighbour (one core spinning in another process; rule shown for one busy core)",
             measure(args.repeats, args.rounds, cores, load=1.0), cores)
    finally:
        hog.kill()
        hog.wait()


if __name__ == "__main__":
    main()
