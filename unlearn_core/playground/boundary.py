r"""Decision boundaries in the plane: the model's decision function on a grid, its zero level as line segments, and
a distance between two boundaries.

A two-class model's decision boundary is the zero level of its **decision function**
:math:`f(x) = z_1(x) - z_0(x)` (the difference of the two logits: :math:`f > 0` where the model predicts class 1,
and :math:`P(y = 1 \mid x) = \mathrm{sigmoid}(f(x))`). :func:`zero_level` extracts it from :math:`f` sampled on a
grid by **marching squares** (Lorensen & Cline 1987, in two dimensions): in every grid cell whose corners do not
all have the same sign, the crossings of the cell's edges are found by linear interpolation and joined into one
segment (two in a saddle cell, paired by the sign of the cell's mean). For logistic regression :math:`f` is affine,
so the interpolation is exact and the segments lie on the true line.

:func:`boundary_distance` is the symmetric mean distance between two boundaries (from every crossing point of one
to the nearest segment of the other, averaged, both ways): 0 when they coincide, the offset when one is a parallel
translate of the other (inside the window). The tests compare the unlearned boundary's distance to the retrained
one with the original's (the issue's "distance ratio").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from unlearn_core.playground.data2d import WINDOW

#: Grid points per axis: 0.06 apart over the 6-unit window; 101² = 10,201 forward evaluations per boundary.
GRID_SIZE = 101


@dataclass(frozen=True)
class Grid:
    """A square grid over the window: ``xs`` and ``ys`` (increasing), and the points as a model input (G²×1×1×2,
    row-major: row i is y = ys[i])."""

    xs: np.ndarray
    ys: np.ndarray
    inputs: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.ys), len(self.xs)


def make_grid(window: tuple[float, float] = WINDOW, size: int = GRID_SIZE) -> Grid:
    lo, hi = window
    xs = np.linspace(lo, hi, size)
    ys = np.linspace(lo, hi, size)
    gx, gy = np.meshgrid(xs, ys)
    inputs = torch.as_tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype=torch.float32).reshape(-1, 1, 1, 2)
    return Grid(xs=xs, ys=ys, inputs=inputs)


@torch.no_grad()
def decision_values(model: nn.Module, grid: Grid) -> np.ndarray:
    """f = z₁ − z₀ of ``model`` at every grid point, as a (len(ys), len(xs)) float64 array (row i: y = ys[i])."""
    training = model.training
    model.eval()
    logits = model(grid.inputs)
    model.train(training)
    values = (logits[:, 1] - logits[:, 0]).double().numpy()
    return values.reshape(grid.shape)


@dataclass(frozen=True)
class Boundary:
    """The zero level of a decision function: ``segments[k] = [[x0, y0], [x1, y1]]`` (S×2×2, float64)."""

    segments: np.ndarray

    @property
    def empty(self) -> bool:
        """No boundary inside the window: the model predicts one class everywhere there."""
        return len(self.segments) == 0

    def polyline(self) -> tuple[list[float | None], list[float | None]]:
        """x and y lists for one plotly line trace: the segments separated by ``None`` (no line between them)."""
        xs: list[float | None] = []
        ys: list[float | None] = []
        for (x0, y0), (x1, y1) in self.segments.tolist():
            xs += [x0, x1, None]
            ys += [y0, y1, None]
        return xs, ys


def zero_level(values: np.ndarray, grid: Grid) -> Boundary:
    """The segments of {f = 0} by marching squares (see the module docstring); ``values`` from
    :func:`decision_values`. A point with f > 0 is on the class-1 side; f ≤ 0 on the class-0 side."""
    v = np.asarray(values, dtype=np.float64)
    pos = v > 0
    va, vb, vc, vd = v[:-1, :-1], v[:-1, 1:], v[1:, 1:], v[1:, :-1]  # corners: bottom-left, bottom-right, top-right,
    pa, pb, pc, pd = pos[:-1, :-1], pos[:-1, 1:], pos[1:, 1:], pos[1:, :-1]  # top-left (row = y, column = x)
    x0, x1 = grid.xs[None, :-1], grid.xs[None, 1:]
    y0, y1 = grid.ys[:-1, None], grid.ys[1:, None]
    shape = va.shape

    def crossing(p: np.ndarray, q: np.ndarray, vp: np.ndarray, vq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cross = p != q
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(cross, vp / (vp - vq), 0.0)
        return cross, t

    edges = []  # (crosses, x, y) for the bottom, right, top and left edges of every cell
    cross, t = crossing(pa, pb, va, vb)
    edges.append((cross, np.broadcast_to(x0 + t * (x1 - x0), shape), np.broadcast_to(y0, shape)))
    cross, t = crossing(pb, pc, vb, vc)
    edges.append((cross, np.broadcast_to(x1, shape), np.broadcast_to(y0 + t * (y1 - y0), shape)))
    cross, t = crossing(pd, pc, vd, vc)
    edges.append((cross, np.broadcast_to(x0 + t * (x1 - x0), shape), np.broadcast_to(y1, shape)))
    cross, t = crossing(pa, pd, va, vd)
    edges.append((cross, np.broadcast_to(x0, shape), np.broadcast_to(y0 + t * (y1 - y0), shape)))
    crosses = np.stack([e[0] for e in edges])  # 4 × H × W
    points = np.stack([np.stack([e[1], e[2]], axis=-1) for e in edges])  # 4 × H × W × 2
    count = crosses.sum(axis=0)

    segments = []
    two = count == 2
    if two.any():
        # The two crossed edges of each such cell, in edge order.
        order = np.argsort(~crosses[:, two], axis=0, kind="stable")[:2]  # 2 × K
        cells = points[:, two]  # 4 × K × 2
        k = np.arange(cells.shape[1])
        segments.append(np.stack([cells[order[0], k], cells[order[1], k]], axis=1))
    four = count == 4
    if four.any():
        # A saddle: the sign of the cell's mean decides which corners the two segments cut off.
        centre_pos = ((va + vb + vc + vd) / 4.0 > 0)[four]
        same_as_a = centre_pos == pa[four]
        cells = points[:, four]  # bottom, right, top, left
        # Same sign as a: cut off b (bottom, right) and d (top, left); else a (bottom, left) and c (right, top).
        first = cells[0]
        second = np.where(same_as_a[:, None], cells[1], cells[3])
        third = np.where(same_as_a[:, None], cells[2], cells[1])
        fourth = np.where(same_as_a[:, None], cells[3], cells[2])
        segments.append(np.stack([first, second], axis=1))
        segments.append(np.stack([third, fourth], axis=1))
    if not segments:
        return Boundary(np.zeros((0, 2, 2)))
    return Boundary(np.concatenate(segments).astype(np.float64))


def boundary_of(model: nn.Module, grid: Grid) -> Boundary:
    """The decision boundary of ``model`` inside the grid's window."""
    return zero_level(decision_values(model, grid), grid)


def _point_to_segments(points: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """For every point (P×2), the distance to the nearest of ``segments`` (S×2×2)."""
    a, b = segments[:, 0], segments[:, 1]  # S × 2
    ab = b - a
    length2 = np.maximum((ab**2).sum(axis=1), 1e-300)  # S
    ap = points[:, None, :] - a[None, :, :]  # P × S × 2
    t = np.clip((ap * ab[None]).sum(axis=2) / length2[None], 0.0, 1.0)  # P × S
    nearest = a[None] + t[..., None] * ab[None]
    return np.sqrt(((points[:, None, :] - nearest) ** 2).sum(axis=2)).min(axis=1)


def boundary_distance(a: Boundary, b: Boundary) -> float:
    """Symmetric mean distance between two boundaries (module docstring); 0 when both are empty, ``inf`` when
    exactly one is (one model predicts a single class over the whole window, the other does not)."""
    if a.empty and b.empty:
        return 0.0
    if a.empty or b.empty:
        return math.inf
    pa = a.segments.reshape(-1, 2)
    pb = b.segments.reshape(-1, 2)
    return float(0.5 * (_point_to_segments(pa, b.segments).mean() + _point_to_segments(pb, a.segments).mean()))
