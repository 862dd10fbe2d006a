r"""Training data of the shipped networks: phantom families, patch pools and noise models.

Every pipeline is a pure function of its seeds, so a recipe in :mod:`recon.training` rebuilds the
same images on every run. Seed ranges split the data: training images use seeds ``0 .. n_train-1``,
validation images start at the ``*_VAL_FIRST_SEED`` of their model, and both stay below
:data:`recon.phantoms.TEST_SEEDS` (the seeds of the demos and tests).

* CT (``ct_unet``): :func:`ct_pairs`, FBP input and ground truth of COULE-like images
  (:func:`recon.phantoms.coule_like`) in the graphLa+Psi geometry (:func:`operators.ct.ct_geometry`)
  with relative Gaussian noise (:func:`recon.noise.add_relative_noise`).
* MIMO (``mimo_unet3d``): :func:`mimo_magnitudes` of :func:`recon.phantoms.mimo_scene` and
  Rician noise :func:`magnitude_noisy`.
* Dynamic objects (``ct_dncnn``): :func:`dynamic_frames` of :func:`recon.phantoms.dynamic_object`
  and Gaussian noise :func:`gaussian_noisy`.
* Natural-like images (``hvae``): the scikit-image photos :func:`hvae_image`,
  COULE-like images and procedural textures :func:`hvae_texture` pooled by :func:`hvae_pool`, cut
  into augmented patches by :func:`hvae_patches` and into tiles by
  :func:`hvae_tiles`.
* Photographs (``dncnn_natural``): the grayscale PNG sets of the denoising literature under
  :data:`DATASETS_DIR` (``train400`` for training, ``bsd68`` for validation; never shipped, never
  downloaded), read by :func:`photo_set` and cut into overlapping training patches by
  :func:`grid_patches`.

Example:
    >>> x_fbp, x_true = ct_pairs(range(100_000, 100_004), size=256)
    >>> noisy = gaussian_noisy(dynamic_frames(range(2)), 0.05, torch.Generator().manual_seed(0))
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from skimage import color, data, io
from torch.nn import functional as F

from operators.ct import ct_geometry
from recon.noise import add_relative_noise
from recon.phantoms import MIMO_SCENE_SHAPE, coule_like, dynamic_object, mimo_scene

__all__ = [
    "ct_pairs",
    "ct_clean_fbps",
    "ct_noise_bank",
    "mimo_magnitudes",
    "magnitude_noisy",
    "dynamic_frames",
    "gaussian_noisy",
    "hvae_image",
    "hvae_texture",
    "hvae_pool",
    "hvae_patches",
    "hvae_tiles",
    "hvae_pool_card",
    "DATASETS_DIR",
    "photo_files",
    "photo_set",
    "file_list_sha256",
    "grid_patches",
]

CT_NOISE_LEVEL = 0.02
CT_VAL_FIRST_SEED = 100_000
MIMO_VAL_FIRST_SEED = 200_000
DNCNN_VAL_FIRST_SEED = 300_000
DNCNN_SIZE = 128
DNCNN_FRAMES = 8
#: Kind of the dynamic object of seed ``s`` in the ``ct_dncnn`` data: ``DNCNN_KINDS[s % 4]``.
DNCNN_KINDS = ("coule", "coule", "coule", "cardiac")
#: scikit-image images the ``hvae`` trains on (:func:`hvae_image`); none of them is held out.
HVAE_TRAIN_IMAGES = (
    "brick", "cell", "chelsea", "clock", "coffee", "grass", "gravel", "horse", "hubble_deep_field",
    "immunohistochemistry", "motorcycle", "page", "retina", "rocket", "text",
)  # fmt: skip
#: scikit-image images the ``hvae`` never sees in training: the test images of PnP-HVAE (the same
#: four natural images as the deblurring demo ``demos/deblur_sobolev.py``); the card's held-out
#: ELBO is over their non-overlapping 64x64 tiles (:func:`hvae_tiles`).
HVAE_HELD_OUT_IMAGES = ("camera", "astronaut", "moon", "coins")
#: Probability of each kind of source image of an ``hvae`` training patch.
HVAE_MIX = {"natural": 0.6, "coule": 0.2, "texture": 0.2}
HVAE_PROCEDURAL_SIZE = 256
HVAE_MIN_SCALE = 0.5
HVAE_CROP = 64
HVAE_VAL_FIRST_SEED = 400_000


# ----------------------------------------------------------------------------- CT data


def ct_pairs(
    seeds: Sequence[int], size: int = 256, noise_level: float = CT_NOISE_LEVEL, chunk: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """(FBP input, ground truth) pairs of the ``ct_unet`` pipeline, one per image seed.

    Image ``s`` is ``coule_like(size, s)``; its sinogram gets relative noise with noise seed ``s``;
    the input is the ram-lak FBP (numba backend, float32).

    Args:
        seeds: image seeds (use seeds below ``recon.phantoms.TEST_SEEDS.start`` for training).
        size: image side, 128 or 256.
        noise_level: relative noise level ``||e|| / ||A x||``.
        chunk: images projected per call.

    Returns:
        ``(x_fbp, x_true)``, each (len(seeds), 1, size, size) float32.

    Example:
        >>> x_fbp, x_true = ct_pairs(range(100_000, 100_004), size=256)
    """
    seeds = [int(s) for s in seeds]
    physics = ct_geometry(size)
    fbps, truths = [], []
    for i in range(0, len(seeds), chunk):
        part = seeds[i : i + chunk]
        x = torch.cat([coule_like(size, s) for s in part])
        y_clean = physics.A(x)
        y = torch.cat([add_relative_noise(y_clean[j : j + 1], noise_level, seed=s) for j, s in enumerate(part)])
        fbps.append(physics.fbp(y, filter="ram-lak"))
        truths.append(x)
    return torch.cat(fbps), torch.cat(truths)


def ct_clean_fbps(objects: torch.Tensor, chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Noiseless FBP images and sinogram norms of the ``ct_unet`` pipeline.

    Since the ram-lak FBP is linear, the FBP of ``A x + e`` is ``fbp(A x) + fbp(e)``: the
    noise-blind recipe adds a scaled noise FBP of :func:`ct_noise_bank` to these images.

    Args:
        objects: (n, 1, size, size) float32 images, size 128 or 256 (:func:`operators.ct.ct_geometry`).
        chunk: images projected per call.

    Returns:
        ``(fbp_clean, y_norm)``: (n, 1, size, size) float32 ``fbp(A x)`` and (n,) float64 ``||A x||``.
    """
    physics = ct_geometry(objects.shape[-1])
    fbps, norms = [], []
    for i in range(0, len(objects), chunk):
        y = physics.A(objects[i : i + chunk])
        fbps.append(physics.fbp(y, filter="ram-lak"))
        norms.append(y.reshape(len(y), -1).double().norm(dim=1))
    return torch.cat(fbps), torch.cat(norms)


