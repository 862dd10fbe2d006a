"""Procedural, seeded phantoms (no data set is ever downloaded): 2D CT images, dynamic (2D + time)
objects, 3D MIMO scenes, qMRI brains, layered velocity models (full-waveform inversion).

Seed convention: demo / test images draw their seeds from :data:`TEST_SEEDS`; every training
script must use seeds below ``TEST_SEEDS.start`` so that training and test images never overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

#: Seeds reserved for demo and regression-test images. Training data use seeds below 900_000.
TEST_SEEDS = range(900_000, 1_000_000)


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size: expected an integer >= 8, received {size!r}")
    return size


def _check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, received {seed!r}")
    return int(seed)


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an integer >= 1, received {n!r}")
    return n


def _segment_distance(xx: np.ndarray, yy: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Distance from the points (xx, yy) to the segment p0 -> p1 (same shape as ``xx``)."""
    d = p1 - p0
    s = np.clip(((xx - p0[0]) * d[0] + (yy - p0[1]) * d[1]) / (d @ d), 0.0, 1.0)
    return np.hypot(xx - p0[0] - s * d[0], yy - p0[1] - s * d[1])


def _as_tensor(img: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).to(dtype)[None, None]


def _pixel_centres(size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(yy, xx)``, each (N, N): the pixel centres in normalised coordinates (-1, 1), rows (y) first."""
    t = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    yy, xx = np.meshgrid(t, t, indexing="ij")
    return yy, xx


def shepp_logan(size: int = 256, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The modified Shepp-Logan phantom shipped by scikit-image, resampled to ``size``.

    Args:
        size: image side N in pixels.
        dtype: torch float dtype of the result.

    Returns:
        Tensor of shape (1, 1, N, N) with values in [0, 1].

    Example:
        >>> x = shepp_logan(128)
    """
    size = _check_size(size)
    img = resize(shepp_logan_phantom(), (size, size), order=1, anti_aliasing=True)
    return _as_tensor(np.clip(img, 0.0, 1.0), dtype)


def coule_like(size: int = 256, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A COULE-like image: random overlapping ellipses and thick line segments.

    The image is piecewise constant in [0, 1]: shapes are painted one after another on a zero
    background, each new shape overwriting what lies under it, so overlaps create new constant
    regions. 5-12 ellipses (semi-axes 5-35 % of the width, intensity 0.1-1) are followed by 1-3
    thick segments (width 1-3 % of the side, intensity 0.1-1). Deterministic given ``seed``.

    Args:
        size: image side N in pixels.
        seed: seed of the numpy generator; see :data:`TEST_SEEDS` for the reserved range.
        dtype: torch float dtype of the result.

    Returns:
        Tensor of shape (1, 1, N, N).

    Example:
        >>> x = coule_like(256, seed=TEST_SEEDS[0])
    """
    size = _check_size(size)
    rng = np.random.default_rng(_check_seed(seed))
    yy, xx = _pixel_centres(size)
    img = np.zeros((size, size))
    for _ in range(rng.integers(5, 13)):
        cx, cy = rng.uniform(-0.6, 0.6, 2)
        a, b = rng.uniform(0.1, 0.7, 2)
        phi = rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(phi) + (yy - cy) * np.sin(phi)
        v = -(xx - cx) * np.sin(phi) + (yy - cy) * np.cos(phi)
        img[(u / a) ** 2 + (v / b) ** 2 <= 1.0] = rng.uniform(0.1, 1.0)
    for _ in range(rng.integers(1, 4)):
        p0, p1 = rng.uniform(-0.8, 0.8, (2, 2))
        half_width = rng.uniform(0.01, 0.03) * 2.0
        img[_segment_distance(xx, yy, p0, p1) <= half_width] = rng.uniform(0.1, 1.0)
    return _as_tensor(img, dtype)


def coule_like_batch(n: int, size: int = 256, first_seed: int = TEST_SEEDS[0], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``n`` COULE-like images with seeds ``first_seed, first_seed + 1, ...``; shape (n, 1, N, N)."""
    n = _check_n(n)
    return torch.cat([coule_like(size, first_seed + i, dtype) for i in range(n)])


def photo_phantom(photo: torch.Tensor | np.ndarray, size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A photograph as a 2D attenuation map: centre square crop, resized to ``size`` (bilinear,
    anti-aliased), min-max scaled to [0, 1].

    Args:
        photo: grayscale image, (H, W) array or (1, 1, H, W) / (H, W) tensor, real and finite.
        size: output side in pixels.
        dtype: output dtype.

    Returns:
        (1, 1, size, size) tensor in [0, 1] (all zeros for a constant photograph).

    Example:
        >>> photo_phantom(torch.rand(1, 1, 180, 240), 256).shape
        torch.Size([1, 1, 256, 256])
    """
    size = _check_size(size)
    img = photo.detach().cpu().numpy() if isinstance(photo, torch.Tensor) else np.asarray(photo)
    if img.ndim == 4 and img.shape[:2] == (1, 1):
        img = img[0, 0]
    if img.ndim != 2 or min(img.shape) < 2 or not np.isfinite(img).all():
        raise ValueError(f"photo: expected a finite (H, W) or (1, 1, H, W) image with H, W >= 2, received shape {img.shape}")
    side = min(img.shape)
    top, left = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
    img = resize(img[top : top + side, left : left + side].astype(np.float64), (size, size), order=1, anti_aliasing=True)
    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
    return _as_tensor(img, dtype)


def _convex_polygon(xx: np.ndarray, yy: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Points (xx, yy) inside the convex polygon of ``vertices`` (V, 2), listed counter-clockwise."""
    inside = np.ones(xx.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        inside &= (x1 - x0) * (yy - y0) - (y1 - y0) * (xx - x0) >= 0.0
    return inside


def rock_like(size: int = 256, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""A rock-core-like section: Voronoi grains with bright inclusions, dark pores and thin cracks.

    A family that no shipped network is trained on (keep it out of every training recipe: it is
    one of the held-out families of the robustness grid ``benchmarks/robustness.py``). In
    normalised coordinates :math:`[-1, 1]^2`, painted in this order on a zero background:

    * the section: the disc :math:`r \le r_0 (1 + \sum_{k} a_k \sin(k\theta + \varphi_k))` with
      :math:`r_0 \sim U[0.75, 0.9]` and three harmonics of orders 2-6, :math:`a_k \sim U[0.01, 0.04]`;
    * 8-30 grains: the Voronoi cells of points uniform in :math:`[-0.9, 0.9]^2`, each of one value
      in 0.3-0.8;
    * 1-4 bright inclusions (0.85-1): convex polygons of 3-7 vertices on an ellipse of
      semi-axes 0.04-0.15;
    * 5-24 pores (0-0.1): discs of radius 0.01-0.04;
    * 1-4 cracks (0-0.05): polylines of 3-6 segments of length 0.1-0.35 turning by up to
      0.6 rad at each joint, 1-2 pixels wide at every ``size``;
    * a smooth texture: :math:`0.02\text{-}0.05\, f(p)` added inside the section, :math:`f` a sum of
      4 random plane cosines of wavelength >= 2/3 (a third of the field of view) with
      :math:`\max |f| = 1`.

    The result is clipped to [0, 1]: piecewise constant up to the texture. Deterministic given
    ``seed`` (numpy ``default_rng(seed)``).

    Args:
        size: image side N in pixels (>= 8).
        seed: seed of the numpy generator; see :data:`TEST_SEEDS` for the reserved range.
        dtype: torch float dtype of the result.

    Returns:
        Tensor of shape (1, 1, N, N), values in [0, 1].

    Example:
        >>> x = rock_like(256, seed=TEST_SEEDS[0])
    """
    size = _check_size(size)
    rng = np.random.default_rng(_check_seed(seed))
    yy, xx = _pixel_centres(size)
    theta, radius = np.arctan2(yy, xx), np.hypot(xx, yy)
    r0, orders = rng.uniform(0.75, 0.9), rng.choice(np.arange(2, 7), 3, replace=False)
    outline = r0 * (1.0 + sum(rng.uniform(0.01, 0.04) * np.sin(k * theta + rng.uniform(0.0, 2.0 * np.pi)) for k in orders))
    section = radius <= outline

    centres = rng.uniform(-0.9, 0.9, (rng.integers(8, 31), 2))
    nearest = np.argmin((xx[..., None] - centres[:, 0]) ** 2 + (yy[..., None] - centres[:, 1]) ** 2, axis=-1)
    img = rng.uniform(0.3, 0.8, len(centres))[nearest]
    for _ in range(rng.integers(1, 5)):
        (cx, cy), (a, b), tilt = rng.uniform(-0.6, 0.6, 2), rng.uniform(0.04, 0.15, 2), rng.uniform(0.0, np.pi)
        angle = np.sort(rng.uniform(0.0, 2.0 * np.pi, rng.integers(3, 8)))
        u, v = a * np.cos(angle), b * np.sin(angle)
        vertices = np.stack([cx + u * np.cos(tilt) - v * np.sin(tilt), cy + u * np.sin(tilt) + v * np.cos(tilt)], axis=-1)
        img[_convex_polygon(xx, yy, vertices)] = rng.uniform(0.85, 1.0)
    for _ in range(rng.integers(5, 25)):
        (cx, cy), r = rng.uniform(-0.7, 0.7, 2), rng.uniform(0.01, 0.04)
        img[np.hypot(xx - cx, yy - cy) <= r] = rng.uniform(0.0, 0.1)
    pixel = 2.0 / size
    for _ in range(rng.integers(1, 5)):
        point, heading = rng.uniform(-0.6, 0.6, 2), rng.uniform(0.0, 2.0 * np.pi)
        half_width, value = rng.uniform(0.5, 1.0) * pixel, rng.uniform(0.0, 0.05)
        for _ in range(rng.integers(3, 7)):
            heading += rng.uniform(-0.6, 0.6)
            step = rng.uniform(0.1, 0.35) * np.array([np.cos(heading), np.sin(heading)])
            img[_segment_distance(xx, yy, point, point + step) <= half_width] = value
            point = point + step
    img = img + rng.uniform(0.02, 0.05) * _smooth_field(rng, 3.0 * xx, 3.0 * yy)
    return _as_tensor(np.clip(np.where(section, img, 0.0), 0.0, 1.0), dtype)


#: Kinds of :func:`dynamic_object`.
DYNAMIC_KINDS = ("coule", "shepp_logan", "cardiac", "rock")
_STATIC_KINDS = {"coule": coule_like, "rock": rock_like}  # seeded static images that dynamic_object warps
_WARP_GRID = 6  # control points per side of the piecewise-affine deformation of dynamic_object


def _grid_triangle_weights(size: int, n_grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Piecewise-linear interpolation from a square control grid to the pixels of an N x N image.

    The grid has ``n_grid`` x ``n_grid`` nodes (row-major) at pixel coordinates
    ``linspace(-1, N, n_grid)`` along rows and columns, so every pixel centre lies strictly
    inside it; each cell is split along its anti-diagonal into two triangles, on which the
    interpolant is linear.

    Returns:
        ``(nodes, weights)``, each (N * N, 3): the value at pixel ``k`` (row-major) is
        ``sum_i weights[k, i] * values[nodes[k, i]]`` (barycentric weights, >= 0, summing to 1).
    """
    coord = (np.arange(size) + 1.0) * (n_grid - 1) / (size + 1.0)  # pixel index -> grid coordinate
    cell = np.minimum(coord.astype(np.int64), n_grid - 2)
    row, col = np.meshgrid(cell, cell, indexing="ij")
    u, v = np.meshgrid(coord - cell, coord - cell, indexing="ij")
    n00, n10, n01, n11 = (
        (row + dr) * n_grid + (col + dc) for dr, dc in ((0, 0), (1, 0), (0, 1), (1, 1))
    )  # fmt: skip
    lower = (u + v <= 1.0)[..., None]
    nodes = np.where(lower, np.stack([n00, n10, n01], -1), np.stack([n11, n01, n10], -1))
    weights = np.where(lower, np.stack([1.0 - u - v, u, v], -1), np.stack([u + v - 1.0, 1.0 - u, 1.0 - v], -1))
    return nodes.reshape(-1, 3), weights.reshape(-1, 3)


def _soft_ellipse(u: np.ndarray, v: np.ndarray, a: float, b: float, pixel: float) -> np.ndarray:
    """Coverage in [0, 1] of the centred ellipse with semi-axes a (along u), b (along v).

    The edge is a linear ramp about one pixel (``pixel``, in the units of u, v) wide, so an edge
    that moves by a fraction of a pixel changes the image by a fraction of its contrast.
    """
    rho = np.hypot(u / a, v / b)
    return np.clip(0.5 + (1.0 - rho) * min(a, b) / pixel, 0.0, 1.0)


def _paint(img: np.ndarray, coverage: np.ndarray, value: float) -> np.ndarray:
    """Paint ``value`` over ``img`` where ``coverage`` is 1, blending linearly where it is fractional."""
    return img + coverage * (value - img)


def _cardiac_frames(size: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """The beating cardiac-like slices of :func:`dynamic_object` before the warp, (P, N, N) in [0, 1]."""
    yy, xx = _pixel_centres(size)  # rows (yy) grow towards the back (bottom of the image)
    pixel = 2.0 / size
    a_torso, b_torso, cy = rng.uniform(0.80, 0.90), rng.uniform(0.60, 0.70), rng.uniform(-0.05, 0.05)
    static = _paint(np.zeros((size, size)), _soft_ellipse(xx, yy - cy, a_torso, b_torso, pixel), rng.uniform(0.25, 0.35))
    lung = rng.uniform(0.02, 0.08)
    for side in (-1.0, 1.0):
        cover = _soft_ellipse(xx - side * 0.5 * a_torso, yy - cy, 0.3 * a_torso, 0.7 * b_torso, pixel)
        static = _paint(static, cover, lung)
    static = _paint(static, _soft_ellipse(xx, yy - cy - 0.75 * b_torso, 0.07, 0.07, pixel), rng.uniform(0.7, 0.85))
    hx, hy = rng.uniform(0.0, 0.1), cy + rng.uniform(-0.1, 0.0)
    r0, swing, wall = rng.uniform(0.12, 0.16), rng.uniform(0.15, 0.25), rng.uniform(0.05, 0.07)
    cycles, phase = rng.uniform(1.0, 2.0), rng.uniform(0.0, 2.0 * np.pi)
    rv, myo = rng.uniform(0.75, 0.9), rng.uniform(0.5, 0.6)
    frames = np.empty((n_frames, size, size))
    for k in range(n_frames):
        r_in = r0 * (1.0 + swing * np.sin(2.0 * np.pi * cycles * k / n_frames + phase))
        r_out = np.sqrt(r_in**2 + wall * (2.0 * r0 + wall))  # the wall keeps its area while it beats
        img = _paint(static, _soft_ellipse(xx - hx + 0.9 * r_out, yy - hy, 0.55 * r_out, 0.8 * r_out, pixel), rv)
        img = _paint(img, _soft_ellipse(xx - hx, yy - hy, r_out, r_out, pixel), myo)
        frames[k] = _paint(img, _soft_ellipse(xx - hx, yy - hy, r_in, r_in, pixel), 1.0)
    return frames


def dynamic_object(
    size: int = 128,
    n_frames: int = 32,
    seed: int = TEST_SEEDS[0],
    kind: str = "coule",
    *,
    max_shift: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    r"""A dynamic object: P frames of an image warped by a smooth, time-varying piecewise-affine map.

    Frame :math:`t = 0, \dots, P-1` is :math:`f_t(p) = g_t(p - \delta_t(p))`, bilinearly
    interpolated (zero outside the image). The displacement :math:`\delta_t` is linear on the
    triangles of a 6 x 6 grid of control points spanning the image (each square cell split along a
    diagonal; the outer ring of points just outside the image, where :math:`\delta_t = 0`), so
    :math:`p \mapsto p - \delta_t(p)` is a piecewise-affine map. Each of the 16 inner points
    :math:`c_j` moves sinusoidally,

    .. math::  \delta_t(c_j) = a_j \sin(2\pi \nu_j t / P + \varphi_j),

    with :math:`a_j \sim U[-s, s]^2` (pixels, :math:`s` = ``max_shift``), :math:`\nu_j \sim U[0.5, 1.5]`
    cycles over the sequence and :math:`\varphi_j \sim U[0, 2\pi)`: frame ``t`` shows at
    :math:`c_j` what :math:`g_t` has at :math:`c_j - \delta_t(c_j)`, and consecutive frames
    differ by :math:`O(s / P)` pixels of motion. The image :math:`g_t` depends on ``kind``:

    * ``"coule"``: :func:`coule_like` ``(size, seed)``, the same for every frame;
    * ``"rock"``: :func:`rock_like` ``(size, seed)``, the same for every frame (a family no shipped
      network is trained on);
    * ``"shepp_logan"``: :func:`shepp_logan` ``(size)``, the same for every frame (only the warp is seeded);
    * ``"cardiac"``: a torso ellipse (0.25-0.35) with two dark lungs, a bright spine disc and a
      beating heart: a left-ventricle blood pool (1.0) of radius
      :math:`r_0 (1 + \kappa \sin(2\pi \nu t / P + \phi))` (:math:`r_0` 6-8 % of the side,
      :math:`\kappa` 0.15-0.25, :math:`\nu` 1-2 beats over the sequence) in a myocardium ring
      (0.5-0.6) of constant area, and a right-ventricle ellipse (0.75-0.9) beside it that scales
      with it; edges are one-pixel linear ramps so sub-pixel beats change the image smoothly. The
      warp then adds a breathing-like deformation.

    Deterministic given the arguments: the warp draws from ``numpy.random.default_rng([seed, 1])``
    and the cardiac shapes from ``default_rng([seed, 2])``, independent of :func:`coule_like`'s draw.

    Args:
        size: image side N in pixels (>= 8).
        n_frames: number of frames P (>= 1).
        seed: seed of the object and of its motion; demos use :data:`TEST_SEEDS`, training seeds below it.
        kind: ``"coule"``, ``"rock"``, ``"shepp_logan"`` or ``"cardiac"``.
        max_shift: largest displacement of a control point along each axis, pixels; default
            ``size / 32`` (4 pixels at N = 128). At most a fifth of the control-point spacing,
            ``(size + 1) / 25``, so the map stays one-to-one (the Jacobian determinant of
            :math:`p - \delta_t(p)` is at least 0.2 on every triangle).
        dtype: torch float dtype of the result.

    Returns:
        Frames on the channel axis, shape (1, P, N, N), values in [0, 1].

    Example:
        >>> x = dynamic_object(128, n_frames=64, seed=TEST_SEEDS[0])  # (1, 64, 128, 128)
        >>> heart = dynamic_object(96, n_frames=32, kind="cardiac")
    """
    from scipy.ndimage import map_coordinates  # noqa: PLC0415

    size = _check_size(size)
    seed = _check_seed(seed)
    if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
        raise ValueError(f"n_frames: expected an integer >= 1, received {n_frames!r}")
    if not isinstance(kind, str) or kind not in DYNAMIC_KINDS:
        raise ValueError(f"kind: expected one of {DYNAMIC_KINDS}, received {kind!r}")
    limit = (size + 1.0) / (_WARP_GRID - 1) / 5.0
    max_shift = size / 32.0 if max_shift is None else max_shift
    if isinstance(max_shift, bool) or not isinstance(max_shift, (int, float)) or not 0.0 <= max_shift <= limit:
        raise ValueError(f"max_shift: expected a number in [0, {limit:.3g}] pixels for size {size}, received {max_shift!r}")

    if kind == "cardiac":
        images = _cardiac_frames(size, n_frames, np.random.default_rng([seed, 2]))
    else:
        static = shepp_logan(size, torch.float64) if kind == "shepp_logan" else _STATIC_KINDS[kind](size, seed, torch.float64)
        images = np.broadcast_to(static[0, 0].numpy(), (n_frames, size, size))
    rng = np.random.default_rng([seed, 1])
    n_inner = (_WARP_GRID - 2) ** 2
    amp = rng.uniform(-max_shift, max_shift, (n_inner, 2))  # (row, column) pixels
    cycles = rng.uniform(0.5, 1.5, (n_inner, 1))
    phase = rng.uniform(0.0, 2.0 * np.pi, (n_inner, 1))
    nodes, weights = _grid_triangle_weights(size, _WARP_GRID)
    pixels = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij")).reshape(2, -1).astype(np.float64)
    node_shift = np.zeros((_WARP_GRID, _WARP_GRID, 2))
    frames = np.empty((n_frames, size, size))
    for t in range(n_frames):
        inner_shift = amp * np.sin(2.0 * np.pi * cycles * t / n_frames + phase)
        node_shift[1:-1, 1:-1] = inner_shift.reshape(_WARP_GRID - 2, _WARP_GRID - 2, 2)
        shift = np.einsum("kn,knd->dk", weights, node_shift.reshape(-1, 2)[nodes])  # (2, N * N)
        source = map_coordinates(images[t], pixels - shift, order=1, mode="constant", cval=0.0)
        frames[t] = source.reshape(size, size)
    return _as_tensor(np.clip(frames, 0.0, 1.0), dtype)[0]


#: Default MIMO scene grid (Nx, Ny, Nz): x, y in [-0.15, 0.15] m, z in [0.35, 0.65] m (Oral & Oktem).
MIMO_SCENE_SHAPE = (25, 25, 49)

#: Letter outlines of the plates in :func:`mimo_scene`: strokes ((u0, v0), (u1, v1)) in the box [-1, 1]^2.
MIMO_LETTERS: dict[str, tuple[tuple[tuple[float, float], tuple[float, float]], ...]] = {
    "T": (((-1, 1), (1, 1)), ((0, 1), (0, -1))),
    "L": (((-1, 1), (-1, -1)), ((-1, -1), (1, -1))),
    "E": (((-1, 1), (-1, -1)), ((-1, 1), (1, 1)), ((-1, 0), (0.6, 0)), ((-1, -1), (1, -1))),
    "F": (((-1, 1), (-1, -1)), ((-1, 1), (1, 1)), ((-1, 0), (0.6, 0))),
    "H": (((-1, 1), (-1, -1)), ((1, 1), (1, -1)), ((-1, 0), (1, 0))),
    "X": (((-1, 1), (1, -1)), ((-1, -1), (1, 1))),
    "U": (((-1, 1), (-1, -1)), ((1, 1), (1, -1)), ((-1, -1), (1, -1))),
}
_LETTER_ASPECT = 0.8  # letter width / height


def _check_shape3(shape: object) -> tuple[int, int, int]:
    ok = isinstance(shape, (tuple, list)) and len(shape) == 3
    ok = ok and all(not isinstance(n, bool) and isinstance(n, int) and n >= 8 for n in shape)
    if not ok:
        raise ValueError(f"shape: expected 3 integers >= 8 (Nx, Ny, Nz), received {shape!r}")
    return tuple(shape)


def mimo_scene(
    shape: tuple[int, int, int] = MIMO_SCENE_SHAPE, seed: int = 0, dtype: torch.dtype = torch.complex64
) -> torch.Tensor:
    r"""A random extended 3D target with random phase, for near-field MIMO imaging.

    The scene is :math:`x(p) = m(p) e^{j\theta(p)}` with i.i.d. phases
    :math:`\theta(p) \sim U[0, 2\pi)` and a piecewise-constant magnitude :math:`m` made of 1-4
    objects on an exactly zero background. Each object has a constant magnitude in (0.2, 1];
    where objects overlap the larger magnitude wins, so max |x| lies in (0.2, 1]. Coordinates are
    normalised to (-1, 1) along each axis (the default grid spans 0.3 m along each axis), rotations
    are about z, and each object is one of (equally likely):

    * an ellipsoid: centre in [-0.5, 0.5]^3, semi-axes 0.15-0.45, rotated about z;
    * a box: centre in [-0.5, 0.5]^3, half-sides 0.1-0.4, rotated about z;
    * a letter plate: one of :data:`MIMO_LETTERS` drawn with strokes of half-width 15 % of the
      letter's half-height (0.3-0.6), width/height 0.8, rotated in the x-y plane, lying entirely
      inside the x-y field of view, one or two voxels thick in z, in the middle half of the z range.

    Sizes are floored at one voxel spacing, so every object covers at least one voxel on any grid.
    Deterministic given ``seed``.

    Args:
        shape: grid (Nx, Ny, Nz), each >= 8.
        seed: seed of the numpy generator; demos use :data:`TEST_SEEDS`, training seeds below it.
        dtype: torch.complex64 or torch.complex128.

    Returns:
        Tensor of shape (1, 1, Nx, Ny, Nz) of ``dtype``.

    Example:
        >>> x = mimo_scene(seed=TEST_SEEDS[0])  # (1, 1, 25, 25, 49) complex64
        >>> m = x.abs()
    """
    nx, ny, nz = _check_shape3(shape)
    seed = _check_seed(seed)
    if dtype not in (torch.complex64, torch.complex128):
        raise TypeError(f"dtype: expected torch.complex64 or torch.complex128, received {dtype!r}")
    rng = np.random.default_rng(seed)
    h_xy, h_z = 2.0 / min(nx, ny), 2.0 / nz  # largest voxel spacings in normalised units
    xx, yy, zz = np.meshgrid(*[(np.arange(n) + 0.5) / n * 2.0 - 1.0 for n in (nx, ny, nz)], indexing="ij")
    mag = np.zeros((nx, ny, nz))
    for _ in range(rng.integers(1, 5)):
        value = 1.0 - rng.uniform(0.0, 0.8)  # in (0.2, 1]
        kind = rng.integers(3)
        phi = rng.uniform(0.0, np.pi if kind < 2 else 2.0 * np.pi)
        if kind < 2:
            c = rng.uniform(-0.5, 0.5, 3)
            low, high = (0.15, 0.45) if kind == 0 else (0.1, 0.4)
            a = np.maximum(rng.uniform(low, high, 3), [h_xy, h_xy, h_z])
            u = (xx - c[0]) * np.cos(phi) + (yy - c[1]) * np.sin(phi)
            v = -(xx - c[0]) * np.sin(phi) + (yy - c[1]) * np.cos(phi)
            w = zz - c[2]
            if kind == 0:
                mask = (u / a[0]) ** 2 + (v / a[1]) ** 2 + (w / a[2]) ** 2 <= 1.0
            else:
                mask = (np.abs(u) <= a[0]) & (np.abs(v) <= a[1]) & (np.abs(w) <= a[2])
        else:
            strokes = MIMO_LETTERS[rng.choice(sorted(MIMO_LETTERS))]
            half = rng.uniform(0.3, 0.6)
            radius = half * np.hypot(_LETTER_ASPECT, 1.0)  # the letter lies in this disc around its centre
            c = rng.uniform(-(1.0 - radius), 1.0 - radius, 2)
            thick = int(rng.integers(1, 3))
            k0 = int(rng.integers(nz // 4, nz - nz // 4 - thick + 1))
            rot = np.array([[np.cos(phi), -np.sin(phi)], [np.sin(phi), np.cos(phi)]])
            scale = np.array([_LETTER_ASPECT * half, half])
            plane_x, plane_y = xx[:, :, 0], yy[:, :, 0]
            dist = np.min(
                [_segment_distance(plane_x, plane_y, c + rot @ (scale * p0), c + rot @ (scale * p1)) for p0, p1 in strokes],
                axis=0,
            )
            mask = np.zeros((nx, ny, nz), dtype=bool)
            mask[:, :, k0 : k0 + thick] = (dist <= max(0.15 * half, h_xy))[:, :, None]
        mag[mask] = np.maximum(mag[mask], value)
    phase = rng.uniform(0.0, 2.0 * np.pi, (nx, ny, nz))
    return _as_tensor(mag * np.exp(1j * phase), dtype)


def mimo_scene_batch(
    n: int,
    shape: tuple[int, int, int] = MIMO_SCENE_SHAPE,
    first_seed: int = TEST_SEEDS[0],
    dtype: torch.dtype = torch.complex64,
) -> torch.Tensor:
    """``n`` MIMO scenes with seeds ``first_seed, first_seed + 1, ...``; shape (n, 1, Nx, Ny, Nz).

    Example:
        >>> x = mimo_scene_batch(4, first_seed=0)  # training scenes: seeds below TEST_SEEDS.start
    """
    n = _check_n(n)
    return torch.cat([mimo_scene(shape, first_seed + i, dtype) for i in range(n)])


class QMRITissue(NamedTuple):
    """Nominal ~3T values of one tissue class of :func:`qmri_brain`."""

    name: str
    t1_ms: float
    t2_ms: float
    pd: float  # proton density |M0|, arbitrary units (CSF = 1)


#: Tissue classes of :func:`qmri_brain` by label (0 is background). CSF T2 takes 1500 ms from the
#: "1000+ ms" of the spec; proton densities are relative to CSF.
QMRI_TISSUES: dict[int, QMRITissue] = {
    1: QMRITissue("white matter", 830.0, 80.0, 0.69),
    2: QMRITissue("grey matter", 1330.0, 110.0, 0.80),
    3: QMRITissue("CSF", 4000.0, 1500.0, 1.00),
    4: QMRITissue("fat", 380.0, 130.0, 0.90),
}

#: Largest relative deviation of T1 and T2 from their nominal tissue values in :func:`qmri_brain`.
QMRI_VARIATION = 0.05

#: Largest amplitude (rad) of the smooth M0 phase of :func:`qmri_brain`.
QMRI_MAX_PHASE = np.pi / 2


@dataclass(frozen=True)
class QMRIPhantom:
    """A quantitative-MRI phantom: tissue labels, relaxation-time maps and complex proton density.

    Every field has shape (1, 1, N, N); the maps are 0 outside the tissue mask.

    Attributes:
        labels: int64 labels, 0 background and the keys of :data:`QMRI_TISSUES` (1 white matter,
            2 grey matter, 3 CSF, 4 fat).
        t1: longitudinal relaxation time T1 in ms, real dtype.
        t2: transverse relaxation time T2 in ms, real dtype.
        m0: complex proton density (complex64 for float32 maps, complex128 for float64), arbitrary units.
        mask: bool tissue mask ``labels > 0``, where errors are evaluated.
    """

    labels: torch.Tensor
    t1: torch.Tensor
    t2: torch.Tensor
    m0: torch.Tensor
    mask: torch.Tensor

    def _rate(self, time_ms: torch.Tensor) -> torch.Tensor:
        rate = torch.zeros_like(time_ms)
        rate[self.mask] = 1000.0 / time_ms[self.mask]
        return rate

    def r1(self) -> torch.Tensor:
        """Longitudinal relaxation rate R1 = 1000 / T1 in 1/s, 0 outside the mask; shape (1, 1, N, N)."""
        return self._rate(self.t1)

    def r2(self) -> torch.Tensor:
        """Transverse relaxation rate R2 = 1000 / T2 in 1/s, 0 outside the mask; shape (1, 1, N, N)."""
        return self._rate(self.t2)


def _ellipse(u: np.ndarray, v: np.ndarray, a: float, b: float, angle: float = 0.0) -> np.ndarray:
    """Points (u, v) inside the centred ellipse with semi-axes a (along u), b (along v), rotated by ``angle``."""
    c, s = np.cos(angle), np.sin(angle)
    return ((u * c + v * s) / a) ** 2 + ((v * c - u * s) / b) ** 2 <= 1.0


def _smooth_field(rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, n_terms: int = 4) -> np.ndarray:
    """A random smooth field scaled to max |f| = 1 on the grid: ``n_terms`` plane cosines of wavelength >= 2."""
    field = np.zeros_like(xx)
    for _ in range(n_terms):
        kx, ky = rng.uniform(-np.pi, np.pi, 2)
        field += rng.normal() * np.cos(kx * xx + ky * yy + rng.uniform(0.0, 2.0 * np.pi))
    return field / np.abs(field).max()


def qmri_brain(size: int = 128, seed: int = TEST_SEEDS[0], *, dtype: torch.dtype = torch.float32) -> QMRIPhantom:
    r"""A random brain-like slice with ~3T T1, T2 and complex proton density, for quantitative MRI.

    Labels are painted in normalised coordinates :math:`[-1, 1]^2` (rows are y, columns x), in a frame
    shifted by up to 0.02 and tilted by up to 0.1 rad:

    * head: an ellipse with vertical semi-axis 0.87-0.91 (it fills 87-91 % of the field of view) and
      horizontal semi-axis 0.88-0.94 of it; its outer ring, 0.08-0.12 thick (4-6 % of the field of
      view), is fat (scalp);
    * a thin CSF rim, 0.025-0.045 thick, between scalp and cortex;
    * a grey-matter cortex band around a white-matter core whose elliptical boundary lies 0.10-0.14
      inside the brain, its radius modulated by three sines of orders 2-7 (amplitudes 0.02-0.05), and
      always at least 0.04 inside the brain;
    * two lateral ventricles (CSF): ellipses with semi-axes 0.05-0.08 by 0.18-0.26 on either side of
      the midline, tilted in mirror (0.15-0.35 rad, front horns nearer the midline), each perturbed
      independently;
    * 1-3 small blobs of CSF or grey matter (radius 0.03-0.06) inside the white matter.

    Tissue values are :data:`QMRI_TISSUES`. T1 and T2 are multiplied by :math:`1 + 0.05 f(p)` with
    independent smooth random fields :math:`|f| \le 1`, so they deviate from the nominal values by at
    most :data:`QMRI_VARIATION` = 5 % and the tissue classes stay distinct. The proton density is
    :math:`M_0(p) = \rho_{\mathrm{tissue}} e^{i\varphi(p)}` with :math:`\varphi = A f_\varphi`,
    :math:`A \in [\pi/4, \pi/2]`. Each smooth field is a sum of 4 random plane cosines of wavelength
    at least the field-of-view width, scaled to max :math:`|f| = 1`. The tissue mask covers about
    52-62 % of the image. Deterministic given ``seed``.

    Args:
        size: image side N in pixels, >= 32.
        seed: seed of the numpy generator; demos use :data:`TEST_SEEDS`, training seeds below it.
        dtype: torch.float32 or torch.float64, the dtype of T1/T2 (M0 gets the matching complex dtype).

    Returns:
        A :class:`QMRIPhantom` whose fields have shape (1, 1, N, N).

    Example:
        >>> ph = qmri_brain(128, seed=TEST_SEEDS[0])
        >>> ph.t2.shape, ph.m0.dtype  # T2 in ms
        (torch.Size([1, 1, 128, 128]), torch.complex64)
        >>> r2 = ph.r2()  # R2 in 1/s, as the signal models use it
    """
    if _check_size(size) < 32:
        raise ValueError(f"size: expected an integer >= 32, received {size!r}")
    rng = np.random.default_rng(_check_seed(seed))
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype: expected torch.float32 or torch.float64, received {dtype!r}")
    yy, xx = _pixel_centres(size)
    cx, cy = rng.uniform(-0.02, 0.02, 2)
    tilt = rng.uniform(-0.1, 0.1)
    u = (xx - cx) * np.cos(tilt) + (yy - cy) * np.sin(tilt)
    v = (yy - cy) * np.cos(tilt) - (xx - cx) * np.sin(tilt)

    b_head = rng.uniform(0.87, 0.91)
    a_head = b_head * rng.uniform(0.88, 0.94)
    t_fat, t_rim, t_cortex = rng.uniform(0.08, 0.12), rng.uniform(0.025, 0.045), rng.uniform(0.10, 0.14)
    a_brain, b_brain = a_head - t_fat - t_rim, b_head - t_fat - t_rim
    a_wm, b_wm = a_brain - t_cortex, b_brain - t_cortex
    theta = np.arctan2(v / b_wm, u / a_wm)
    wobble = sum(
        rng.uniform(0.02, 0.05) * np.sin(k * theta + rng.uniform(0.0, 2.0 * np.pi))
        for k in rng.choice(np.arange(2, 8), 3, replace=False)
    )
    white = (np.hypot(u / a_wm, v / b_wm) <= 1.0 + wobble) & _ellipse(u, v, a_brain - 0.04, b_brain - 0.04)

    labels = np.zeros((size, size), dtype=np.int64)
    labels[_ellipse(u, v, a_head, b_head)] = 4
    labels[_ellipse(u, v, a_head - t_fat, b_head - t_fat)] = 3
    labels[_ellipse(u, v, a_brain, b_brain)] = 2
    labels[white] = 1
    v_centre, v_offset = rng.uniform(-0.1, 0.05), rng.uniform(0.08, 0.13)
    v_a, v_b, v_tilt = rng.uniform(0.05, 0.08), rng.uniform(0.18, 0.26), rng.uniform(0.15, 0.35)
    for side in (-1.0, 1.0):
        du, dv, da, db, dt = rng.uniform(-0.02, 0.02, 5)
        centre_u, centre_v = side * (v_offset + du), v_centre + dv
        labels[_ellipse(u - centre_u, v - centre_v, v_a + da, v_b + db, -side * (v_tilt + dt))] = 3
    for _ in range(rng.integers(1, 4)):
        r, phi = 0.7 * np.sqrt(rng.uniform()), rng.uniform(0.0, 2.0 * np.pi)
        radius = rng.uniform(0.03, 0.06)
        labels[_ellipse(u - r * a_wm * np.cos(phi), v - r * b_wm * np.sin(phi), radius, radius)] = rng.choice([2, 3])

    def tissue_map(field: str) -> np.ndarray:
        table = np.array([0.0] + [getattr(QMRI_TISSUES[k], field) for k in sorted(QMRI_TISSUES)])
        return table[labels]

    t1 = tissue_map("t1_ms") * (1.0 + QMRI_VARIATION * _smooth_field(rng, xx, yy))
    t2 = tissue_map("t2_ms") * (1.0 + QMRI_VARIATION * _smooth_field(rng, xx, yy))
    phase = rng.uniform(QMRI_MAX_PHASE / 2, QMRI_MAX_PHASE) * _smooth_field(rng, xx, yy)
    m0 = tissue_map("pd") * np.exp(1j * phase)
    return QMRIPhantom(
        labels=_as_tensor(labels, torch.int64),
        t1=_as_tensor(t1, dtype),
        t2=_as_tensor(t2, dtype),
        m0=_as_tensor(m0, dtype.to_complex()),
        mask=_as_tensor(labels > 0, torch.bool),
    )


#: velocity of the water layer of :func:`layered_velocity`, in m/s
WATER_VELOCITY = 1500.0


def layered_velocity(shape: tuple[int, int] = (64, 128), seed: int = 7) -> tuple[torch.Tensor, int]:
    """A layered velocity model (m/s) with a dipping normal fault and a low-velocity lens, under water.

    Geometry in fractions of the grid, so every ``shape`` shows the same model: water
    (:data:`WATER_VELOCITY`) over the top 9.4 % (60 m on 64 rows of 10 m), five dipping, gently
    undulating interfaces (six layers of 1800 to 3600 m/s in equal steps, increasing with depth,
    each jittered by up to 80 m/s), a normal fault (a line at 60 degrees in grid fractions, 41
    degrees on a 2:1 grid) across which the layers to its right drop by 8 % of the depth, and an
    elliptic lens 350 m/s slower than the layers it cuts.

    Args:
        shape: (nz, nx) cells, each >= 8; rows are depth.
        seed: seed of the interface depths, dips and velocity jitter (>= 0).

    Returns:
        ``(velocity, water_rows)``: the model in m/s, float64 (nz, nx), and the number of water rows.

    Example:
        >>> c_true, water_rows = layered_velocity((32, 64))
    """
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise ValueError(f"shape: expected (nz, nx), received {shape!r}")
    nz, nx = (_check_size(n) for n in shape)
    rng = np.random.default_rng(_check_seed(seed))
    z, x = np.meshgrid((np.arange(nz) + 0.5) / nz, (np.arange(nx) + 0.5) / nx, indexing="ij")
    water = 0.094
    fault_x = 0.55 + (z - 0.5) / math.tan(math.radians(60.0))
    depth = z - 0.08 * (x > fault_x)  # hanging wall (right of the fault) dropped by 8 %
    tops = np.linspace(0.22, 0.82, 5) + rng.uniform(-0.03, 0.03, 5)
    dips = rng.uniform(-0.08, 0.08, 5)
    phase = rng.uniform(0, 2 * math.pi)
    speeds = np.linspace(1800.0, 3600.0, 6) + rng.uniform(-80.0, 80.0, 6)
    undulation = 0.015 * np.sin(2 * math.pi * x + phase)
    layer = sum(depth > top + dip * (x - 0.5) + undulation for top, dip in zip(tops, dips, strict=True))
    velocity = speeds[np.asarray(layer, dtype=int)]
    lens = ((z - 0.45) / 0.08) ** 2 + ((x - 0.3) / 0.14) ** 2 <= 1.0
    velocity = np.where(lens, velocity - 350.0, velocity)
    water_rows = max(1, round(water * nz))
    velocity[:water_rows] = WATER_VELOCITY
    return torch.from_numpy(velocity), water_rows
