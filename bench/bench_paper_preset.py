"""The dashboard's "Paper: MNIST MLP" preset at full scale, as it runs behind Explore — out of the test suite.

Zhang et al.'s setting (MNIST 784-32-32-10, 1,000 random points, 50 epochs, λ = 0.01, C = 20): two trainings of 50
epochs and a LiSSA Newton step. The suite checks the preset's wiring and its story on a reduced setting
(tests/test_app.py::test_paper_preset_does_not_forget_and_is_not_certified: digits, 700 points, same recipe);
this script runs the preset itself and prints what Explore would show — the verdict, the accuracies — with the
time estimated before the run (the work estimate on this device's measured speed, :mod:`unlearn_core.device_time`)
next to the time it took.

    UNLEARN_DATA_DIR=../shared/data python bench/bench_paper_preset.py            # the preset (≈ 2–15 min on CPU)
    UNLEARN_DATA_DIR=../shared/data python bench/bench_paper_preset.py --epochs 5  # a shorter check
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=None, help="override the preset's 50 epochs")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--keep-cache", action="store_true", help="use UNLEARN_CACHE_DIR instead of an empty cache")
    args = parser.parse_args()
    if not args.keep_cache:
        os.environ["UNLEARN_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-paper-")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from unlearn_core.device import resolve_device
    from unlearn_core.device_time import calibrate, describe_estimate, stage_seconds
    from unlearn_core.pipeline import cached_stages, run, validate_config
    from unlearn_core.preflight import estimate_run
    from unlearn_core.service import ui_state
    from unlearn_core.unlearners import get_unlearner
    from unlearn_core.verdict import verdict_from_card

    cfg = ui_state.preset(ui_state.PAPER)
    if args.epochs is not None:
        cfg = dataclasses.replace(cfg, epochs=args.epochs)
    config = cfg.to_run_config()
    params = validate_config(config)
    estimate = estimate_run(config, get_unlearner(config.method), params)
    seconds = stage_seconds(estimate, calibrate(resolve_device(config.device)), cached=cached_stages(config))
    print(f"cores: {os.cpu_count()}; torch threads: {torch.get_num_threads()}; 1-min load at start: "
          f"{os.getloadavg()[0]:.2f}")
    print(f"configuration: {config.dataset}/{config.model} {config.hidden}, forget {config.forget}, "
          f"{config.train.epochs} epochs, {config.method} {params.get('solver')} λ = {params['lam']}")
    print(f"estimated before the run: {describe_estimate(seconds, caps=bool(estimate.caps))}")
    tic = time.perf_counter()
    card = run(config, validated=True).card
    total = time.perf_counter() - tic
    verdict = verdict_from_card(card)
    timing = card["timing_s"]
    print(f"took: {total:.0f} s (train {timing['train']:.0f} s, retrain {timing['retrain']:.0f} s, unlearn "
          f"{timing['unlearn']:.0f} s); estimate / actual = {sum(seconds.values()) / total:.2f}")
    print(f"verdict: {verdict.headline if verdict else '(none)'}")
    for answer in verdict.answers if verdict else []:
        print(f"  {answer.question} {answer.short}")
    for name, m in card["models"].items():
        print(f"  {name:<10} forget {m['acc_forget']:.4f}  retain {m['acc_retain']:.4f}  test {m['acc_test']:.4f}")


if __name__ == "__main__":
    main()