def ct_noise_bank(n: int, size: int, seed: int, chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """FBP images of ``n`` white standard-normal sinograms in the ``ct_unet`` geometry.

    Args:
        n: number of noise draws.
        size: image side, 128 or 256.
        seed: seed of the draws (torch generator).
        chunk: draws reconstructed per call.

    Returns:
        ``(noise_fbp, w_norm)``: (n, 1, size, size) float32 ``fbp(w)`` and (n,) float64 ``||w||``;
        ``fbp(A x) + level ||A x|| / ||w|| fbp(w)`` is the FBP of data with relative noise ``level``.
    """
    physics = ct_geometry(size)
    gen = torch.Generator().manual_seed(int(seed))
    w = torch.randn((n, 1, *physics.sinogram_shape), generator=gen)
    fbps = [physics.fbp(w[i : i + chunk], filter="ram-lak") for i in range(0, n, chunk)]
    return torch.cat(fbps), w.reshape(n, -1).double().norm(dim=1)


# ----------------------------------------------------------------------------- MIMO data


def mimo_magnitudes(seeds: Sequence[int], shape: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Clean magnitudes of the ``mimo_unet3d`` pipeline: ``|mimo_scene(shape, s)|`` for each seed.

    Args:
        seeds: scene seeds (use seeds below ``recon.phantoms.TEST_SEEDS.start`` for training).
        shape: grid (Nx, Ny, Nz); default :data:`recon.phantoms.MIMO_SCENE_SHAPE`.

    Returns:
        (len(seeds), 1, Nx, Ny, Nz) float32 magnitudes in [0, 1].

    Example:
        >>> clean = mimo_magnitudes(range(200_000, 200_004))
    """
    shape = MIMO_SCENE_SHAPE if shape is None else shape
    return torch.cat([mimo_scene(shape, int(s)).abs() for s in seeds])


def magnitude_noisy(clean: torch.Tensor, sigma: float | torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    r"""Rician-noisy magnitudes :math:`|m + \sigma (n_1 + j n_2)/\sqrt{2}|`, :math:`n_i \sim N(0, 1)`.

    The noise is what a magnitude prior sees inside magnitude PnP: the modulus of a complex
    reflectivity with circular complex Gaussian error (``E|noise|^2 = sigma^2``). The scene's
    phase does not matter (circular noise), so the clean magnitude stands for the complex value.

    Args:
        clean: clean magnitudes (B, 1, ...), real.
        sigma: noise standard deviation, a float or a tensor broadcastable to ``clean``.
        gen: the seeded generator the two noise draws come from.
    """
    n1 = torch.randn(clean.shape, generator=gen, dtype=clean.dtype)
    n2 = torch.randn(clean.shape, generator=gen, dtype=clean.dtype)
    return torch.hypot(clean + sigma * n1 / 2**0.5, sigma * n2 / 2**0.5)


# ----------------------------------------------------------------------------- dynamic-object frames


def dynamic_frames(seeds: Sequence[int], size: int = DNCNN_SIZE, n_frames: int = DNCNN_FRAMES) -> torch.Tensor:
    """Single frames of the ``ct_dncnn`` pipeline: every frame of one dynamic object per seed.

    Seed ``s`` gives ``dynamic_object(size, n_frames, s, DNCNN_KINDS[s % 4])``
    (:func:`recon.phantoms.dynamic_object`, default deformation), so a quarter of the objects
    are cardiac-like and the rest COULE-like.

    Args:
        seeds: object seeds (use seeds below ``recon.phantoms.TEST_SEEDS.start`` for training).
        size: image side N.
        n_frames: frames per object.

    Returns:
        (len(seeds) * n_frames, 1, N, N) float32 frames in [0, 1], object-major.

    Example:
        >>> clean = dynamic_frames(range(300_000, 300_004))  # (32, 1, 128, 128)
    """
    objects = [dynamic_object(size, n_frames, int(s), DNCNN_KINDS[int(s) % len(DNCNN_KINDS)]) for s in seeds]
    return torch.cat(objects, dim=1).reshape(-1, 1, size, size)


def gaussian_noisy(clean: torch.Tensor, sigma: float | torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``clean + sigma * n`` with i.i.d. ``n ~ N(0, 1)`` drawn from ``gen`` (``sigma`` a float or broadcastable tensor)."""
    return clean + sigma * torch.randn(clean.shape, generator=gen, dtype=clean.dtype)


# ----------------------------------------------------------------------------- natural-like images (hvae)


def hvae_image(name: str) -> torch.Tensor:
    """One grayscale image bundled with scikit-image, as used by the ``hvae`` pipeline.

    RGB images are converted by ``skimage.color.rgb2gray``, 8-bit ones divided by 255, the
    binary ``horse`` cast to {0, 1}; ``"motorcycle"`` is the left view of
    ``skimage.data.stereo_motorcycle()``. Nothing is downloaded: every name in
    :data:`HVAE_TRAIN_IMAGES` and :data:`HVAE_HELD_OUT_IMAGES` ships inside scikit-image.

    Args:
        name: one of :data:`HVAE_TRAIN_IMAGES` or :data:`HVAE_HELD_OUT_IMAGES`.

    Returns:
        (1, 1, H, W) float32 image in [0, 1] at its native size.

    Example:
        >>> x = hvae_image("camera")  # (1, 1, 512, 512)
    """
    known = HVAE_TRAIN_IMAGES + HVAE_HELD_OUT_IMAGES
    if name not in known:
        raise ValueError(f"name: expected one of {known}, received {name!r}")
    img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    if img.ndim == 3:
        img = color.rgb2gray(img[..., :3])  # float in [0, 1]
    elif img.dtype == np.uint8:
        img = img / 255.0
    img = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(img)).float()[None, None]


def hvae_texture(size: int = HVAE_PROCEDURAL_SIZE, seed: int = 0) -> torch.Tensor:
    r"""A seeded procedural texture of the ``hvae`` training data.

    The sum of anisotropic power-law noise (white noise filtered by :math:`1/|\xi_A|^{\alpha}`,
    :math:`|\xi_A|^2 = u^2 + (a v)^2` in frequency coordinates rotated by a random angle,
    :math:`\alpha \sim U[1, 2.5]`, :math:`a \sim U[1, 4]`, periodic) and of 1-5 oriented
    sinusoids (frequencies 0.01-0.2 cycles per pixel, random orientation, phase and amplitude),
    with random weights; a quarter of the textures are then sharpened to near-binary patterns
    by :math:`\tanh(k\,\cdot)`, :math:`k \sim U[2, 8]`. The result is mapped affinely onto a
    random range :math:`[lo, hi]`, :math:`lo \sim U[0, 0.4]`, :math:`hi \sim U[0.6, 1]`.

    Args:
        size: image side N.
        seed: seed of the numpy generator (training seeds ``0 .. n_train-1``, validation
            :data:`HVAE_VAL_FIRST_SEED` ``..``, never :data:`recon.phantoms.TEST_SEEDS`).

    Returns:
        (1, 1, N, N) float32 image in [0, 1].

    Example:
        >>> t = hvae_texture(256, seed=3)
    """
    rng = np.random.default_rng(int(seed))
    f = np.fft.fftfreq(size)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    theta = rng.uniform(0.0, np.pi)
    u = fx * np.cos(theta) + fy * np.sin(theta)
    v = -fx * np.sin(theta) + fy * np.cos(theta)
    radius = np.hypot(u, rng.uniform(1.0, 4.0) * v)
    radius[0, 0] = np.inf
    noise = np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) * radius ** -rng.uniform(1.0, 2.5)).real
    noise /= noise.std() + 1e-12
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    waves = np.zeros((size, size))
    for _ in range(rng.integers(1, 6)):
        freq, phi = rng.uniform(0.01, 0.2), rng.uniform(0.0, np.pi)
        phase = 2 * np.pi * freq * (xx * np.cos(phi) + yy * np.sin(phi)) + rng.uniform(0, 2 * np.pi)
        waves += rng.uniform(0.2, 1.0) * np.cos(phase)
    waves /= waves.std() + 1e-12
    w = rng.uniform(0.0, 1.0)
    img = w * noise + (1.0 - w) * waves
    if rng.uniform() < 0.25:
        img = np.tanh(rng.uniform(2.0, 8.0) * img / (img.std() + 1e-12))
    lo, hi = rng.uniform(0.0, 0.4), rng.uniform(0.6, 1.0)
    img = lo + (hi - lo) * (img - img.min()) / (img.max() - img.min() + 1e-12)
    return torch.from_numpy(img).float()[None, None]


