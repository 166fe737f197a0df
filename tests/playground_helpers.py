"""Helpers shared by the playground's tests (not a test module): the points whose deletion moves the boundary, and
what an Explore run would hand a method on the playground's data, built from the package's public pieces."""

from __future__ import annotations

import numpy as np
import torch

from unlearn_core.models import build_model
from unlearn_core.pipeline import Prepared, RunConfig
from unlearn_core.playground import engine
from unlearn_core.training import resolve_train_config, train


def near_boundary(pg: engine.Playground, k: int, *, label: int = 0) -> list[int]:
    """The k points of class ``label`` closest to the original model's boundary (their deletion moves it most)."""
    with torch.no_grad():
        logits = pg.original(pg.data.x_train)
    f = (logits[:, 1] - logits[:, 0]).numpy()
    y = pg.data.y_train.numpy()
    idx = np.nonzero(y == label)[0]
    return sorted(idx[np.argsort(np.abs(f[idx]))][:k].tolist())


def explore_prepared(pg: engine.Playground, forget: list[int]) -> Prepared:
    """What an Explore run would hand the method on this data (logistic regression), built here independently of
    the playground's engine: the data set, the models trained by the same recipe, the pipeline's Prepared."""
    recipe = resolve_train_config(engine.RECIPE, convex=True)
    keep = torch.tensor([i for i in range(pg.n_train) if i not in forget])
    models, summaries = [], []
    for x, y in ((pg.data.x_train, pg.data.y_train), (pg.data.x_train[keep], pg.data.y_train[keep])):
        model = build_model("logreg", input_shape=(1, 1, 2), num_classes=2, seed=pg.seed)
        summaries.append(train(model, x, y, recipe, convex=True))
        models.append(model.eval())
    config = RunConfig(dataset=pg.dataset, model="logreg", forget="indices:" + ",".join(map(str, forget)),
                       seed=pg.seed, train=engine.RECIPE, use_cache=False,
                       reproducible=True)  # Explore's reproducible mode: the same seeded noise as the playground's
    return Prepared(config=config, device=torch.device("cpu"), data=pg.data, forget_idx=torch.tensor(forget),
                    retain_idx=keep, train_config=recipe, original=models[0], retrained=models[1],
                    timing_s={"train": summaries[0]["time_s"], "retrain": summaries[1]["time_s"]},
                    cached={"original": False, "retrained": False},
                    train_summaries={"original": summaries[0], "retrained": summaries[1]})
