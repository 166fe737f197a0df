"""The sub-class and memorisation-stratified forget sets: grammar, selection, and the proxy against brute force.

Anchors: the memorisation proxy's closed-form leave-one-out equals n refits of the ridge regression without each
example; mislabelled digits are what it ranks most memorised; the k-means clusters of a class partition it, by
size; every new spec round-trips through its text and gets a one-line error when malformed; a run through the CLI
forgets exactly the selected examples.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from unlearn_core.data import load_dataset
from unlearn_core.errors import ConfigError
from unlearn_core.forget import check_forget_spec, parse_forget_spec, select_forget
from unlearn_core.forget_protocols import PROXY_RIDGE, memorisation_scores, ridge_loo_scores


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.mark.parametrize("spec", ["subclass:3:0", "subclass:3:1:6", "memorised:high:0.05", "memorised:low:200"])
def test_new_specs_round_trip(spec: str) -> None:
    assert str(parse_forget_spec(spec)) == spec
    assert str(parse_forget_spec(spec.replace("memorised", "memorized"))) == spec  # either spelling
    assert str(parse_forget_spec("subclass:3:0:4")) == "subclass:3:0"  # 4 clusters is the default


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [("subclass:3", "expected subclass:K:CLUSTER"), ("subclass:3:4", r"cluster 4 must be in \[0, 3\]"),
     ("subclass:3:0:1", "number of clusters 1"), ("subclass:3:0:21", "number of clusters 21"),
     ("subclass:x:0", "the class must be an integer"), ("memorised:mid:0.1", "memorised:high:AMOUNT"),
     ("memorised:high:0", "at least 1"), ("memorised:high:1.5", "strictly between 0 and 1"),
     ("memorised:0.1", "memorised:high:AMOUNT")],
)
def test_bad_new_specs(spec: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        parse_forget_spec(spec)
    assert "\n" not in str(info.value) and "subclass:K:CLUSTER" in str(info.value)  # one line, with the grammar


def test_checks_against_the_dataset_before_loading_it() -> None:
    with pytest.raises(ConfigError, match="class 10 is not in this dataset"):
        check_forget_spec("subclass:10:0", num_classes=10, n_train=1000)
    with pytest.raises(ConfigError, match="below the training-set size"):
        check_forget_spec("memorised:low:1000", num_classes=10, n_train=1000)
    with pytest.raises(ConfigError, match="needs the training inputs"):
        select_forget("subclass:3:0", torch.arange(100) % 10, seed=0, num_classes=10)


def test_proxy_equals_brute_force_leave_one_out() -> None:
    """n refits, each without one example (an independent solve), against the closed form."""
    rng = np.random.default_rng(0)
    n, d, k = 40, 5, 3
    x = rng.normal(size=(n, d))
    y = rng.integers(0, k, size=n)
    scores = ridge_loo_scores(x, y, num_classes=k)
    feats = np.concatenate([x, np.ones((n, 1))], axis=1)
    targets = np.eye(k)[y]
    lam = PROXY_RIDGE * np.trace(feats[:, :-1].T @ feats[:, :-1]) / d
    full = np.linalg.solve(feats.T @ feats + lam * np.eye(d + 1), feats.T @ targets)
    for i in range(n):
        keep = np.arange(n) != i
        w = np.linalg.solve(feats[keep].T @ feats[keep] + lam * np.eye(d + 1), feats[keep].T @ targets[keep])
        loo = ((targets[i] - feats[i] @ w) ** 2).sum()
        assert scores[i] == pytest.approx(loo, rel=1e-8)
    assert (scores >= ((targets - feats @ full) ** 2).sum(axis=1)).all()  # leaving out never helps


def test_mislabelled_examples_rank_most_memorised(digits) -> None:
    y = digits.y_train.clone()
    flipped = torch.arange(0, 200, 20)  # 10 examples get another class's label
    y[flipped] = (y[flipped] + 5) % 10
    # The 30 most memorised (2 % of digits, which has ambiguous digits of its own) hold 8 of the 10; the least, none.
    forget, retain = select_forget("memorised:high:30", y, seed=0, num_classes=10, x_train=digits.x_train)
    assert len(set(forget.tolist()) & set(flipped.tolist())) >= 8
    low, _ = select_forget("memorised:low:30", y, seed=0, num_classes=10, x_train=digits.x_train)
    assert not set(low.tolist()) & set(flipped.tolist())
    scores = memorisation_scores(digits.x_train, y, num_classes=10)
    assert scores[forget.numpy()].min() >= np.sort(scores)[-30] and scores[low.numpy()].max() <= np.sort(scores)[29]
    assert forget.numel() + retain.numel() == y.numel()


def test_subclass_clusters_partition_the_class_by_size(digits) -> None:
    clusters = [select_forget(f"subclass:3:{c}:3", digits.y_train, seed=0, num_classes=10,
                              x_train=digits.x_train)[0] for c in range(3)]
    members = torch.nonzero(digits.y_train == 3).flatten()
    assert torch.equal(torch.sort(torch.cat(clusters)).values, members)  # disjoint, covering class 3
    sizes = [c.numel() for c in clusters]
    assert sizes == sorted(sizes, reverse=True) and min(sizes) > 0
    again, _ = select_forget("subclass:3:0:3", digits.y_train, seed=0, num_classes=10, x_train=digits.x_train)
    assert torch.equal(again, clusters[0])  # seeded
    with pytest.raises(ConfigError, match="fewer than the 6 clusters"):
        select_forget("subclass:1:0:6", torch.tensor([1, 1, 1, 0, 0, 0, 0]), seed=0, num_classes=2,
                      x_train=torch.randn(7, 2))


def test_cli_run_forgets_the_selected_examples(tmp_path, digits, capsys) -> None:
    """Through the product: the run card's forget set is the memorised selection, and its size as the spec says."""
    from unlearn_core.cli import main

    out = tmp_path / "card.json"
    argv = ["run", "--dataset", "digits", "--model", "mlp", "--hidden", "16", "--epochs", "2", "--forget",
            "memorised:high:0.05", "--method", "finetune", "--set", "epochs=1", "--json", str(out), "--quiet"]
    assert main(argv) == 0
    card = json.loads(out.read_text())
    assert card["config"]["forget"] == "memorised:high:0.05"
    assert card["data"]["n_forget"] == round(0.05 * digits.n_train)
    out.unlink()
    at = argv.index("--forget") + 1
    assert main([*argv[:at], "subclass:3:9", *argv[at + 1:]]) == 2
    err = capsys.readouterr().err
    assert "cluster 9 must be in [0, 3]" in err and err.count("\n") == 1 and not out.exists()
