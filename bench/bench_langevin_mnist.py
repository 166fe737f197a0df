"""Langevin unlearning on MNIST logistic regression: its gradient computations against retraining's.

Chien, Wang, Chen & Li (NeurIPS 2024, *Langevin Unlearning*) learn binary logistic regression on MNIST classes 3 and 8
(n = 11,982 points, pixels − 0.5, each image scaled to unit norm) with projected noisy gradient descent for T = 10,000
steps (their "burn-in"), then remove S points and run K more steps on the rest. Their public code
(Graph-COM/Langevin_unlearning, ``main_lmc.py``) uses λ = 1e-6, μ = λn, L = 1/4 + μ, η = 1/L, M = 1, σ = 0.03,
δ = 1/n, and their stored results for the utility-vs-S figure (``result/LMC/MNIST/paint_utility_s/1/K_list.npy``,
ε = 1) read K = 1, 581, 1231, 1491, 2081, 2331 for S = 1, 10, 50, 100, 500, 1000: at S = 100 unlearning takes
1,491 of retraining's 10,000 gradient computations, 14.9 %.

Part 1 (always, instant): our LSI accountant (``unlearn_core.descent.langevin_accounting``) with their constants —
the exact smallest K, and the K their code's search (K = 1, 11, 21, …) would report — against those stored numbers.

Part 2 (``--run``): the same experiment end to end with this package on real MNIST (``UNLEARN_DATA_DIR``): the
images prepared as theirs, a two-class softmax regression (its constants are this package's proven bounds: M = √2‖x̃‖
= 2 with the bias, β from the data), trained by the ``noisy_gd`` recipe for T steps, S = 100 random points removed,
then the ``langevin`` unlearner (its auto K for ε = 1) against T steps of retraining on the rest, both from the same
seeded initialisation; test accuracy (classes 3 and 8) of each.

    python bench/bench_langevin_mnist.py
    UNLEARN_DATA_DIR=../shared/data python bench/bench_langevin_mnist.py --run [--train-steps 10000]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import torch
from torch import nn

from unlearn_core.descent import langevin_accounting as acc
from unlearn_core.descent import softmax_bounds

N, LAM, SIGMA, T_PAPER = 11_982, 1e-6, 0.03, 10_000
REMOVED = (1, 10, 50, 100, 500, 1000)
#: The authors' stored K for ε = 1 (result/LMC/MNIST/paint_utility_s/1/K_list.npy), and for ε = 0.5 and 2.
STORED = {1.0: (1, 581, 1231, 1491, 2081, 2331), 0.5: (1, 1641, 2831, 3321, 4441, 4921),
          2.0: (1, 151, 531, 671, 1001, 1141)}


def part1() -> None:
    mu = LAM * N
    eta = 1.0 / (0.25 + mu)
    print(f"Part 1 — LSI accountant, the authors' constants: n={N}, μ=λn={mu:.5f}, η=1/L={eta:.4f}, M=1, σ={SIGMA}, "
          f"δ=1/n, T={T_PAPER}")
    print(f"{'ε':>4} {'S':>5} {'K ours':>7} {'K code':>7} {'K stored':>9} {'ours/T':>7} {'stored/T':>9}")
    for eps, stored in STORED.items():
        for s, k_stored in zip(REMOVED, stored, strict=True):
            drift = acc.drift_sensitivity(n=N, removed=s, grad_bound=1.0)
            k = acc.lsi_steps(drift=drift, mu=mu, lr=eta, sigma=SIGMA, epsilon=eps, delta=1.0 / N,
                              max_steps=1_000_000)
            code = 1 if k <= 1 else 1 + 10 * math.ceil((k - 1) / 10)  # their search: K = 1, 11, 21, …
            print(f"{eps:>4g} {s:>5} {k:>7} {code:>7} {k_stored:>9} {k / T_PAPER:>7.1%} {k_stored / T_PAPER:>9.1%}")


def mnist_three_eight() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """MNIST 3 vs 8 as the authors prepare it: pixels in [0, 1] minus 0.5, every image scaled to unit norm."""
    from unlearn_core.data import load_dataset

    data = load_dataset("mnist")
    mean, std = 0.1307, 0.3081  # undo the package's normalisation (unlearn_core.data's MNIST constants)

    def prep(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = (y == 3) | (y == 8)
        flat = (x[keep].reshape(int(keep.sum()), -1) * std + mean) - 0.5
        return flat / flat.norm(dim=1, keepdim=True), (y[keep] == 3).long()

    x, y = prep(data.x_train, data.y_train)
    xt, yt = prep(data.x_test, data.y_test)
    return x, y, xt, yt


def part2(train_steps: int, removed: int, epsilon: float) -> None:
    from unlearn_core.evaluation import evaluate
    from unlearn_core.training import TrainConfig, train
    from unlearn_core.unlearners import UnlearnContext, get_unlearner, resolve_params

    x, y, xt, yt = mnist_three_eight()
    n = int(x.shape[0])
    mu = LAM * n
    params = resolve_params(get_unlearner("langevin").schema,
                            {"sigma": SIGMA, "weight_decay": mu, "train_steps": train_steps, "epsilon": epsilon,
                             "delta": 1.0 / n, "max_steps": 1_000_000}, method="langevin")
    unlearner = get_unlearner("langevin")
    recipe = unlearner.training_recipe(TrainConfig(), params, x_train=x, convex=True)
    beta = softmax_bounds.smoothness_bound(x, weight_decay=mu)
    print(f"\nPart 2 — MNIST 3 vs 8 end to end: n={n}, two-class softmax regression, μ=λn={mu:.5f}, σ={SIGMA}, "
          f"β={beta:.4f} (bound), η=1/β={recipe.lr:.4f}, M={softmax_bounds.gradient_bound(x):.3f} (bound), "
          f"T={train_steps}, S={removed}, ε={epsilon}, δ=1/n")

    def factory(seed_offset: int = 0) -> nn.Module:
        torch.manual_seed(seed_offset)
        return nn.Sequential(nn.Flatten(), nn.Linear(x.shape[1], 2))

    forget = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:removed].sort().values
    keep = torch.ones(n, dtype=torch.bool)
    keep[forget] = False
    retain = keep.nonzero().squeeze(1)
    original, retrained = factory(), factory()
    tic = time.perf_counter()
    train(original, x, y, recipe, convex=True)
    learn_s = time.perf_counter() - tic
    tic = time.perf_counter()
    train(retrained, x[retain], y[retain], recipe, convex=True)
    retrain_s = time.perf_counter() - tic
    ctx = UnlearnContext(model=original.eval(), x_train=x, y_train=y, x_test=xt, y_test=yt, forget_idx=forget,
                         retain_idx=retain, num_classes=2, train_config=recipe, model_factory=factory,
                         device=torch.device("cpu"), seed=0, convex=True, retrained=retrained.eval())
    tic = time.perf_counter()
    res = unlearner.unlearn(ctx, **params)
    unlearn_s = time.perf_counter() - tic
    cert, diag = res.certificate, res.diagnostics
    k = diag.num_gradients
    lsi = acc.lsi_steps(drift=cert.details["drift"], mu=mu, lr=recipe.lr, sigma=SIGMA, epsilon=epsilon,
                        delta=1.0 / n, max_steps=1_000_000)
    print(f"  certificate: {cert.headline()}")
    print(f"  unlearning K = {k} steps (W∞ accountant; the LSI accountant would need {lsi}) against T = "
          f"{train_steps} for retraining: {k / train_steps:.1%} of retraining's gradient computations "
          f"(the authors: 1491/10000 = 14.9 % at S = 100, ε = 1)")
    print(f"  time: learn {learn_s:.1f} s, retrain {retrain_s:.1f} s, unlearn {unlearn_s:.1f} s")
    for name, model in (("original", original), ("retrained", retrained), ("unlearned", res.model)):
        print(f"  test accuracy (3 vs 8) {name:<10} {evaluate(model, xt, yt)[1]:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true", help="also run part 2 on real MNIST")
    parser.add_argument("--train-steps", type=int, default=T_PAPER)
    parser.add_argument("--removed", type=int, default=100)
    parser.add_argument("--epsilon", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    part1()
    if args.run:
        part2(args.train_steps, args.removed, args.epsilon)


if __name__ == "__main__":
    main()
