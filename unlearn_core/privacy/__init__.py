r"""The privacy maths: σ calibration of the Gaussian mechanism and the accountants of noisy fine-tuning.

========================  ==================================================================================
``gaussian``              the classical (Dwork & Roth 2014, Thm. A.1) and analytic (Balle & Wang 2018, Thm. 8)
                          Gaussian mechanism: σ from (ε, δ, Δ) and the ε a σ certifies
``accounting``            Koloskova et al. (ICML 2025): the closed forms, the Rényi-DP accountant (Mironov 2017;
                          conversion of Balle et al. 2020, Thm. 21, via Opacus), the official code's conversion
                          (K1, comparison only), model clipping's δ accountant, output perturbation
``rootfind``              the one root-finder (Brent's method, ``scipy.optimize.brentq``) every calibration uses
========================  ==================================================================================

The typed :class:`unlearn_core.certificate.Certificate` and Zhang et al.'s sensitivity bounds Δ stay in
:mod:`unlearn_core.certificate`. Import the submodules (``from unlearn_core.privacy import accounting``); this
package imports nothing on its own, so that importing the record does not import the accountants.
"""
