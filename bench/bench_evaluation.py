"""The field's evaluation (challenge score, ToW, U-LiRA) on every executor, side by side, for N = 16 and 64 models.

    python bench/bench_evaluation.py                                   # N = 16, 64; serial, processes, ray
    python bench/bench_evaluation.py --models 16 --executors serial,processes --rounds 3

What is timed: :func:`unlearn_core.field_evaluation.evaluate` of one certified method (output perturbation with one
epoch of fine-tuning) on digits (MLP 32, 5 epochs of Adam, forget ``random:0.1``), with N released, N retrained, N
noisy-retrain and M = N shadow models — every model trained from scratch: each timed run gets an empty model cache,
since training the 2(N + 1) + M models (each seed's original and retrained, the shadows) is most of the work a first
evaluation does. Controls are off (they add 2N + 3M trainings, cells of the same kind). One thread per cell
everywhere (the serial executor too).

Each executor is started once before the rounds (loky's processes import torch, Ray starts its raylet and workers;
the time is reported as ``start s``), then the rounds alternate between executors — in a rotating order, so that
the machine's changing load hits all alike — and the **median** over rounds is reported with the range. Every
executor's rows are checked identical to the serial rows (all columns but time). Besides wall time: the CPU seconds
of this process and all its descendants (loky workers; Ray's processes), read from /proc, per cell — the cost of a
cell independent of how busy the machine is — and the 1-minute load average before each run (the machine is shared:
quote ratios measured side by side, never absolute seconds alone).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import numpy as np
import pandas as pd

from unlearn_core import field_evaluation as fe
from unlearn_core.executors import Cell, get_executor
from unlearn_core.pipeline import RunConfig
from unlearn_core.training import TrainConfig

#: A certified method (so the noisy-retrain arm runs too), cheap per run: one Gaussian draw and one epoch of
#: fine-tuning — the 2N + M trainings then dominate, as they do for most methods on digits.
METHOD = "output_perturbation"
PARAMS = {"finetune_epochs": 1}
TIMING = ("time_s",)


def process_cpu_s() -> dict[int, float] | None:
    """User + system CPU seconds of this process and each live descendant, by pid (Linux /proc; None elsewhere).

    A run's CPU is the sum over pids of (end − start), a pid new since the start counting from 0: a worker that
    exits during the run (Ray retires idle workers) loses only its own share, never turns the sum negative.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    tick = os.sysconf("SC_CLK_TCK")
    parent, ticks = {}, {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(entry.name)], ticks[int(entry.name)] = int(fields[1]), int(fields[11]) + int(fields[12])
    me = os.getpid()
    tree, frontier = {me}, [me]
    while frontier:
        here = frontier.pop()
        for pid, ppid in parent.items():
            if ppid == here and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    own = os.times()
    out = {pid: ticks[pid] / tick for pid in tree if pid != me and pid in ticks}
    out[me] = own.user + own.system
    return out


def cpu_between(start: dict[int, float] | None, end: dict[int, float] | None) -> float:
    if start is None or end is None:
        return float("nan")
    return sum(max(0.0, v - start.get(pid, 0.0)) for pid, v in end.items())


def _noop(cancel=None) -> int:
    return 0


def cells_of(models: int, per_cell: int) -> int:
    """How many cells :func:`fe.evaluate` maps for one certified method, controls off, M = N: prepare (the original's
    seed and N retrained seeds), shadow training, released, noisy retrain, shadow unlearning."""
    return -(-(models + 1) // per_cell) + 4 * -(-models // per_cell)


def timed_run(base: RunConfig, n: int, executor, per_cell: int) -> tuple[pd.DataFrame, float, float]:
    """One evaluation with an empty model cache: (rows, wall s, CPU s of this process and its descendants)."""
    cache = tempfile.mkdtemp(prefix="bench-eval-cache-")
    os.environ["UNLEARN_CACHE_DIR"] = cache
    try:
        cpu0, tic = process_cpu_s(), time.perf_counter()
        df = fe.evaluate(base, [METHOD], params={METHOD: PARAMS}, models=n, shadows=n, controls=False,
                         models_per_cell=per_cell, executor=executor)
        return df, time.perf_counter() - tic, cpu_between(cpu0, process_cpu_s())
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="16,64", help="N values, comma-separated (default 16,64)")
    parser.add_argument("--executors", default="serial,processes,ray")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-cell", type=int, default=fe.MODELS_PER_CELL, help="models per cell")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "evaluation_executors.csv"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("UNLEARN_DOWNLOAD", "0")
    base = RunConfig(dataset="digits", model="mlp", hidden=(32,), forget="random:0.1", train=TrainConfig(epochs=5),
                     device="cpu")
    names = [e.strip() for e in args.executors.split(",") if e.strip()]
    executors, start_s = {}, {}
    for name in names:
        tic = time.perf_counter()
        ex = get_executor(name, workers=None if name == "serial" else args.workers, threads_per_cell=1)
        ex.map([Cell(_noop, {})] * (1 if name == "serial" else args.workers))  # start the workers
        executors[name], start_s[name] = ex, time.perf_counter() - tic
        timed_run(base, 4, ex, args.per_cell)  # untimed: every worker imports what a cell needs
    records = []
    reference: dict[int, pd.DataFrame] = {}
    try:
        for n in [int(x) for x in args.models.split(",")]:
            for r in range(args.rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for name in order:
                    load = os.getloadavg()[0]
                    df, wall, cpu = timed_run(base, n, executors[name], args.per_cell)
                    rows = fe.summary_table(df).drop(columns=[c for c in TIMING if c in df.columns])
                    if name == "serial" or n not in reference:
                        reference.setdefault(n, rows)
                    same = rows.equals(reference[n])
                    cells = cells_of(n, args.per_cell)
                    records.append({"models": n, "executor": name, "round": r, "wall_s": wall, "cpu_s": cpu,
                                    "cells": cells, "cpu_s_per_cell": cpu / cells, "load_1min": load,
                                    "rows_identical": same})
                    print(f"N={n:3d} {name:9s} round {r}: {wall:7.1f} s wall, {cpu:7.1f} s CPU "
                          f"({cpu / cells:.2f} s/cell, {cells} cells), load {load:.1f}, rows identical: {same}",
                          flush=True)
    finally:
        for ex in executors.values():
            ex.close()
    raw = pd.DataFrame(records)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    raw.to_csv(args.out, index=False)
    summary = raw.groupby(["models", "executor"], sort=False).agg(
        wall_median_s=("wall_s", "median"), wall_min_s=("wall_s", "min"), wall_max_s=("wall_s", "max"),
        cpu_per_cell_s=("cpu_s_per_cell", "median"), cells=("cells", "first"), load=("load_1min", "median"),
        identical=("rows_identical", "all")).reset_index()
    serial = summary[summary["executor"] == "serial"].set_index("models")["wall_median_s"]
    summary["speedup_vs_serial"] = [serial.get(m, np.nan) / w for m, w in zip(summary["models"],
                                                                              summary["wall_median_s"], strict=True)]
    summary["start_s"] = summary["executor"].map(start_s)
    with pd.option_context("display.width", 200, "display.float_format", "{:.2f}".format):
        print(summary.to_string(index=False))
    print(f"workers: {args.workers}; CPUs: {os.cpu_count()}; raw rounds: {args.out}")
    return 0 if raw["rows_identical"].all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
