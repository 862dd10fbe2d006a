"""Generic iterative solvers, written once over callables and ``deepinv`` linear operators.

Every solver subclasses :class:`~recon.solvers.base.IterativeSolver`: build it with the problem,
call ``run(x0)``, get ``(x, history)``; ``history.residual`` is each solver's documented stopping
quantity. Tensors of any shape (batch included, treated as one vector), real or complex. The
keywords every solver takes (``max_iter``, ``tol``, ``progress``, ``reference``, ``callback``)
are declared and validated once, by :func:`~recon.solvers.base.solver_keywords`.

========================  ==========================================================================
:class:`CG`               Hermitian PSD systems ``A x = b``; residual ``||r|| / ||b||``
:class:`CGLS`             ``min ||Ax - y||^2 + damp^2 ||x||^2``; relative normal-equation residual
:func:`solve_spd`         silent inner CG solve (wraps ``deepinv.optim.linear.conjugate_gradient``)
:class:`ADMM`             ``min f(x) + g(z), Kx = z``, pluggable x-/z-steps; Boyd's scaled residuals
:func:`quadratic_x_step`  ADMM x-step for ``1/2 ||Ax - y||^2`` by warm-started CG
:class:`NLCG`             nonlinear CG (PR+/FR/DY; Armijo/Wolfe/secant), optional projection
:class:`PDHG`             Chambolle-Pock for ``min g(x) + f(Kx)``; relative change of ``(x, y)``
:class:`CSALSA`           ``min Phi(x) s.t. ||y - Ax|| <= eps`` (ADMM); relative change of ``|x|``
========================  ==========================================================================

Example:
    With ``physics`` a ``deepinv.physics.LinearPhysics`` and ``y`` its measurements::

        from recon.solvers import CGLS
        x, hist = CGLS(physics, y, damp=0.1, tol=1e-6, max_iter=50).run()
"""

from .admm import ADMM, quadratic_x_step
from .base import History, IterativeSolver, NonFiniteError, solver_keywords
from .cg import CG, CGLS, solve_spd
from .csalsa import CSALSA, project_ball
from .nlcg import NLCG, autograd_f_and_grad
from .pdhg import PDHG, op_norm, prox_conj_from_prox, separable_prox, stack_operators

__all__ = [
    "ADMM",
    "CG",
    "CGLS",
    "CSALSA",
    "NLCG",
    "PDHG",
    "History",
    "IterativeSolver",
    "NonFiniteError",
    "autograd_f_and_grad",
    "op_norm",
    "project_ball",
    "prox_conj_from_prox",
    "quadratic_x_step",
    "separable_prox",
    "solve_spd",
    "solver_keywords",
    "stack_operators",
]
