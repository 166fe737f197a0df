"""Two (or more) certified methods at the same target ε on one configuration: which is cheaper, and what is left.

The default compares Descent-to-Delete with certified Newton on logistic regression, where both certificates
apply (a strongly convex loss): each run at every ε of ``--epsilons``, on the same data, forget set and trained
model, with the certificate (status, ε certified, Δ, σ), the time and the gradient count against retraining, and
the test accuracy of the release and of its noise-free state. The last line says which certified method was
cheapest at each ε (``unlearn_core.equal_epsilon``).

    python bench/bench_equal_epsilon.py                                         # digits logreg, wd 0.01
    python bench/bench_equal_epsilon.py --set descent_to_delete.bound=a_posteriori --set descent_to_delete.steps=2000
    python bench/bench_equal_epsilon.py --set certified_newton.bound=strong_convexity     # once that bound exists
    UNLEARN_DATA_DIR=../shared/data python bench/bench_equal_epsilon.py --dataset mnist --weight-decay 0.01

Every number of one invocation is measured in the same process, side by side; compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import torch

from unlearn_core.equal_epsilon import cheaper_at_equal_epsilon, compare_at_equal_epsilon
from unlearn_core.pipeline import RunConfig
from unlearn_core.training import TrainConfig

#: Certified Newton on logistic regression: the exact solve (p = 650 on digits) with no local convex term.
DEFAULTS = {"certified_newton": {"solver": "exact", "lam": 0.0}, "descent_to_delete": {"steps": 2000}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="logreg")
    parser.add_argument("--forget", default="random:0.1")
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--methods", default="descent_to_delete,certified_newton")
    parser.add_argument("--epsilons", default="0.5,1,4")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="METHOD.NAME=VALUE",
                        help="a method's hyperparameter, e.g. descent_to_delete.steps=500 (repeatable)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    params = {m: dict(DEFAULTS.get(m, {})) for m in methods}
    for item in args.set:
        key, _, value = item.partition("=")
        method, _, name = key.partition(".")
        params.setdefault(method, {})[name] = value
    base = RunConfig(dataset=args.dataset, model=args.model, forget=args.forget,
                     train=TrainConfig(weight_decay=args.weight_decay))
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{args.dataset} {args.model} forget={args.forget} wd={args.weight_decay} seeds={seeds}")
    header = (f"{'ε':>5} {'method':<19}{'status':<29}{'ε cert':>8}{'Δ':>10}{'σ':>10}{'time s':>8}{'÷retrain':>9}"
              f"{'grads':>7}{'acc':>7}{'acc₀':>7}{'retr':>7}")
    print(header)
    verdicts = []
    for eps in [float(e) for e in args.epsilons.split(",")]:
        rows = compare_at_equal_epsilon(base, methods, epsilon=eps, params=params, seeds=seeds)
        for _, r in rows.iterrows():
            print(f"{eps:>5g} {r['method']:<19}{r['status']:<29}{r['epsilon_certified']:>8.3g}"
                  f"{r['sensitivity'] if r['sensitivity'] is not None else float('nan'):>10.3g}{r['sigma_used']:>10.3g}"
                  f"{r['time_s']:>8.3f}{r['time_vs_retrain'] or float('nan'):>9.3g}"
                  f"{r['num_gradients'] if r['num_gradients'] is not None else -1:>7}"
                  f"{r['acc_test']:>7.3f}{r['acc_test_noiseless'] or float('nan'):>7.3f}"
                  f"{r['acc_test_retrained']:>7.3f}")
        verdicts.append(cheaper_at_equal_epsilon(rows))
    print()
    for text in verdicts:
        print("-", text)


if __name__ == "__main__":
    main()
