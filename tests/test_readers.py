"""Scanner files in (recon.readers): DICOM series, NIfTI, TIFF projection stacks, fastMRI and ISMRMRD k-space.

Every file is written here, in tmp_path, by the format's own library (pydicom, nibabel, tifffile,
h5py, ismrmrd), except the real DICOM samples that ship inside the pydicom wheel (read from the
installed package, never downloaded: ``download=False`` and the path is checked to lie inside it).
The last section holds property-based tests (hypothesis) of the readers' argument checking.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pydicom.data
import pytest
import tifffile
import torch
from deepinv.utils import MRIMixin
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.ndimage import shift as nd_shift

import recon
from operators import ParallelBeamCT
from operators.coil_maps import simulated_coil_maps
from operators.kspace_masks import cartesian_mask
from operators.mri import to_complex
from recon.readers import (
    FORMATS,
    KSpace,
    Projections,
    Volume,
    axial_affine,
    detect_format,
    estimate_rotation_center,
    line_integrals,
    read,
    read_dicom,
    read_projections,
)

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"


def sample(name: str) -> Path:
    """A DICOM sample shipped in the installed pydicom wheel (no download)."""
    path = Path(pydicom.data.get_testdata_file(name, download=False))
    assert path.is_relative_to(PYDICOM_FILES), path
    return path


# ----------------------------------------------------------------------------- DICOM


def test_real_ct_slice_has_hounsfield_units_and_its_geometry():
    path = sample("CT_small.dcm")
    ds = pydicom.dcmread(path)
    vol = read(path)
    assert isinstance(vol, Volume) and vol.format == "dicom" and vol.modality == "CT" and vol.units == "HU"
    assert vol.data.shape == (1, 128, 128) and vol.data.dtype == np.float32
    np.testing.assert_array_equal(vol.data[0], ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert vol.spacing == pytest.approx((float(ds.SliceThickness), *map(float, ds.PixelSpacing)))
    assert vol.axis_codes == ("S", "P", "L")  # axial slice: rows run posterior, columns to the patient's left
    # voxel (0, r, c) sits at ImagePositionPatient + c * dc * row cosine + r * dr * column cosine (LPS), flipped to RAS
    r, c = 5, 7
    lps = np.array(ds.ImagePositionPatient, float) + c * float(ds.PixelSpacing[1]) * np.array(ds.ImageOrientationPatient[:3], float)
    lps += r * float(ds.PixelSpacing[0]) * np.array(ds.ImageOrientationPatient[3:], float)
    np.testing.assert_allclose(vol.affine @ [0, r, c, 1], [-lps[0], -lps[1], lps[2], 1], atol=1e-6)
    assert vol.source.PatientID == ds.PatientID and "PixelData" not in vol.source


def test_real_mr_slice_reads():
    vol = read(sample("MR_small.dcm"))
    assert vol.modality == "MR" and vol.data.shape == (1, 64, 64) and vol.units == ""
    assert vol.spacing[1:] == pytest.approx((0.3125, 0.3125))


def _series(tmp_path: Path, n: int = 4, *, spacing: float = 2.5, slope: float = 2.0, intercept: float = -10.0) -> tuple[Path, np.ndarray]:
    """A series of ``n`` slices made from the real CT slice, written in shuffled order with a rescale."""
    src = pydicom.dcmread(sample("CT_small.dcm"))
    folder = tmp_path / "series"
    folder.mkdir()
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 1000, size=(n, 8, 6)).astype(np.int16)
    for i, k in enumerate(rng.permutation(n)):
        ds = src.copy()
        ds.Rows, ds.Columns = stored.shape[1:]
        ds.PixelData = stored[k].tobytes()
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.ImagePositionPatient = [10.0, 20.0, -30.0 + spacing * k]
        ds.InstanceNumber = n - k  # reversed: the position, not the number, orders the slices
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(folder / f"f{i}.dcm")
    (folder / "README.txt").write_text("not DICOM: skipped")
    return folder, stored * slope + intercept


def test_series_is_sorted_by_position_and_rescaled(tmp_path):
    folder, values = _series(tmp_path)
    vol = read(folder)
    np.testing.assert_allclose(vol.data, values)
    assert vol.spacing[0] == pytest.approx(2.5) and vol.axis_codes[0] == "S"
    assert vol.header["skipped"] == ["README.txt"] and len(vol.header["files"]) == 4
    files = sorted(folder.glob("*.dcm"))
    np.testing.assert_allclose(read_dicom(files).data, values)  # a file list gives the same volume


def test_series_errors_name_the_file(tmp_path):
    folder, _ = _series(tmp_path)
    files = sorted(folder.glob("*.dcm"))
    ds = pydicom.dcmread(files[1])
    del ds.PixelSpacing
    ds.save_as(files[1])
    with pytest.raises(ValueError, match=rf"{files[1].name}' has no PixelSpacing tag"):
        read(folder)
    ds.PixelSpacing = [0.5, 0.5]
    ds.save_as(files[1])
    with pytest.raises(ValueError, match="has pixel_spacing .* expected one pixel_spacing"):
        read(folder)
    ds.PixelSpacing = pydicom.dcmread(files[0]).PixelSpacing
    ds.ImagePositionPatient = pydicom.dcmread(files[0]).ImagePositionPatient
    ds.save_as(files[1])
    with pytest.raises(ValueError, match="lie at the same position"):
        read(folder)
    ds.ImagePositionPatient = [10.0, 20.0, 100.0]
    ds.save_as(files[1])
    with pytest.raises(ValueError, match="slice spacing varies"):
        read(folder)
    ds.SeriesInstanceUID = "1.2.3"
    ds.save_as(files[1])
    with pytest.raises(ValueError, match="holds 2 series"):
        read(folder)
    assert read(folder, series_uid="1.2.3").data.shape == (1, 8, 6)
    with pytest.raises(ValueError, match="series_uid: '9.9' is not among"):
        read(folder, series_uid="9.9")
    with pytest.raises(ValueError, match="README.txt' is not a DICOM file"):
        read_dicom([folder / "README.txt"])


def test_real_broken_and_inconsistent_samples():
    truncated = sample("MR_truncated.dcm")
    with pytest.raises(ValueError, match=r"cannot decode .*MR_truncated.dcm.*expected a complete DICOM image"):
        read(truncated)
    # a real radial series: every slice has its own orientation
    radial = PYDICOM_FILES / "dicomdirtests" / "98892003" / "MR700"
    with pytest.raises(ValueError, match="expected one orientation for the whole series"):
        read(radial, format="dicom")
    with pytest.raises(ValueError, match="multi-frame image"):
        read(sample("rtdose.dcm"))


def test_truncated_file_in_the_middle_of_the_header(tmp_path):
    data = sample("CT_small.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:700])
    with pytest.raises(ValueError, match=r"cut.dcm"):
        read(tmp_path / "cut.dcm")


# ----------------------------------------------------------------------------- NIfTI


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_written_by_nibabel_reads_with_its_affine(tmp_path, suffix):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((5, 4, 3)).astype(np.float32)  # (i, j, k)
    affine = np.array([[0.0, -0.8, 0.0, 12.0], [0.9, 0.0, 0.0, -3.0], [0.0, 0.0, 2.5, 40.0], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data, affine), tmp_path / f"v{suffix}")
    vol = read(tmp_path / f"v{suffix}")
    assert vol.format == "nifti" and vol.data.shape == (3, 4, 5) and vol.source is None
    i, j, k = 4, 1, 2
    assert vol.data[k, j, i] == data[i, j, k]
    np.testing.assert_allclose(vol.affine @ [k, j, i, 1], affine @ [i, j, k, 1], atol=1e-5)  # stored as float32
    assert vol.spacing == pytest.approx((2.5, 0.8, 0.9)) and vol.axis_codes == ("S", "L", "A")


def test_nifti_bad_files(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2), np.float32), np.eye(4)), tmp_path / "t.nii.gz")
    with pytest.raises(ValueError, match=r"holds an array of shape \(4, 4, 3, 2\); expected a 2D or 3D volume"):
        read(tmp_path / "t.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 8), np.float32), np.eye(4)), tmp_path / "ok.nii")
    (tmp_path / "cut.nii").write_bytes((tmp_path / "ok.nii").read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"cannot read .*cut.nii.* as NIfTI"):
        read(tmp_path / "cut.nii")


# ----------------------------------------------------------------------------- TIFF projections

N, N_ANGLES, I0, DARK = 40, 61, 5000.0, 100.0


@pytest.fixture(scope="module")
def scan() -> dict:
    """Two phantoms (attenuation 0.04 per pixel at most), their sinograms over [0, 180] degrees, both ends included."""
    angles = torch.linspace(0, math.pi, N_ANGLES, dtype=torch.float64)
    physics = ParallelBeamCT(N, angles, backend="numba")
    x = 0.04 * torch.cat([recon.phantoms.coule_like(N, seed=s) for s in (3, 4)])
    sino = physics.A(x)[:, 0].numpy().transpose(1, 0, 2)  # (angles, rows, detectors)
    return {"x": x, "angles": angles.numpy(), "sino": sino, "physics": physics}


def _write_counts(folder: Path, sino: np.ndarray) -> None:
    """Projections as detector counts I0 exp(-p) + dark, with a stack of 3 flats and one dark, as float32 TIFFs."""
    tifffile.imwrite(folder / "proj.tiff", (I0 * np.exp(-sino) + DARK).astype(np.float32))
    tifffile.imwrite(folder / "flat.tiff", np.full((3, *sino.shape[1:]), I0 + DARK, np.float32), photometric="minisblack")
    tifffile.imwrite(folder / "dark.tiff", np.full(sino.shape[1:], DARK, np.float32))


def test_tiff_counts_become_line_integrals(tmp_path, scan):
    _write_counts(tmp_path, scan["sino"])
    np.savetxt(tmp_path / "angles.txt", np.degrees(scan["angles"]))
    proj = read(tmp_path / "proj.tiff", flat=tmp_path / "flat.tiff", dark=tmp_path / "dark.tiff", angles=tmp_path / "angles.txt")
    assert isinstance(proj, Projections) and proj.n_clipped == 0 and proj.shift == 0.0
    np.testing.assert_allclose(proj.line_integrals, scan["sino"], atol=1e-5)
    np.testing.assert_allclose(proj.angles, scan["angles"], atol=1e-12)
    assert proj.sinograms().shape == (2, 1, N_ANGLES, proj.n_detectors)
    same = read(tmp_path / "proj.tiff", flat=tmp_path / "flat.tiff", dark=tmp_path / "dark.tiff", angle_range=(0, 180))
    np.testing.assert_allclose(same.angles, scan["angles"], atol=1e-12)


def test_tiff_folder_of_pages_and_clipping_is_reported(tmp_path, scan):
    counts = I0 * np.exp(-scan["sino"]) + DARK
    counts[0, 0, :5] = DARK - 1.0  # below the dark field: non-positive transmission
    counts[1, 1, :2] = DARK  # zero transmission
    pages = tmp_path / "pages"
    pages.mkdir()
    for k, page in enumerate(counts):
        tifffile.imwrite(pages / f"p{k:03d}.tif", page.astype(np.float32))
    assert detect_format(pages) == "tiff"
    with pytest.warns(RuntimeWarning, match="7 of .* transmission values were below min_transmission=0.001"):
        proj = read(pages, flat=np.full(counts.shape[1:], I0 + DARK), dark=np.full(counts.shape[1:], DARK), angle_range=(0, 180),
                    min_transmission=1e-3)  # fmt: skip
    assert proj.n_clipped == 7
    assert proj.line_integrals.max() == pytest.approx(-math.log(1e-3))


def test_tiff_bad_inputs(tmp_path, scan):
    _write_counts(tmp_path, scan["sino"])
    np.savetxt(tmp_path / "short.txt", np.arange(10.0))
    with pytest.raises(ValueError, match=rf"angles: expected {N_ANGLES} finite angles .* received 10"):
        read(tmp_path / "proj.tiff", angles=tmp_path / "short.txt")
    with pytest.raises(ValueError, match="angles, angle_range: expected exactly one"):
        read(tmp_path / "proj.tiff")
    tifffile.imwrite(tmp_path / "flat_small.tiff", np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match=r"flat: expected an image .* of the projections' size \(2, \d+\), received shape \(2, 5\)"):
        read(tmp_path / "proj.tiff", flat=tmp_path / "flat_small.tiff", angle_range=(0, 180))
    with pytest.raises(ValueError, match="center: expected a detector column in"):
        read(tmp_path / "proj.tiff", angle_range=(0, 180), center=1e4)
    with pytest.raises(ValueError, match="angles: no two projections are 180 degrees apart"):
        read(tmp_path / "proj.tiff", angle_range=(0, 90), center="estimate")
    (tmp_path / "cut.tiff").write_bytes((tmp_path / "proj.tiff").read_bytes()[:3000])
    with pytest.raises(ValueError, match=r"path: cannot read .*cut.tiff.* as TIFF"):
        read(tmp_path / "cut.tiff", angle_range=(0, 180))
    tifffile.imwrite(tmp_path / "one.tiff", np.ones((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"holds an array of shape \(4, 5\); expected a stack"):
        read(tmp_path / "one.tiff", angle_range=(0, 180))


@pytest.mark.parametrize("offset", [-3.3, 0.0, 2.6, 6.0])
def test_rotation_centre_of_a_shifted_sinogram(scan, offset):
    """The axis moved by ``offset`` columns is found to 0.05 column (sub-pixel peak)."""
    sino = nd_shift(scan["sino"], (0, 0, offset), order=3, mode="constant")
    centre = estimate_rotation_center(sino, scan["angles"])
    assert centre == pytest.approx((sino.shape[2] - 1) / 2 + offset, abs=0.05)
    assert estimate_rotation_center(sino[:, 0], scan["angles"]) == pytest.approx(centre, abs=0.1)  # one row suffices


def test_ct_from_file_with_the_estimated_centre(tmp_path, scan):
    """A scan whose axis is 2.6 columns off: FBP with the estimated centre equals FBP with the true one, 10 dB over none."""
    _write_counts(tmp_path, nd_shift(scan["sino"], (0, 0, 2.6), order=3, mode="constant"))
    kw = {"flat": tmp_path / "flat.tiff", "dark": tmp_path / "dark.tiff", "angle_range": (0, 180), "img_size": N}
    x, info = recon.ct_from_file(tmp_path / "proj.tiff", center="estimate", **kw)
    x_true_centre, _ = recon.ct_from_file(tmp_path / "proj.tiff", center=(scan["sino"].shape[2] - 1) / 2 + 2.6, **kw)
    x_off, _ = recon.ct_from_file(tmp_path / "proj.tiff", **kw)
    assert x.shape == (2, 1, N, N)
    assert info.extra["reader"]["shift"] == pytest.approx(-2.6, abs=0.05) and info.extra["reader"]["n_clipped"] == 0
    peak = float(scan["x"].max())
    p_est, p_true, p_off = (float(recon.metrics.psnr(v, scan["x"], peak).mean()) for v in (x, x_true_centre, x_off))
    # measured: 21.64, 21.65 and 10.17 dB (the two sub-pixel shifts cost 1.6 dB against the unshifted sinogram's 23.25)
    assert p_est == pytest.approx(p_true, abs=0.1) and p_est > p_off + 10, (p_est, p_true, p_off)


# ----------------------------------------------------------------------------- k-space

H, W, C, S = 32, 24, 4, 3


@pytest.fixture(scope="module")
def kspace() -> dict:
    """Three slices of 4-coil k-space of phantoms with simulated maps; a 1D mask (R = 2, 10 central columns)."""
    maps = simulated_coil_maps(C, (H, W))
    images = torch.stack([recon.phantoms.coule_like(H, seed=s)[0, 0, :, 4:28] for s in range(S)]).to(torch.complex64)
    k = MRIMixin.fft(maps[None] * images[:, None])  # (S, C, H, W)
    mask = cartesian_mask((H, W), 2, n_center=10, seed=0)[0]  # (W,): one flag per phase-encoding column
    return {"maps": maps, "images": images, "k": k.numpy(), "mask": mask.numpy()}


def _fastmri(path: Path, k: np.ndarray, mask: np.ndarray | None) -> Path:
    with h5py.File(path, "w") as fh:
        fh["kspace"] = k if mask is None else k * mask
        if mask is not None:
            fh["mask"] = mask.astype(bool)
        fh.attrs["acquisition"] = "CORPD_FBK"
        fh.attrs["max"] = 0.5
    return path


def test_fastmri_slice_gives_the_sense_operator(tmp_path, kspace):
    path = _fastmri(tmp_path / "f.h5", kspace["k"], kspace["mask"])
    assert detect_format(path) == "fastmri"
    ks = read(path, slice_index=2, coil_maps=kspace["maps"])
    assert isinstance(ks, KSpace) and ks.n_slices == S and ks.slice_index == 2 and not ks.maps_estimated
    assert ks.header == {"acquisition": "CORPD_FBK", "max": 0.5}
    assert ks.mask.shape == (H, W) and float(ks.mask.mean()) == pytest.approx(0.5)
    # the operator maps the true image of slice 2 to the stored k-space
    y = ks.physics.A_complex(kspace["images"][2][None, None])
    torch.testing.assert_close(y[:, :, 0], torch.from_numpy(kspace["k"][2] * kspace["mask"])[None], atol=1e-5, rtol=0)
    assert ks.y.shape == (1, 2, C, 1, H, W)


def test_fastmri_without_mask_estimates_the_maps_and_reconstructs(tmp_path, kspace):
    path = _fastmri(tmp_path / "f.h5", kspace["k"] * kspace["mask"], None)
    ks = read(path)  # the middle slice; the mask is where some coil has data
    assert ks.slice_index == 1 and ks.maps_estimated
    np.testing.assert_array_equal(ks.mask.numpy(), np.broadcast_to(kspace["mask"], (H, W)))
    torch.testing.assert_close((ks.coil_maps.abs() ** 2).sum(0), torch.ones(H, W), atol=1e-4, rtol=0)
    truth = kspace["images"][1].abs()
    x, info = recon.mri_from_file(path, method="tikhonov", alpha=1e-2)
    x_true_maps, _ = recon.mri_from_file(path, method="tikhonov", alpha=1e-2, coil_maps=kspace["maps"])
    err, err_true_maps = (float((to_complex(v)[0, 0].abs() - truth).norm() / truth.norm()) for v in (x, x_true_maps))
    assert err < 0.2 and err < 1.25 * err_true_maps, (err, err_true_maps)  # measured 0.170 and 0.148
    assert info.extra["reader"] == {"format": "fastmri", "slice_index": 1, "n_slices": S, "maps_estimated": True, "acceleration": 2.0}


def test_fastmri_single_coil_and_bad_files(tmp_path, kspace):
    single = _fastmri(tmp_path / "s.h5", kspace["k"][:, 0], kspace["mask"])
    ks = read(single)
    assert ks.kspace.shape == (1, H, W) and not ks.maps_estimated and bool((ks.coil_maps == 1).all())
    with h5py.File(tmp_path / "real.h5", "w") as fh:
        fh["kspace"] = np.zeros((2, H, W), np.float32)
    with pytest.raises(ValueError, match=r"'kspace' in .* is float32 \(2, 32, 24\); expected complex"):
        read(tmp_path / "real.h5")
    with h5py.File(tmp_path / "mask.h5", "w") as fh:
        fh["kspace"] = kspace["k"]
        fh["mask"] = np.ones(W + 1)
    with pytest.raises(ValueError, match=r"'mask' in .* has shape \(25,\); expected \(24,\) or \(32, 24\)"):
        read(tmp_path / "mask.h5")
    with h5py.File(tmp_path / "other.h5", "w") as fh:
        fh["image"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"holds image at its root; expected a dataset 'kspace' \(fastMRI\)"):
        read(tmp_path / "other.h5")
    with pytest.raises(ValueError, match=r"has no dataset 'kspace' \(found image\)"):
        read(tmp_path / "other.h5", format="fastmri")
    with pytest.raises(ValueError, match=r"slice_index: expected an index in \[0, 2\], received 3"):
        read(single, slice_index=3)
    full = _fastmri(tmp_path / "f.h5", kspace["k"], kspace["mask"])
    (tmp_path / "cut.h5").write_bytes(full.read_bytes()[:4000])
    with pytest.raises(ValueError, match=r"cannot read .*cut.h5.* as HDF5"):
        read(tmp_path / "cut.h5", format="fastmri")
    no_acs = kspace["k"] * (np.arange(W) % 2)  # every other column: no calibration region
    with pytest.raises(ValueError, match="cannot estimate coil maps .* pass coil_maps"):
        read(_fastmri(tmp_path / "noacs.h5", no_acs, None))


def _ismrmrd(path: Path, k: np.ndarray, mask: np.ndarray, *, contrast_of_last: int = 0, trajectory: str = "CARTESIAN") -> Path:
    """An ISMRMRD file written by the ismrmrd package: a noise scan, then the sampled lines of every slice."""
    ismrmrd = pytest.importorskip("ismrmrd", reason="ISMRMRD files need the optional extra regrecon[mri-raw]")
    xsd = ismrmrd.xsd
    space = xsd.encodingSpaceType(matrixSize=xsd.matrixSizeType(x=H, y=W, z=1), fieldOfView_mm=xsd.fieldOfViewMm(x=320.0, y=240.0, z=5.0))
    limits = xsd.encodingLimitsType(kspace_encoding_step_1=xsd.limitType(minimum=0, maximum=W - 1, center=W // 2),
                                    slice=xsd.limitType(minimum=0, maximum=k.shape[0] - 1, center=0))  # fmt: skip
    header = xsd.ismrmrdHeader(experimentalConditions=xsd.experimentalConditionsType(H1resonanceFrequency_Hz=63_500_000))
    header.encoding.append(xsd.encodingType(encodedSpace=space, reconSpace=space, encodingLimits=limits,
                                            trajectory=getattr(xsd.trajectoryType, trajectory)))  # fmt: skip
    dset = ismrmrd.Dataset(str(path), "dataset", create_if_needed=True)
    dset.write_xml_header(xsd.ToXML(header))
    noise = ismrmrd.Acquisition.from_array(np.ones((k.shape[1], H), np.complex64))
    noise.set_flag(ismrmrd.ACQ_IS_NOISE_MEASUREMENT)
    dset.append_acquisition(noise)
    lines = [(s, ky) for s in range(k.shape[0]) for ky in range(W) if mask[ky]]
    for n, (s, ky) in enumerate(lines):
        acq = ismrmrd.Acquisition.from_array(np.ascontiguousarray(k[s, :, :, ky]))
        acq.idx.kspace_encode_step_1, acq.idx.slice, acq.center_sample = ky, s, H // 2
        acq.idx.contrast = contrast_of_last if n == len(lines) - 1 else 0
        dset.append_acquisition(acq)
    dset.close()
    return path


def test_ismrmrd_equals_the_fastmri_layout_of_the_same_data(tmp_path, kspace):
    path = _ismrmrd(tmp_path / "m.h5", kspace["k"], kspace["mask"])
    assert detect_format(path) == "ismrmrd"
    ks = read(path, coil_maps=kspace["maps"])
    ref = read(_fastmri(tmp_path / "f.h5", kspace["k"], kspace["mask"]), coil_maps=kspace["maps"])
    assert ks.format == "ismrmrd" and ks.n_slices == S and ks.slice_index == 1
    torch.testing.assert_close(ks.kspace, ref.kspace)
    torch.testing.assert_close(ks.mask, ref.mask)
    np.testing.assert_allclose(ks.affine, axial_affine((5.0, 10.0, 10.0)))  # field of view / matrix, mm
    assert ks.header["n_acquisitions"] == S * int(kspace["mask"].sum())  # the noise scan is left out


def test_ismrmrd_bad_files(tmp_path, kspace):
    with pytest.raises(ValueError, match=r"contrast \[0, 1\]; expected one"):
        read(_ismrmrd(tmp_path / "c.h5", kspace["k"], kspace["mask"], contrast_of_last=1))
    with pytest.raises(ValueError, match="radial trajectory .* expected 2D Cartesian"):
        read(_ismrmrd(tmp_path / "r.h5", kspace["k"], kspace["mask"], trajectory="RADIAL"))
    with h5py.File(tmp_path / "f.h5", "w") as fh:
        fh["kspace"] = kspace["k"]
    with pytest.raises(ValueError, match=r"f.h5' has no ISMRMRD header 'dataset/xml'"):
        read(tmp_path / "f.h5", format="ismrmrd")


# ----------------------------------------------------------------------------- dispatch


def test_dispatch_by_suffix_and_content(tmp_path):
    assert detect_format(sample("CT_small.dcm")) == "dicom"
    assert detect_format([sample("CT_small.dcm")]) == "dicom"
    (tmp_path / "x.dat").write_bytes(b"\0" * 300)
    with pytest.raises(ValueError, match=r"cannot tell the format of .*x.dat.*format= one of dicom, nifti, tiff, fastmri, ismrmrd"):
        read(tmp_path / "x.dat")
    with pytest.raises(ValueError, match="path: no such file or folder"):
        read(tmp_path / "missing.nii")
    with pytest.raises(ValueError, match="format: expected one of"):
        read(sample("CT_small.dcm"), format="jpeg")


# ----------------------------------------------------------------------------- property tests of the argument checks

NOT_A_PATH = st.one_of(
    st.integers(), st.floats(), st.none(), st.booleans(), st.binary(max_size=8), st.dictionaries(st.text(max_size=3), st.integers())
)


@given(NOT_A_PATH)
@settings(max_examples=30, deadline=None, database=None)
def test_read_rejects_what_is_not_a_path(value):
    with pytest.raises(TypeError, match="path: expected a path"):
        read(value)


@given(st.text(max_size=12).filter(lambda s: s not in FORMATS))
@settings(max_examples=30, deadline=None, database=None)
def test_read_rejects_unknown_formats(fmt):
    with pytest.raises(ValueError, match=r"format: expected one of \('dicom', 'nifti', 'tiff', 'fastmri', 'ismrmrd'\)"):
        read(sample("CT_small.dcm"), format=fmt)


@given(st.text(alphabet="abcxyz0123456789", min_size=1, max_size=6))
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_unknown_suffix_is_named(tmp_path, suffix):
    path = tmp_path / f"file.{suffix}"
    path.write_bytes(b"x" * 200)
    with pytest.raises(ValueError, match=rf"cannot tell the format of .*file\.{suffix}"):
        read(path)


@given(arrays(np.float64, st.integers(1, 40), elements=st.one_of(st.floats(-10, 1e4), st.just(math.nan))), st.floats(1e-8, 0.5))
@settings(max_examples=60, deadline=None, database=None)
def test_line_integrals_are_finite_and_count_every_clip(p, floor):
    flat, dark = 1000.0, 5.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division or log warning escapes
        li, n = line_integrals(p, np.array(flat), np.array(dark), min_transmission=floor)
    t = (p - dark) / (flat - dark)
    assert n == int(np.sum(~(t >= floor)))
    assert np.all(np.isfinite(li)) and li.max() <= -math.log(floor) * (1 + 1e-6) + 1e-6


@given(st.one_of(st.floats(allow_nan=True), st.integers(-5, 5), st.just(1.0), st.just(0.0)))
@settings(max_examples=40, deadline=None, database=None)
def test_min_transmission_outside_the_unit_interval_is_refused(value):
    if isinstance(value, float) and 0 < value < 1:
        return
    with pytest.raises(ValueError, match="min_transmission: expected"):
        line_integrals(np.ones(3), min_transmission=value)


@pytest.fixture(scope="module")
def small_stack(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("stack") / "p.tiff"
    tifffile.imwrite(path, np.full((6, 2, 8), 0.5, np.float32))
    return path


BAD_RANGES = st.one_of(
    st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.floats(allow_nan=True, allow_infinity=True)).filter(
        lambda r: not all(math.isfinite(v) for v in r) or r[0] == r[1]
    ),
    st.lists(st.floats(-10, 10), max_size=4).filter(lambda r: len(r) != 2),
    st.text(max_size=4),
)


@given(BAD_RANGES)
@settings(max_examples=40, deadline=None, database=None)
def test_bad_angle_ranges_are_named(small_stack, value):
    with pytest.raises(ValueError, match="angle_range: expected"):
        read_projections(small_stack, angle_range=value)


@given(st.integers(0, 100).filter(lambda n: n != 6))
@settings(max_examples=20, deadline=None, database=None)
def test_bad_angle_counts_are_named(small_stack, n):
    with pytest.raises(ValueError, match=rf"angles: expected 6 finite angles .* received {n}"):
        read_projections(small_stack, angles=list(range(n)))


@given(st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=7 + 1e-9), st.integers(max_value=-1), st.integers(min_value=8)))
@settings(max_examples=30, deadline=None, database=None)
def test_centres_off_the_detector_are_named(small_stack, value):
    with pytest.raises(ValueError, match=r"center: expected a detector column in \[0, 7\]"):
        read_projections(small_stack, angle_range=(0, 180), center=value)


@given(st.one_of(st.text(max_size=5).filter(lambda s: s != "estimate"), st.booleans(), st.lists(st.integers(), max_size=2)))
@settings(max_examples=30, deadline=None, database=None)
def test_bad_centres_are_named(small_stack, value):
    with pytest.raises(TypeError, match="center: expected None, 'estimate' or a number"):
        read_projections(small_stack, angle_range=(0, 180), center=value)


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=3), st.floats(), st.text(max_size=3)))
@settings(max_examples=30, deadline=None, database=None)
def test_bad_slice_indices_are_named(tmp_path_factory, value):
    path = tmp_path_factory.getbasetemp() / "slices.h5"
    if not path.exists():
        with h5py.File(path, "w") as fh:
            fh["kspace"] = np.ones((3, 1, 4, 4), np.complex64)
    with pytest.raises((TypeError, ValueError), match="slice_index: expected"):
        read(path, slice_index=value)
