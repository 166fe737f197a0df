r"""Curvature on Hessian-vector products: the operator, the MLP fast path, spectra, solvers and LiSSA.

Every routine sees the regularised Hessian :math:`\nabla^2 L(w; S) + (\mathrm{wd}+\lambda)I` only through a
product built by :mod:`~unlearn_core.curvature.operators`, so the same code serves the certified Newton step
(Zhang et al. 2024), the damped Newton baseline and CureNewton's cubic sub-problem (Bui et al. 2024). Nothing
here mutates a model. One purpose per module (each imports only those above it):

========================  ==================================================================================
``mlp_hvp``               the hand-written batched HVP of plain MLPs (``MLPBatchedHVP``), LiSSA's fast path
``operators``             the one builder: batched mini-batch products, the full-data HVP, the dense Hessian
``spectrum``              Lanczos, power iteration, λ_max / λ_min over sampled mini-batch Hessians
``solvers``               CG, MINRES, the exact (dense) solve and its size refusal, the residual norm
``proof``                 a proven λ_min lower bound: the float64 dense Hessian and its Cholesky factorisation
``lissa``                 the LiSSA recursion (Agarwal, Bullins & Hazan 2017) and its diagnostics
========================  ==================================================================================
"""

from unlearn_core.curvature.lissa import LissaResult, lissa, lissa_batch_indices
from unlearn_core.curvature.mlp_hvp import MLPBatchedHVP, make_mlp_batched_hvp
from unlearn_core.curvature.operators import (
    HVP,
    HVP_BACKENDS,
    BatchedHVP,
    hessian_matrix,
    make_data_hvp,
    make_lissa_hvp,
    softmax_regression_hessian,
    softmax_regression_layer,
)
from unlearn_core.curvature.proof import (
    DENSE_PROOF_WORK,
    CurvatureProof,
    cholesky_in_budget,
    dense_hessian64,
    proven_lambda_min,
)
from unlearn_core.curvature.solvers import (
    DENSE_MAX_PARAMS,
    CGResult,
    conjugate_gradient,
    dense_refusal,
    exact_inverse_hvp,
    minres_solve,
    regularised_residual_norm,
)
from unlearn_core.curvature.spectrum import (
    EigenEstimate,
    extreme_eigenvalues,
    lanczos,
    power_iteration,
    sampled_lambda_max,
    sampled_lambda_min,
)

__all__ = [
    "DENSE_MAX_PARAMS",
    "DENSE_PROOF_WORK",
    "HVP",
    "HVP_BACKENDS",
    "BatchedHVP",
    "CGResult",
    "CurvatureProof",
    "EigenEstimate",
    "LissaResult",
    "MLPBatchedHVP",
    "cholesky_in_budget",
    "conjugate_gradient",
    "dense_hessian64",
    "dense_refusal",
    "exact_inverse_hvp",
    "extreme_eigenvalues",
    "hessian_matrix",
    "lanczos",
    "lissa",
    "lissa_batch_indices",
    "make_data_hvp",
    "make_lissa_hvp",
    "make_mlp_batched_hvp",
    "minres_solve",
    "power_iteration",
    "proven_lambda_min",
    "regularised_residual_norm",
    "sampled_lambda_max",
    "sampled_lambda_min",
    "softmax_regression_hessian",
    "softmax_regression_layer",
]
