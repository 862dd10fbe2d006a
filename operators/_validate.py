"""Input validation shared by every operator, solver and method.

Each check raises a ``TypeError`` (wrong type / dtype) or ``ValueError`` (wrong shape, value or
option) whose message names the argument, what was received and what was expected. Validation
happens once, at the public edge; inner loops never re-check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch

REAL_DTYPES = (torch.float32, torch.float64)
COMPLEX_DTYPES = (torch.complex64, torch.complex128)


def check_tensor(name: str, value: object, *, ndim: int | None = None, real: bool = True) -> torch.Tensor:
    """Check that ``value`` is a finite torch tensor of a float dtype.

    Args:
        name: argument name used in the error message.
        value: the object received.
        ndim: required number of dimensions, or ``None`` for any.
        real: if True require float32/float64, else accept complex64/complex128 as well.

    Returns:
        The tensor, unchanged.
    """
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, received {type(value).__name__}")
    allowed = REAL_DTYPES if real else REAL_DTYPES + COMPLEX_DTYPES
    if value.dtype not in allowed:
        names = ", ".join(str(d).replace("torch.", "") for d in allowed)
        raise TypeError(f"{name}: expected dtype in ({names}), received {str(value.dtype).replace('torch.', '')}")
    if ndim is not None and value.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D tensor, received shape {tuple(value.shape)}")
    # A finite sum proves every entry finite (NaN/Inf propagate) in one cheap reduction; only a
    # non-finite sum (or an overflowing one) pays for the element-wise test.
    if not bool(torch.isfinite(value.sum())) and not bool(torch.isfinite(value).all()):
        n_bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"{name}: expected finite values, received {n_bad} NaN/Inf entries")
    return value


def check_shape(name: str, value: torch.Tensor, expected: Sequence[int | None]) -> torch.Tensor:
    """Check a tensor's shape against ``expected`` (``None`` entries match any size)."""
    shape = tuple(value.shape)
    ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected, shape))
    if not ok:
        exp = "(" + ", ".join("*" if e is None else str(e) for e in expected) + ")"
        raise ValueError(f"{name}: expected shape {exp}, received {shape}")
    return value


def check_option(name: str, value: object, allowed: Iterable[str]) -> str:
    """Check that ``value`` is one of the string options in ``allowed``."""
    allowed = tuple(allowed)
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}: expected one of {allowed}, received {value!r}")
    return value


def check_positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    """Check that ``value`` is a finite real number > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a real number, received {type(value).__name__}")
    v = float(value)
    bad = not (v == v and abs(v) != float("inf")) or (v < 0 if allow_zero else v <= 0)
    if bad:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, received {value!r}")
    return v


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """Check that ``value`` is an integer (not a bool) >= ``minimum``; return it as ``int``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, received {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, received {value!r}")
    return int(value)
