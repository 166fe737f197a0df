"""AppTest of the Playground page: a deep link restores the state, deleting a point changes the retrained boundary,
certified Newton on the convex set lands on the retrained boundary, the status and verdict are Explore's, bad URL
values are one line each (never Markdown), every registered method can be chosen, and the game keeps score.

The figure is read from the page's Plotly chart (its JSON spec), and the distances are measured here, by fitting a
line to each logistic-regression boundary — independently of the engine's own distance.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pytest
import streamlit as st
from playground_helpers import explore_prepared, near_boundary
from streamlit.testing.v1 import AppTest
from timeouts import scaled

from unlearn_core.certificate import certificate_from_card
from unlearn_core.pipeline import run_method
from unlearn_core.playground import engine, figures, game
from unlearn_core.playground import state as pstate
from unlearn_core.service.jobs import shutdown_all
from unlearn_core.unlearners import list_unlearners
from unlearn_core.verdict import verdict_from_card

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGE = "pages/playground.py"
STATE = "playground._state"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def _fresh_app(tmp_path, monkeypatch):
    monkeypatch.setenv("UNLEARN_CACHE_DIR", str(tmp_path / "cache"))
    st.cache_resource.clear()
    yield
    shutdown_all(timeout=scaled(60))
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def blobs() -> engine.Playground:
    return engine.build_playground("blobs", seed=0, model="logreg")


def _open(query: dict[str, str]) -> AppTest:
    """The app with the Playground as its first page and ``query`` as its URL (a lecturer's shared link)."""
    at = AppTest.from_file(APP, default_timeout=scaled(120))
    at.switch_page(PAGE)
    at.query_params.update(query)
    at.run()
    assert not at.exception, at.exception
    return at


def _traces(at: AppTest) -> dict[str, dict]:
    """The main chart's traces by legend name (the interactive chart is the one with a selection mode)."""
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.proto.selection_mode]
    assert len(charts) == 1
    return {t.get("name"): t for t in charts[0]["data"]}


