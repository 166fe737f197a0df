"""The maths of certified unlearning by gradient descent: Descent-to-Delete, Langevin unlearning, Rewind-to-Delete.

One module per purpose, each formula in one named function whose docstring cites the paper (and, where the paper's
full text was not reachable, says so and derives the bound in ``docs/other_methods.md``):

* :mod:`~unlearn_core.descent.softmax_bounds` — proven constants of softmax regression computed from the data
  (smoothness β, per-example gradient bound, the minimiser's norm);
* :mod:`~unlearn_core.descent.contraction` — Descent-to-Delete (Neel, Roth & Sharifi-Malvajerdi, ALT 2021): the
  contraction of gradient descent on a strongly convex smooth loss and the sensitivity it leaves;
* :mod:`~unlearn_core.descent.langevin_accounting` — Langevin unlearning (Chien, Wang, Chen & Li, NeurIPS 2024, two
  papers): the Rényi bounds of projected noisy gradient descent and their (ε, δ) conversion;
* :mod:`~unlearn_core.descent.rewind_sensitivity` — Rewind-to-Delete (Mu & Klabjan, NeurIPS 2025): the distance
  between a rewound-and-retrained trajectory and retraining;
* :mod:`~unlearn_core.descent.release_noise` — the one function the three methods draw their Gaussian noise from.

This is maths: it imports torch, scipy and :mod:`unlearn_core.privacy`, never the pipeline or a method.
"""
