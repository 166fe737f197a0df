"""The unlearning playground's engine (the Playground page): 2-D data a student can see, two tiny models, a click
that deletes points, and the original, retrained and unlearned decision boundaries with the clouds of the
certificate's noise — UI-free, fast enough to feel live.

Modules: :mod:`~unlearn_core.playground.data2d` (two moons, blobs, XOR, a linearly separable set),
:mod:`~unlearn_core.playground.engine` (training, retraining, unlearning through the registry and the pipeline's
``run_method``, the release distribution), :mod:`~unlearn_core.playground.boundary` (decision boundaries on a grid),
:mod:`~unlearn_core.playground.noise` (every simulated noise draw), :mod:`~unlearn_core.playground.game` (the guessing
game and its reference accuracies), :mod:`~unlearn_core.playground.state` (the URL) and
:mod:`~unlearn_core.playground.figures` (Plotly figures).
"""

from unlearn_core.playground.data2d import DATASETS_2D, make_dataset
from unlearn_core.playground.engine import MODELS_2D, Outcome, Playground, build_playground, draw_clouds, unlearn

__all__ = [
    "DATASETS_2D",
    "MODELS_2D",
    "Outcome",
    "Playground",
    "build_playground",
    "draw_clouds",
    "make_dataset",
    "unlearn",
]
