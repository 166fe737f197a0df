"""Every registered unlearner but certified_newton (see bench_newton_vs_retrain.py) side by side on one
prepared configuration: time (and its ratio to retraining), accuracy, distance to the retrained oracle, and
the certificate label.

    python bench/bench_methods.py --dataset digits --model mlp --epochs 20
    python bench/bench_methods.py --dataset mnist --model mlp --epochs 5 --device cuda

Prints one row per method, all measured in the same run, so the ratios are comparable.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

from unlearn_core.evaluation import param_distance
from unlearn_core.pipeline import RunConfig, prepare, run_method
from unlearn_core.training import TrainConfig
from unlearn_core.unlearners import list_unlearners

METHODS = tuple(cls.name for cls in list_unlearners() if cls.name != "certified_newton")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--forget", default="random:0.1")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    config = RunConfig(dataset=args.dataset, model=args.model, forget=args.forget, device=args.device,
                       train=TrainConfig(epochs=args.epochs), use_cache=False)
    start = time.perf_counter()
    prepared = prepare(config)
    print(f"prepared in {time.perf_counter() - start:.1f}s (train {prepared.timing_s['train']:.2f}s, "
          f"retrain {prepared.timing_s['retrain']:.2f}s) on {prepared.device}")
    header = f"{'method':<20}{'time_s':>9}{'÷retrain':>10}{'acc_f':>8}{'acc_r':>8}{'acc_t':>8}{'‖w−w̃*‖':>10}  label"
    print(header)
    retrain_s = prepared.timing_s["retrain"] or float("nan")
    for name in [m for m in args.methods.split(",") if m]:
        res = run_method(prepared, name)
        card = res.card
        m = card["models"]["unlearned"]
        cert = card["certificate"]
        label = cert["label"] if cert else card["method"]["family"]
        t = card["timing_s"]["unlearn"]
        print(f"{name:<20}{t:>9.3f}{t / retrain_s:>10.3f}{m['acc_forget']:>8.3f}{m['acc_retain']:>8.3f}"
              f"{m['acc_test']:>8.3f}{card['distance']['unlearned_to_retrained']:>10.3f}  {label}")
    o, r = prepared.metrics(prepared.original), prepared.metrics(prepared.retrained)
    print(f"{'(original)':<20}{'':>19}{o['acc_forget']:>8.3f}{o['acc_retain']:>8.3f}{o['acc_test']:>8.3f}"
          f"{param_distance(prepared.original, prepared.retrained):>10.3f}")
    print(f"{'(retrained)':<20}{'':>19}{r['acc_forget']:>8.3f}{r['acc_retain']:>8.3f}{r['acc_test']:>8.3f}")

if __name__ == "__main__":
    main()
