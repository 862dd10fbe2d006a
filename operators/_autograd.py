"""The autograd bridge shared by the operators whose kernels live outside torch (numba, astra)."""

from __future__ import annotations

import torch


class ApplyLinear(torch.autograd.Function):
    """``A x`` (``adjoint=False``) or ``A^H y`` (``adjoint=True``) of ``op`` with autograd.

    ``op`` provides ``_run(data, adjoint) -> tensor`` (no autograd inside). The backward of A is
    A^H and the backward of A^H is A, each again through this function, so higher-order
    derivatives work too. For complex tensors this is torch's convention: the vector-Jacobian
    product of a linear map is its adjoint applied to the incoming (conjugate Wirtinger) gradient.
    """

    @staticmethod
    def forward(ctx, data, op, adjoint):
        ctx.op, ctx.adjoint = op, adjoint
        return op._run(data, adjoint=adjoint)

    @staticmethod
    def backward(ctx, grad):
        return ApplyLinear.apply(grad.contiguous(), ctx.op, not ctx.adjoint), None, None
