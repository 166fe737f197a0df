"""The same experiment on every executor, side by side: wall time, cells per second, speed-up over serial, and
the cost of starting workers (loky processes, a local Ray).

    python bench/bench_executors.py                                  # the audit on digits, all certified methods
    python bench/bench_executors.py --experiment sensitivity          # a λ × seeds sweep of certified Newton
    python bench/bench_executors.py --executors serial,processes --workers 2 --runs 100

Each executor runs the experiment once cold — paying for starting its workers (importing torch in every loky
process; starting Ray and its workers) — then ``--rounds`` times warm, the steady state a dashboard or a long
sweep sees; the warm rounds alternate between executors so that the machine's changing load hits all alike, and
the best warm round is reported (the one least disturbed by other work on the machine), with the range. The
trained models are cached before any timing, so no executor trains. The rows of every executor are checked
identical to the serial rows (all columns but wall time). All timings come from this one run, so the ratios are
comparable; absolute seconds depend on the machine and its load.

Besides wall time it reports the CPU seconds spent by this process and all its descendants (loky workers; Ray's
raylet, GCS and workers), read from /proc on Linux: "CPU s per cell" is the executor's cost independent of how
busy the machine is, "cores used" = CPU s / wall s how much of the machine the run actually got, and the load
average says how busy the machine was.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without installing

import pandas as pd

from unlearn_core import experiments as ex
from unlearn_core.executors import get_executor
from unlearn_core.pipeline import RunConfig, prepare
from unlearn_core.training import TrainConfig

#: The quick demo's certified-Newton settings (a finite bound on digits) with a shorter LiSSA: many cheap runs.
NEWTON = {"lam": 1.0, "H": "auto", "depth": 100, "reps": 2, "batch": 64}


def _tree_cpu_s(root: int | None = None) -> float | None:
    """User + system CPU seconds of process ``root`` (default: this one) and all its live descendants (Linux)."""
    root = os.getpid() if root is None else root
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    parent, ticks = {}, {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry.name)] = int(fields[1])
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, ppid in parent.items():
            if ppid == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(ticks.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


def _experiment(args: argparse.Namespace, base: RunConfig):
    """A function of the executor that runs the chosen experiment, and its number of cells."""
    seeds = list(range(args.seeds))
    if args.experiment == "audit":
        methods = ex.certified_methods()
        params = {m: dict(NEWTON) if m == "certified_newton" else {} for m in methods}
        per_arm = -(-args.runs // args.runs_per_cell)
        cells = len(seeds) * len(methods) * (1 + 2 * per_arm)
        units = f"{len(seeds) * len(methods) * (1 + 2 * args.runs)} unlearner runs"
        return (lambda executor, progress=None: ex.audit(
            base, methods=methods, params=params, runs=args.runs, runs_per_cell=args.runs_per_cell, seeds=seeds,
            executor=executor, progress=progress)), cells, units
    values = [0.3, 1.0, 3.0, 10.0]
    cells = len(seeds) * (1 + len(values))
    return (lambda executor, progress=None: ex.sensitivity(
        base, method="certified_newton", param="lam", values=values, params={k: v for k, v in NEWTON.items()
                                                                              if k != "lam"},
        seeds=seeds, executor=executor, progress=progress)), cells, f"{len(seeds) * len(values)} unlearner runs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", default="audit", choices=("audit", "sensitivity"))
    parser.add_argument("--executors", default="serial,processes,ray")
    parser.add_argument("--workers", type=int, default=None, help="worker processes / local Ray CPUs (default: all)")
    parser.add_argument("--runs", type=int, default=40, help="audit: runs per arm")
    parser.add_argument("--runs-per-cell", type=int, default=10, help="audit: runs per cell")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3, help="warm rounds per executor after the cold one")
    args = parser.parse_args()

    base = RunConfig(dataset=args.dataset, model="mlp", forget="random:0.1", train=TrainConfig(epochs=args.epochs),
                     device=args.device)
    for seed in range(args.seeds):  # cache the trained models: no executor trains during the timings
        prepare(dataclasses.replace(base, seed=seed))
    run, cells, units = _experiment(args, base)
    names = [n for n in args.executors.split(",") if n]
    print(f"{args.experiment} on {args.dataset}: {cells} cells ({units}); executors {', '.join(names)}; "
          f"1 cold + {args.rounds} warm rounds, interleaved")
    executors = {name: get_executor(name, workers=args.workers, threads_per_cell=1) for name in names}
    timings: dict[str, dict[str, list]] = {n: {"wall": [], "cpu": [], "load": []} for n in names}
    frames = {}
    try:
        # Round 0 is each executor's cold start; the warm rounds alternate executors, so that a change in the
        # machine's load hits every executor alike. Ray stays up (idle) while the others run.
        for round_ in range(1 + args.rounds):
            for name in names:
                cpu0, tic = _tree_cpu_s(), time.perf_counter()
                frames[name] = run(executors[name])
                wall, cpu1 = time.perf_counter() - tic, _tree_cpu_s()
                t = timings[name]
                t["wall"].append(wall)
                t["cpu"].append(None if cpu0 is None or cpu1 is None else cpu1 - cpu0)
                t["load"].append(os.getloadavg()[0])
                print(f"  round {round_} {name}: {wall:.1f} s (CPU {t['cpu'][-1] or float('nan'):.1f} s, "
                      f"load average {t['load'][-1]:.1f})", flush=True)
    finally:
        for executor in executors.values():
            executor.close()
    rows = []
    for name in names:
        t = timings[name]
        mid = min(range(1, len(t["wall"])), key=lambda i: t["wall"][i])  # the best warm round
        rows.append({"executor": executors[name].describe(), "name": name, "cold_s": t["wall"][0],
                     "warm_s": t["wall"][mid], "warm_min": min(t["wall"][1:]), "warm_max": max(t["wall"][1:]),
                     "warm_cpu_s": t["cpu"][mid], "load": t["load"][mid],
                     "start_s": getattr(executors[name], "start_s", None)})

    reference = frames[names[0]]
    cols = [c for c in reference.columns if c not in ex.TIMING_COLUMNS]
    identical = all(frames[n][cols].equals(reference[cols]) for n in names)
    serial = next((r for r in rows if r["name"] == "serial"), rows[0])
    table = pd.DataFrame([{
        "executor": r["executor"],
        "warm s (best)": r["warm_s"],
        "warm s range": f"{r['warm_min']:.0f}–{r['warm_max']:.0f}",
        "cells/s (warm)": cells / r["warm_s"],
        f"× {serial['name']} (warm)": serial["warm_s"] / r["warm_s"],
        "CPU s per cell (warm)": None if r["warm_cpu_s"] is None else r["warm_cpu_s"] / cells,
        "cores used (warm)": None if r["warm_cpu_s"] is None else r["warm_cpu_s"] / r["warm_s"],
        "cold s": r["cold_s"],
        "start-up s (cold − best warm)": r["cold_s"] - r["warm_s"],
        "of which ray.init s": r["start_s"],
        "load avg": r["load"],
    } for r in rows])
    print(f"machine: {os.cpu_count()} cores")
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.float_format", "{:.3g}".format):
        print(table.to_string(index=False))
    print(f"rows identical to {names[0]} on every executor (all columns but wall time): {'yes' if identical else 'NO'}")


if __name__ == "__main__":
    main()