def hvae_pool(seeds: Sequence[int], natural: Sequence[str] = HVAE_TRAIN_IMAGES) -> dict[str, list[torch.Tensor]]:
    """The images the ``hvae`` patches are cut from, by kind.

    Args:
        seeds: procedural seeds: ``coule_like(HVAE_PROCEDURAL_SIZE, s)`` and ``hvae_texture(HVAE_PROCEDURAL_SIZE, s)``
            for each ``s`` (below :data:`recon.phantoms.TEST_SEEDS`).
        natural: scikit-image names (:func:`hvae_image`).

    Returns:
        ``{"natural": [...], "coule": [...], "texture": [...]}``, lists of (1, 1, H, W) float32 images in [0, 1].
    """
    seeds = [int(s) for s in seeds]
    return {
        "natural": [hvae_image(n) for n in natural],
        "coule": [coule_like(HVAE_PROCEDURAL_SIZE, s) for s in seeds],
        "texture": [hvae_texture(HVAE_PROCEDURAL_SIZE, s) for s in seeds],
    }


def hvae_patches(
    pool: dict[str, list[torch.Tensor]], n: int, crop: int, gen: torch.Generator, mix: dict[str, float] = HVAE_MIX
) -> torch.Tensor:
    r"""``n`` random augmented ``crop x crop`` training patches of the ``hvae`` pipeline.

    For each patch, drawn in this order from ``gen``: the kind (a key of ``mix``, with its
    probability; :data:`HVAE_MIX` by default), one image of that kind (uniformly), a
    scale :math:`s \sim U[`:data:`HVAE_MIN_SCALE`:math:`, 1]`, the corner of a square window of
    side ``min(round(crop / s), H, W)``, one of the 8 flips/rotations by multiples of 90 degrees;
    the window is resized to ``crop x crop`` (bilinear, antialiased; a downscaling, so detail
    gets finer, never blurred by upsampling).

    Args:
        pool: images by kind (:func:`hvae_pool`); every image at least ``crop`` pixels on each side.
        n: number of patches.
        crop: patch side.
        gen: the seeded generator of every draw.
        mix: probability of each kind of ``pool``.

    Returns:
        (n, 1, crop, crop) float32 patches in [0, 1].
    """
    kinds = list(mix)
    probs = torch.tensor([mix[k] for k in kinds], dtype=torch.float64)
    out = torch.empty(n, 1, crop, crop)
    for i in range(n):
        images = pool[kinds[int(torch.multinomial(probs, 1, generator=gen))]]
        img = images[int(torch.randint(len(images), (1,), generator=gen))]
        scale = HVAE_MIN_SCALE + (1.0 - HVAE_MIN_SCALE) * float(torch.rand((), generator=gen))
        side = min(round(crop / scale), img.shape[2], img.shape[3])
        top = int(torch.randint(img.shape[2] - side + 1, (1,), generator=gen))
        left = int(torch.randint(img.shape[3] - side + 1, (1,), generator=gen))
        k, flip = int(torch.randint(4, (1,), generator=gen)), bool(torch.randint(2, (1,), generator=gen))
        patch = img[:, :, top : top + side, left : left + side]
        if side != crop:
            patch = F.interpolate(patch, size=(crop, crop), mode="bilinear", antialias=True, align_corners=False)
        patch = torch.rot90(patch, k, dims=(2, 3))
        out[i] = (patch.flip(3) if flip else patch)[0].clamp(0.0, 1.0)
    return out


