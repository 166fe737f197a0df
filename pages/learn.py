"""Learn: certified unlearning for a newcomer, with calculators that call unlearn_core.certificate, the presets that
tell each story, and the privacy–utility frontier measured on digits."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import common
from unlearn_core import certificate, plots
from unlearn_core import formatting as fmt
from unlearn_core.errors import ConfigError
from unlearn_core.service import ui_state

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
FRONTIER_CSV = ROOT / "bench" / "results" / "frontier_digits.csv"

#: The constants of the "Why the Newton bound is vacuous" preset as its run measured them (digits, 32-32 MLP, λ = 1,
#: H = auto, 4 LiSSA repetitions): the Δ-terms calculator starts from them, so its numbers are the preset's.
VACUOUS = {"C": 20.0, "lam": 1.0, "M": 1.0, "lambda_min": -0.0792, "G": 1.0, "L": 15.63, "H": 36.41, "zeta": 0.3352,
           "p": 3466, "rho": 0.05, "reps": 4}

common.require_router()
st.title("Learn: certified unlearning in ten minutes")
STORY_ORDER = (ui_state.QUICK_DEMO, ui_state.CERTIFIED_AND_USEFUL, ui_state.NEWTON_CONVEX, ui_state.VACUOUS,
               ui_state.PAPER)
NUMBERS = {1: "One", 2: "Two", 3: "Three", 4: "Four", 5: "Five", 6: "Six", 7: "Seven"}
st.markdown(f"**{NUMBERS.get(len(STORY_ORDER), len(STORY_ORDER))} stories, one click each** — each link opens "
            "Explore with a preset; press **Run** and read the verdict at the top of the result.")
# The link is the preset's name; its story is a caption under it (a long link label was cut off at any width).
for name in STORY_ORDER:
    st.page_link("pages/explore.py", label=name, icon=":material/play_circle:",
                 query_params={"preset": ui_state.preset_slug(name)})
    st.caption(ui_state.PRESETS[name])

st.header("1. What does it mean to unlearn?")
st.markdown(
    "A model $w^* = A(D)$ was trained on a dataset $D$. Someone asks for their data $D_u$ to be removed. The "
    "**exact** answer is to retrain from scratch on what is left, $D_r = D \\setminus D_u$: the result "
    "$\\tilde w^* = A(D_r)$ never saw $D_u$. Retraining is expensive, so we look for a cheap $\\tilde w$ "
    "that is *indistinguishable* from retraining. **Certified** unlearning makes this precise, borrowing the "
    "language of differential privacy: the released model $w^-$ is $(\\varepsilon, \\delta)$-close to the "
    "(noised) retrained model, for every set $S$ of models:"
)
st.latex(r"\Pr[w^- \in S] \le e^{\varepsilon}\,\Pr[\tilde w^* + \xi \in S] + \delta, \qquad "
         r"\text{and the same with the roles swapped.}")
st.markdown("Small $\\varepsilon$ and $\\delta$ mean that no test — no membership-inference attack — can tell "
            "the two apart much better than chance.")

st.header("2. The Newton step, and why λ and C")
st.image(str(ASSETS / "newton_step.svg"), width=520)
st.caption("One Newton step moves w* towards the retrained model; noise covers the remaining gap Δ.")
st.markdown("Zhang et al. (ICML 2024) take one Newton step on the retain loss from the trained model:")
st.latex(r"\tilde w = w^* - \big(H_{w^*} + \lambda I\big)^{-1} \nabla L(w^*, D_r), \qquad "
         r"H_{w^*} = \nabla^2 L(w^*, D_r).")
st.markdown(
    "* A neural network's Hessian is **not positive definite**: its smallest eigenvalue $\\lambda_{\\min}$ is "
    "often negative. Adding a **local convex term** $\\lambda I$ makes $H + \\lambda I$ invertible once "
    "$\\lambda + \\lambda_{\\min} > 0$.\n"
    "* Training projects the weights onto a ball, $\\lVert w\\rVert \\le C$, after every step. Then "
    "$\\lVert w^* - \\tilde w^* \\rVert \\le 2C$ — the only handle a worst-case bound has on a non-convex model.\n"
    "* With an $M$-Lipschitz Hessian, the step lands within $\\Delta$ of the retrained model:"
)
st.latex(r"\lVert \tilde w - \tilde w^* \rVert \le \Delta = \frac{2C\,(MC + \lambda)}{\lambda + \lambda_{\min}}.")
st.page_link("pages/playground.py", icon=":material/touch_app:", label="See λ at work in the Playground: with a small "
             "λ the step lands on the retrained boundary (logistic regression is convex); slide λ up: it stops moving",
             query_params={"dataset": "blobs", "model": "logreg", "deleted": "64,69,107,184", "p.bound": "zhang",
                           "p.lam": "0.0001"})

st.header("3. LiSSA: the inverse Hessian without the Hessian")
st.markdown(
    "For $p$ parameters the Hessian has $p^2$ entries — impossible for real networks. LiSSA (Agarwal et al. "
    "2017) only needs Hessian-vector products on mini-batches $B_t$ of $D_r$, with a scale $H$ above the largest "
    "eigenvalue:"
)
st.latex(r"v_0 = g,\qquad v_t = g + v_{t-1} - \frac{(\nabla^2 L(w, B_t) + \lambda I)\,v_{t-1}}{H},\qquad "
         r"(H_{w^*} + \lambda I)^{-1} g \approx \frac{v_s}{H}.")
st.markdown("It converges only if $H \\ge \\lambda_{\\max}$: watch the $\\lVert v_t\\rVert$ curve on the Explore "
            "page — it should flatten, not explode. The stochastic estimate adds its own term to Δ, which holds "
            "with probability $1 - \\rho$.")

st.header("4. The Gaussian mechanism, and why the worst-case σ is large")
st.markdown("Releasing $w^- = \\tilde w + \\xi$, $\\xi \\sim \\mathcal N(0, \\sigma^2 I)$, with σ calibrated to "
            "the sensitivity Δ, gives $(\\varepsilon, \\delta)$. The classical calibration")
st.latex(r"\sigma = \frac{\Delta\,\sqrt{2\ln(1.25/\delta)}}{\varepsilon}")
FLOOR = 2 * 20.0  # Δ ≥ 2C whatever λ: the exact term tends to 2C as λ grows
SIGMA_FLOOR = certificate.sigma_analytic(epsilon=1.0, delta=1e-5, sensitivity=FLOOR)
SIGMA_FLOOR_CLASSICAL = certificate.sigma_classical(epsilon=1.0, delta=1e-5, sensitivity=FLOOR)
st.markdown(
    "is proved only for ε < 1; the **analytic** Gaussian mechanism (Balle & Wang 2018) finds the smallest σ "
    "exactly, for any ε, and is the one this tool uses. Now the catch: when $\\lambda_{\\min} \\le 0$, "
    "$\\Delta \\ge 2C$ whatever λ (the exact term below tends to 2C as λ grows), so at $C = 20$, ε = 1, "
    f"δ = 1e-5 the bound asks for σ ≥ **{SIGMA_FLOOR:.0f}** *per parameter* (analytic mechanism; the classical "
    f"formula would say {SIGMA_FLOOR_CLASSICAL:.0f}, but it is not proved at ε = 1) — while the weights themselves "
    "have norm ≤ 20. And that is the floor: the next section shows where the rest of Δ comes from. The reference "
    "code uses σ = 0.001 instead, which is **not certified by the bound**. The dashboard always shows σ_used next "
    "to σ_required and never calls such a run certified."
)

st.page_link("pages/playground.py", icon=":material/touch_app:", label="σ is the width of the noise cloud: see it in "
             "the Playground (λ = 100, ε = 1000 — then slide ε down), and play the guessing game it makes possible",
             query_params={"dataset": "blobs", "model": "logreg", "deleted": "18,53,64,69,88,89,107,134,157,184",
                           "p.bound": "zhang", "p.lam": "100", "p.epsilon": "1000"})
st.page_link("pages/playground.py", icon=":material/touch_app:", label="Certified and useful on a convex model: "
             "logistic regression's strong-convexity bound (‖∇L(w̃, D_r)‖/μ) makes σ tiny — the game is lost at ε = 1, "
             "won at ε = 1000",
             query_params={"dataset": "blobs", "model": "logreg", "deleted": "64,69,107,184"})
st.page_link("pages/playground.py", icon=":material/touch_app:", label="Why the Newton bound is vacuous for an MLP: "
             "in the Playground its noise cloud covers the whole plane",
             query_params={"dataset": "moons", "model": "mlp", "deleted": "3,9", "p.lam": "1", "p.epsilon": "1"})
st.subheader("Calculator: σ from (ε, δ, Δ)")
c1, c2, c3 = st.columns(3)
eps = c1.number_input("ε", min_value=1e-4, max_value=100.0, value=1.0, format="%g", key="learn.eps")
dlt = c2.number_input("δ", min_value=1e-15, max_value=0.5, value=1e-5, format="%g", key="learn.delta")
sens = c3.number_input("Δ (sensitivity)", min_value=0.0, value=1.0, format="%g", key="learn.sens")
try:
    s_an = certificate.sigma_analytic(epsilon=eps, delta=dlt, sensitivity=sens)
    s_cl = certificate.sigma_classical(epsilon=eps, delta=dlt, sensitivity=sens)
    m1, m2 = st.columns(2)
    m1.metric("σ analytic (Balle & Wang)", fmt.sig(s_an, 6), help="exact for every ε: the σ this tool uses")
    m2.metric("σ classical", fmt.sig(s_cl, 6) if eps < 1 else f"({fmt.sig(s_cl, 6)})",
              help="proved only for ε < 1", delta=None if eps < 1 else "not valid at ε ≥ 1", delta_color="off")
    if eps >= 1:
        st.caption("The classical mechanism is proved only for ε < 1: at this ε use the analytic σ; the classical "
                   "one is shown in brackets for comparison.")
except ConfigError as exc:
    st.error(str(exc), icon=":material/error:")

st.subheader("Calculator: Δ from (C, λ, M, λ_min)")
c1, c2, c3, c4 = st.columns(4)
C = c1.number_input("C (norm radius)", min_value=0.0, value=20.0, format="%g", key="learn.C")
lam = c2.number_input("λ (local convex term)", min_value=0.0, value=200.0, format="%g", key="learn.lam")
M = c3.number_input("M (Hessian Lipschitz)", min_value=0.0, value=1.0, format="%g", key="learn.M")
lmin = c4.number_input("λ_min", value=0.0, format="%g", key="learn.lmin")
try:
    big_delta = certificate.delta_exact(C=C, M=M, lam=lam, lambda_min=lmin)
    if math.isinf(big_delta):
        st.warning(f"λ + λ_min = {lam + lmin:g} ≤ 0: the bound does not apply (Δ = ∞) — raise λ above {-lmin:g}.",
                   icon=":material/warning:")
    else:
        sigma_needed = certificate.sigma_analytic(epsilon=eps, delta=dlt, sensitivity=big_delta)
        m1, m2 = st.columns(2)
        m1.metric("Δ", fmt.sig(big_delta, 6))
        m2.metric(f"σ required at ε={eps:g}, δ={dlt:g}", fmt.sig(sigma_needed, 6))
except ConfigError as exc:
    st.error(str(exc), icon=":material/error:")

st.subheader("Where Δ comes from: three terms, and why the LiSSA term dominates")
st.markdown(
    "Certified Newton's Δ is a sum (Zhang et al. 2024; the derivations are in docs/certified_newton.md):\n\n"
    "1. **exact** — the exact Newton step's error from the local convex term and the Hessian's Lipschitz constant, "
    "$2C(MC + \\lambda)/(\\lambda + \\lambda_{\\min})$;\n"
    "2. **non-convergence** — adds $G/(\\lambda + \\lambda_{\\min})$ when the retrained model is not a minimiser "
    "(its retain gradient is at most G);\n"
    "3. **LiSSA** — the stochastic inverse-Hessian's error, "
    "$\\big(16\\,\\kappa\\sqrt{\\ln(p/\\rho)/S_1} + 1/16\\big)\\,(2CL + G)$ with "
    "$\\kappa = H/\\zeta_{\\min}$, which holds with probability $1 - \\rho$.\n\n"
    "The LiSSA term multiplies a worst-case bound on the gradient anywhere in the C-ball ($2CL + G$, hundreds) by "
    "the sampled Hessians' condition number κ (≈ 100) and $16\\sqrt{\\ln(p/\\rho)/S_1}$ (≈ 27 for p = 3,466 "
    "parameters): ≈ 10⁶, a thousand times the exact term. The values below are the ones the *Why the Newton bound "
    "is vacuous* preset measured; change them to see which term moves. `solver=cg` or `lissa_bound=a_posteriori` "
    "replace the LiSSA term by a deterministic residual bound (often far smaller).")
c1, c2, c3, c4, c5, c6 = st.columns(6)
tC = c1.number_input("C", min_value=0.0, value=VACUOUS["C"], format="%g", key="learn.t.C")
tlam = c2.number_input("λ", min_value=0.0, value=VACUOUS["lam"], format="%g", key="learn.t.lam")
tM = c3.number_input("M", min_value=0.0, value=VACUOUS["M"], format="%g", key="learn.t.M")
tlmin = c4.number_input("λ_min", value=VACUOUS["lambda_min"], format="%g", key="learn.t.lmin")
tG = c5.number_input("G", min_value=0.0, value=VACUOUS["G"], format="%g", key="learn.t.G")
tL = c6.number_input("L", min_value=0.0, value=VACUOUS["L"], format="%g", key="learn.t.L")
c1, c2, c3, c4, c5, c6 = st.columns(6)
tH = c1.number_input("H (LiSSA scale)", min_value=1e-9, value=VACUOUS["H"], format="%g", key="learn.t.H")
tzeta = c2.number_input("ζ_min", value=VACUOUS["zeta"], format="%g", key="learn.t.zeta")
tp = c3.number_input("p (parameters)", min_value=1, value=VACUOUS["p"], step=1, key="learn.t.p")
trho = c4.number_input("ρ", min_value=1e-12, max_value=0.5, value=VACUOUS["rho"], format="%g", key="learn.t.rho")
treps = c5.number_input("S₁ (repetitions)", min_value=1, value=VACUOUS["reps"], step=1, key="learn.t.reps")
teps = c6.number_input("ε", min_value=1e-4, max_value=100.0, value=1.0, format="%g", key="learn.t.eps")
try:
    # Δ's terms and their sum by the function certified Newton's certificate uses (certificate.newton_delta).
    terms, total = certificate.newton_delta(
        C=tC, M=tM, lam=tlam, lambda_min=tlmin, G=tG,
        lissa=certificate.LissaTerm(L=tL, zeta_min=tzeta, num_params=int(tp), rho=trho, num_samples=int(treps),
                                    scale=tH))
    term_exact, term_nc, term_lissa = terms["exact"], terms["nonconvergence"], terms["lissa"]
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("exact term", fmt.sig(term_exact, 4))
    m2.metric("+ non-convergence (G)", fmt.sig(term_nc - term_exact, 4))
    m3.metric("+ LiSSA term", fmt.sig(term_lissa, 4))
    m4.metric("Δ (total)", fmt.sig(total, 4))
    if math.isfinite(total):
        sigma_total = certificate.sigma_analytic(epsilon=teps, delta=1e-5, sensitivity=total)
        st.metric(f"σ required at ε = {teps:g}, δ = 1e-5 (analytic)", fmt.sig(sigma_total, 4))
        if term_lissa > term_nc:
            st.caption(f"The LiSSA term is {term_lissa / term_nc:.0f}× the rest of Δ: it, not the Newton step, "
                       "sets σ here.")
    else:
        st.warning("A term is infinite: λ + λ_min ≤ 0 or ζ_min ≤ 0, so the bound does not apply (Δ = ∞).",
                   icon=":material/warning:")
except ConfigError as exc:
    st.error(str(exc), icon=":material/error:")

st.subheader("What certification costs: the privacy–utility frontier")
st.markdown(
    "Smaller ε means more noise, and noise costs accuracy. The chart below was measured on digits (32-32 MLP, "
    "10 % random points forgotten, 3 seeds): at each ε, each certified method's best *certified* release over a "
    "small grid of its own settings (the projection radius C₀), the retrained model dashed, the band ± 2 points "
    "around it; hover a point for its setting. Both Koloskova et al. methods stay within 2 points of retraining from "
    "ε = 0.1 on — one setting alone would not: a small C₀ shrinks the model past what a small σ can re-initialise "
    "at large ε, so the grid takes a larger one there. Certified Newton's noise destroys the MLP at every ε (the "
    "vacuous bound above). Run it on your own configuration on the Compare page (section *Privacy–utility "
    "frontier*).")
if FRONTIER_CSV.exists():
    st.plotly_chart(plots.frontier_figure(pd.read_csv(FRONTIER_CSV)), width="stretch", key="learn.frontier")
    st.caption("Reproduce: `python -m unlearn_core experiment frontier --dataset digits --model mlp --forget "
               "random:0.1 --methods noisy_finetune,output_perturbation,certified_newton --set certified_newton.lam=1 "
               "--set certified_newton.H=auto --set certified_newton.depth=500 --set certified_newton.reps=4 "
               "--set certified_newton.batch=64 --set certified_newton.G=1 --seeds 0,1,2`")

st.header("5. Noisy fine-tuning (Koloskova et al., ICML 2025)")
st.markdown("Instead of a Newton step, fine-tune on $D_r$ with **clipped** gradients and Gaussian noise. Clipping "
            "and the weight-decay contraction shrink the influence of the starting point step after step "
            "(*privacy amplification by iteration*), so after $T$ noisy steps the model is $(\\varepsilon, "
            "\\delta)$-close to retraining — then fine-tune noise-free for free (post-processing):")
st.latex(r"x_{t+1} = x_t - \gamma\big(\Pi_{C_1}(g_t) + \lambda x_t\big) + \xi_{t+1},\qquad "
         r"\xi_{t+1} \sim \mathcal N(0, \sigma^2 I).")
st.markdown("The accountant turns (ε, δ) into σ and T; the dashboard shows the paper's closed form next to a Rényi-DP "
            "accountant, because they disagree by an order of magnitude.")

st.header("6. Cubic regularisation (CureNewton, Bui et al. 2024)")
st.markdown("Instead of a hand-tuned λ, minimise the cubic model of the loss (Nesterov & Polyak):")
# The step is s (Δ is the sensitivity bound everywhere else on this page).
st.latex(r"m(s) = g^\top s + \tfrac12\, s^\top H s + \tfrac{M}{6}\lVert s\rVert^3,\qquad "
         r"(H + \alpha I)\, s^* = -g,\ \ \alpha = \tfrac M2\lVert s^*\rVert.")
st.markdown("The damping α is found automatically and stays finite even when $H$ has negative eigenvalues. "
            "There is no (ε, δ) certificate: the dashboard labels it **approximate (uncertified)**.")

st.header("7. How to read the Explore page")
st.markdown(
    "* **The verdict** (top right): one sentence and three questions — *like retraining?* (test and forget accuracy "
    "within 2 points of the retrained model, or within the sampling noise of a small set — *and* a test the "
    "original model fails: on a random forget set the original is often as close to retraining, and the verdict "
    "then says that nothing measurable was left to forget), *certified?* (a proof, under assumptions, or not; and "
    "whether the noise destroyed the model), *cost?* (unlearning against retraining time). One colour rule: green "
    "= forgets and certified by a proof, blue = short of that, yellow = one of the two fails, red = both fail or "
    "destroyed; *Why* lists the numbers behind it.\n"
    "* **Accuracy**: the unlearned model should match the *retrained* one on forget, retain and test — a forget "
    "accuracy far *below* retraining is over-forgetting, which an attacker can also detect.\n"
    "* **Distance to retrained**: ‖w − w̃*‖, read against the original model's distance; beside a noisy release it "
    "measures the noise the certificate requires (the page says so), not a failure to forget.\n"
    "* **Certificate**: Δ, σ required and σ used; \"certified\" only when every condition holds and σ_used ≥ "
    "σ_required, \"certified under assumptions\" when it rests on estimates or assumed constants.\n"
    "* **MIA**: membership-inference AUC should be close to the retrained model's value (≈ 0.5 when nothing "
    "leaks).\n"
    "* **Time**: unlearning should be much cheaper than retraining — that is the whole point; on digits retraining "
    "takes about a second, so the saving shows on MNIST (the paper's preset)."
)