def _points(trace: dict) -> np.ndarray:
    xs, ys = trace["x"], trace["y"]
    return np.array([(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None], dtype=float)


def _line(points: np.ndarray) -> tuple[np.ndarray, float]:
    """The unit normal n and offset c of the least-squares line n·p = c through ``points``."""
    centre = points.mean(axis=0)
    _, _, vt = np.linalg.svd(points - centre)
    normal = vt[-1]
    return normal, float(normal @ centre)


def _mean_distance(points: np.ndarray, line: tuple[np.ndarray, float]) -> float:
    normal, c = line
    return float(np.abs(points @ normal - c).mean())


def _alerts(at: AppTest) -> list[str]:
    return [a.value for kind in (at.error, at.warning, at.info, at.success) for a in kind]


def test_a_shared_link_opens_the_same_state_and_the_url_follows(blobs):
    forget = near_boundary(blobs, 2)
    at = _open({"dataset": "blobs", "seed": "0", "model": "logreg", "deleted": ",".join(map(str, forget)),
                "method": "certified_newton", "p.lam": "0.5", "p.epsilon": "20", "p.delta": "1e-06"})
    assert not [e.value for e in at.error if "Like retraining" not in e.value]
    state = at.session_state[STATE]
    assert state.deleted == tuple(forget) and state.params == {"lam": 0.5, "epsilon": 20.0, "delta": 1e-6}
    sliders = {s.label: s.value for s in at.select_slider}
    assert sliders == {"λ — local convex term": 0.5, "ε — privacy budget": 20.0, "δ — failure probability": 1e-6}
    assert at.query_params["deleted"] in (",".join(map(str, forget)), [",".join(map(str, forget))])
    at.select_slider(key="playground.p.certified_newton.epsilon").set_value(100.0).run()
    assert not at.exception
    assert at.query_params["p.epsilon"] in ("100", ["100"])
    assert "ε certified = **100**" in " ".join(m.value for m in at.markdown)
    # Later in the same session, a link with another state (a Learn link) opens that state, widgets included.
    at.switch_page("pages/learn.py").run()
    at.query_params.clear()
    at.query_params.update({"dataset": "moons", "model": "logreg", "deleted": "1", "method": "output_perturbation"})
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    state = at.session_state[STATE]
    assert (state.dataset, state.deleted, state.method) == ("moons", (1,), "output_perturbation")
    assert at.selectbox(key="playground.method").value == "output_perturbation"
    assert at.selectbox(key="playground.dataset").value == "moons"


def test_deleting_a_point_changes_the_retrained_boundary_and_restore_brings_it_back(blobs):
    at = _open({"dataset": "blobs", "model": "logreg"})
    traces = _traces(at)
    assert figures.RETRAINED not in traces and figures.ORIGINAL in traces  # nothing deleted yet
    original = _points(traces[figures.ORIGINAL])
    assert any("click a point" in a for a in _alerts(at))
    # What the chart's selection callback does on a click (pages/playground.py → state.apply_selection).
    forget = near_boundary(blobs, 1)
    state = at.session_state[STATE]
    at.session_state[STATE] = dataclasses.replace(
        state, deleted=pstate.apply_selection(state.deleted, {"points": [{"customdata": [forget[0], 0]}]}))
    at.run()
    assert not at.exception, at.exception
    traces = _traces(at)
    retrained = _points(traces[figures.RETRAINED])
    assert np.array_equal(_points(traces[figures.ORIGINAL]), original)
    shift = _mean_distance(retrained, _line(original))
    assert shift > 1e-3, "deleting a point next to the boundary moves the retrained boundary"
    assert len(_points(traces["deleted points"])) == 1
    assert figures.CLOUD_RETRAINED in traces and figures.CLOUD_UNLEARNED in traces
    at.button(key="playground.restore").click().run()
    assert at.session_state[STATE].deleted == ()
    assert figures.RETRAINED not in _traces(at)


def test_certified_newton_lands_on_the_retrained_boundary_and_its_status_is_explores(blobs):
    forget = near_boundary(blobs, 4)
    at = _open({"dataset": "blobs", "model": "logreg", "deleted": ",".join(map(str, forget)),
                "method": "certified_newton", "p.bound": "zhang", "p.lam": "0.0001", "p.epsilon": "1"})
    traces = _traces(at)
    retrained = _line(_points(traces[figures.RETRAINED]))
    moved = _mean_distance(_points(traces[figures.ORIGINAL]), retrained)
    left = _mean_distance(_points(traces[figures.UNLEARNED]), retrained)
    assert moved > 0.02 and left / moved < 0.1, (left, moved)
    # Explore's engine on the same method and settings, from a Prepared built independently of the playground.
    params = engine.method_params("certified_newton", {"bound": "zhang", "lam": 0.0001, "epsilon": 1.0})
    card = run_method(explore_prepared(blobs, forget), "certified_newton", params, checked=True).card
    cert, verdict = certificate_from_card(card), verdict_from_card(card)
    text = " ".join(m.value for m in at.markdown)
    assert f"**Certificate:** :orange-badge[{cert.status}]" in text
    assert f"Δ = **{cert.sensitivity:.4g}**" in text and f"σ used = **{cert.sigma_used:.4g}**" in text
    assert any(verdict.headline in a for a in _alerts(at)), verdict.headline
    assert cert.status == "certified under assumptions"  # M is an assumption; λ_min and G are bounds here
    # Under Details, Explore's certificate card (dashboard/results.certificate_card) over the playground's card.
    at.toggle(key="playground.details").set_value(True).run()
    assert any(a.startswith(f"**{cert.status}** at (ε, δ) = (1, 1e-05) — given M (assumption)") for a in _alerts(at))
    assert at.dataframe, "the accuracy table"
    # Without p.bound, logistic regression gets the strong-convexity bound: a proof, shown green.
    default = _open({"dataset": "blobs", "model": "logreg", "deleted": ",".join(map(str, forget)),
                     "method": "certified_newton"})
    text = " ".join(m.value for m in default.markdown)
    assert "**Certificate:** :green-badge[certified]" in text


def test_bad_url_values_are_one_line_errors_shown_as_text():
    at = _open({"dataset": "**nope**", "deleted": "1,x", "p.epsilon": "abc", "seed": "3"})
    errors = [e.value for e in at.error if "Like retraining" not in e.value]
    assert len(errors) == 3, errors
    assert all("\n" not in e for e in errors)
    assert any(e.startswith("dataset\\=\\'\\*\\*nope\\*\\*\\' is not valid") for e in errors), errors
    assert any("deleted\\=\\'1,x\\' is not valid" in e for e in errors)
    assert any("p\\.epsilon\\=\\'abc\\' is not valid" in e for e in errors)
    state = at.session_state[STATE]
    defaults = engine.method_params(state.method, model=state.model)  # a bad value keeps the default
    assert (state.dataset, state.seed, state.deleted) == ("blobs", 3, ())
    assert state.params == {name: defaults[name] for name in pstate.SLIDER_PARAMS}
    assert _traces(at)  # the page still draws


def test_every_registered_method_can_be_chosen_and_the_game_keeps_score(blobs):
    forget = near_boundary(blobs, 2)
    at = _open({"dataset": "blobs", "model": "logreg", "deleted": ",".join(map(str, forget))})
    for cls in list_unlearners():
        at.selectbox(key="playground.method").set_value(cls.name).run()
        assert not at.exception, (cls.name, at.exception)
        text = " ".join(m.value for m in at.markdown)
        assert "**Certificate:**" in text or any(cls.name in a for a in _alerts(at)), cls.name
        if cls.issues_certificate():
            assert at.session_state[STATE].method == cls.name
    at.selectbox(key="playground.method").set_value("certified_newton").run()
    at.select_slider(key="playground.p.certified_newton.lam").set_value(100.0).run()
    at.select_slider(key="playground.p.certified_newton.epsilon").set_value(1000.0).run()
    at.button(key="playground.game.new").click().run()
    assert not at.exception, at.exception
    games = [c for c in at.get("plotly_chart") if not c.proto.selection_mode]
    assert len(games) == 2
    at.button(key="playground.game.A").click().run()
    assert not at.exception, at.exception
    verdicts = [a.value for a in (*at.success, *at.error) if "came from the model that never saw" in a.value]
    assert len(verdicts) == 1
    score = " ".join(m.value for m in at.markdown if "Your score" in m.value)
    won = verdicts[0].startswith("Right")
    assert f"**Your score: {int(won)} / 1**" in score
    out = engine.unlearn(blobs, forget, "certified_newton", {"lam": 100.0, "epsilon": 1000.0}, draws=0)
    best = game.gaussian_ideal_accuracy(out.release, draws=6)
    assert f"best possible here {100 * best:.0f} %" in score


def test_the_learn_pages_playground_links_tell_the_stories_they_promise():
    """Each Learn link opens a valid playground state, and the state shows what the link's label says: λ small →
    the step lands on the retrained boundary; λ = 100, ε = 1000 → a narrow cloud and a game a guesser can win; the
    strong-convexity bound on logistic regression → certified and useful, the game lost at ε = 1 and won at
    ε = 1000; the MLP at ε = 1 → noise far wider than the weights (the cloud covers the plane)."""
    at = AppTest.from_file(APP, default_timeout=scaled(120))
    at.switch_page("pages/learn.py").run()
    assert not at.exception, at.exception
    links = [link.proto for link in at.get("page_link") if link.proto.page == "playground"]
    assert len(links) == 4
    stories = {}
    for link in links:
        state, errors = pstate.from_query(dict(parse_qsl(link.query_string)))
        assert errors == [], errors
        pg = engine.build_playground(state.dataset, seed=state.seed, model=state.model)
        stories[link.label.split(":")[0]] = engine.unlearn(pg, state.deleted, state.method, state.params, draws=0)
    lam = stories["See λ at work in the Playground"]
    assert lam.distance["ratio"] < 0.1
    sigma = stories["σ is the width of the noise cloud"]
    assert game.gaussian_ideal_accuracy(sigma.release, draws=6) > 0.85
    assert sigma.verdict.like_retraining
    useful = stories["Certified and useful on a convex model"]  # the playground's default bound on logreg
    assert useful.params["bound"] == "strong_convexity" and useful.certificate.status == "certified"
    assert useful.verdict.like_retraining and useful.distance["ratio"] < 0.01
    assert game.gaussian_ideal_accuracy(useful.release, draws=6) < 0.6  # ε = 1: a guesser cannot beat chance much
    state, _ = pstate.from_query({"dataset": "blobs", "model": "logreg", "deleted": "64,69,107,184",
                                  "p.epsilon": "1000"})
    won = engine.unlearn(engine.build_playground("blobs", seed=0, model="logreg"), state.deleted, state.method,
                         state.params, draws=0)
    assert game.gaussian_ideal_accuracy(won.release, draws=6) > 0.95  # ε = 1000: the game is won
    vacuous = stories["Why the Newton bound is vacuous for an MLP"]
    weights = float(vacuous.release.centre["unlearned"].norm())
    assert vacuous.sigma > 10 * weights and vacuous.verdict.destroyed