def hvae_tiles(images: Sequence[torch.Tensor], crop: int = HVAE_CROP) -> torch.Tensor:
    """Every non-overlapping ``crop x crop`` tile (row-major, from the top-left corner) of each image.

    Args:
        images: (1, 1, H, W) images.
        crop: tile side.

    Returns:
        (n_tiles, 1, crop, crop), image-major.

    Example:
        >>> held_out = hvae_tiles([hvae_image(n) for n in HVAE_HELD_OUT_IMAGES])  # (216, 1, 64, 64)
    """
    tiles = []
    for img in images:
        h, w = (img.shape[2] // crop) * crop, (img.shape[3] // crop) * crop
        t = img[0, 0, :h, :w].reshape(h // crop, crop, w // crop, crop).permute(0, 2, 1, 3)
        tiles.append(t.reshape(-1, 1, crop, crop))
    return torch.cat(tiles)


def hvae_pool_card() -> dict:
    """The card entries describing the image pool of :func:`hvae_pool` (``hvae``)."""
    return {
        "natural_images": f"skimage.data {list(HVAE_TRAIN_IMAGES)} via recon.training.data.hvae_image (gray, [0, 1])",
        "held_out_images": list(HVAE_HELD_OUT_IMAGES),
        "procedural": f"recon.phantoms.coule_like({HVAE_PROCEDURAL_SIZE}, seed) and "
        f"recon.training.data.hvae_texture({HVAE_PROCEDURAL_SIZE}, seed)",
    }


# ----------------------------------------------------------------------------- photographs (dncnn_natural)

DATASETS_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
"""Default folder of the photograph sets: ``../shared/datasets`` next to the checkout (``train400/``, ``bsd68/``)."""


def photo_files(name: str, data_dir: Path | str = DATASETS_DIR) -> list[Path]:
    """The sorted ``*.png`` files of the photograph set ``data_dir / name``.

    Raises:
        ValueError: the folder is missing or holds no PNG file.
    """
    folder = Path(data_dir) / name
    files = sorted(folder.glob("*.png"))
    if not files:
        raise ValueError(f"data_dir: expected PNG images in {folder} (the {name} set), found none")
    return files


def photo_set(name: str, data_dir: Path | str = DATASETS_DIR) -> tuple[list[torch.Tensor], list[Path]]:
    """Read every image of the photograph set ``name`` (e.g. ``"train400"``, ``"bsd68"``).

    Each file must be an 8-bit grayscale PNG; it becomes a float32 (1, 1, H, W) tensor of
    ``value / 255`` in [0, 1].

    Args:
        name: sub-folder of ``data_dir``.
        data_dir: folder of the sets (default :data:`DATASETS_DIR`).

    Returns:
        ``(images, files)`` in file-name order.

    Raises:
        ValueError: a missing folder, or a file that is not a readable 8-bit grayscale image (named).

    Example:
        >>> images, files = photo_set("bsd68")   # 68 images of 321x481 or 481x321
    """
    files = photo_files(name, data_dir)
    images = []
    for f in files:
        try:
            arr = io.imread(f)
        except (OSError, ValueError) as err:
            raise ValueError(f"data_dir: {f} is not a readable image ({err})") from err
        if arr.dtype != np.uint8 or arr.ndim != 2:
            raise ValueError(f"data_dir: expected an 8-bit grayscale image in {f}, received dtype {arr.dtype}, shape {arr.shape}")
        images.append(torch.from_numpy(arr.astype(np.float32) / 255.0)[None, None])
    return images, files


def file_list_sha256(files: Sequence[Path]) -> str:
    """sha256 of the lines ``"<file name> <sha256 of its bytes>\n"``, in the given order: one hash of names and contents."""
    lines = "".join(f"{Path(f).name} {hashlib.sha256(Path(f).read_bytes()).hexdigest()}\n" for f in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def grid_patches(images: Sequence[torch.Tensor], side: int, stride: int) -> torch.Tensor:
    """Every ``side x side`` window of each image with corners on a grid of step ``stride`` (row-major).

    Args:
        images: (1, 1, H, W) images, each at least ``side`` on both sides.
        side: window side.
        stride: grid step.

    Returns:
        (n, 1, side, side), image-major.

    Example:
        >>> grid_patches([torch.rand(1, 1, 180, 180)], 80, 20).shape   # 6 x 6 corners
        torch.Size([36, 1, 80, 80])
    """
    out = [img.unfold(2, side, stride).unfold(3, side, stride).reshape(-1, 1, side, side) for img in images]
    return torch.cat(out)
