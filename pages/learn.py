"""Learn: certified unlearning for a newcomer, with calculators that call unlearn_core.certificate."""

from __future__ import annotations

import math
from pathlib import Path

import streamlit as st

from unlearn_core import certificate
from unlearn_core.errors import ConfigError

ASSETS = Path(__file__).resolve().parent.parent / "assets"

st.title("Learn: certified unlearning in ten minutes")

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
st.image(str(ASSETS / "newton_step.svg"), caption="One Newton step moves w* towards the retrained model; "
         "noise covers the remaining gap Δ.")
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
            "the sensitivity Δ, gives $(\\varepsilon, \\delta)$. The classical calibration (valid for ε < 1) is")
st.latex(r"\sigma = \frac{\Delta\,\sqrt{2\ln(1.25/\delta)}}{\varepsilon},")
st.markdown("and the **analytic** Gaussian mechanism (Balle & Wang 2018) finds the smallest σ exactly, for any ε. "
            "Now the catch: when $\\lambda_{\\min} \\le 0$, $\\Delta \\ge 2C$, so at $C = 20$, ε = 1, δ = 1e-5 the "
            "bound asks for σ ≈ 194 *per parameter* — while the weights themselves have norm ≤ 20. The worst-case "
            "certificate destroys the model; the reference code uses σ = 0.001 instead, which is **not certified "
            "by the bound**. The dashboard always shows σ_used next to σ_required and never calls such a run "
            "certified.")

st.subheader("Calculator: σ from (ε, δ, Δ)")
c1, c2, c3 = st.columns(3)
eps = c1.number_input("ε", min_value=1e-4, max_value=100.0, value=1.0, format="%g", key="learn.eps")
dlt = c2.number_input("δ", min_value=1e-15, max_value=0.5, value=1e-5, format="%g", key="learn.delta")
sens = c3.number_input("Δ (sensitivity)", min_value=0.0, value=1.0, format="%g", key="learn.sens")
try:
    s_an = certificate.sigma_analytic(epsilon=eps, delta=dlt, sensitivity=sens)
    s_cl = certificate.sigma_classical(epsilon=eps, delta=dlt, sensitivity=sens)
    m1, m2 = st.columns(2)
    m1.metric("σ analytic (Balle & Wang)", f"{s_an:.6g}")
    m2.metric("σ classical", f"{s_cl:.6g}", help="proved only for ε < 1")
    if eps >= 1:
        st.caption("The classical mechanism is proved only for ε < 1; its σ is shown for comparison.")
except ConfigError as exc:
    st.error(str(exc), icon="🚫")

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
                   icon="⚠️")
    else:
        sigma_needed = certificate.sigma_analytic(epsilon=eps, delta=dlt, sensitivity=big_delta)
        m1, m2 = st.columns(2)
        m1.metric("Δ", f"{big_delta:.6g}")
        m2.metric(f"σ required at ε={eps:g}, δ={dlt:g}", f"{sigma_needed:.6g}")
except ConfigError as exc:
    st.error(str(exc), icon="🚫")

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
st.latex(r"m(\Delta) = g^\top\Delta + \tfrac12\,\Delta^\top H \Delta + \tfrac{M}{6}\lVert\Delta\rVert^3,\qquad "
         r"(H + \alpha I)\,\Delta^* = -g,\ \ \alpha = \tfrac M2\lVert\Delta^*\rVert.")
st.markdown("The damping α is found automatically and stays finite even when $H$ has negative eigenvalues. "
            "There is no (ε, δ) certificate: the dashboard labels it **approximate (uncertified)**.")

st.header("7. How to read the Explore page")
st.markdown(
    "* **Accuracy**: the unlearned model should match the *retrained* one on forget, retain and test — a forget "
    "accuracy far *below* retraining is over-forgetting, which an attacker can also detect.\n"
    "* **Distance to retrained**: ‖w − w̃*‖; compare with the original model's distance.\n"
    "* **Certificate**: Δ, σ required and σ used; \"certified\" only when σ_used ≥ σ_required.\n"
    "* **MIA**: membership-inference AUC should be close to the retrained model's value (≈ 0.5 when nothing "
    "leaks).\n"
    "* **Time**: unlearning should be much cheaper than retraining — that is the whole point."
)
