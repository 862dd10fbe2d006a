"""Standard files out (recon.writers) and the command line on scanner files.

Round trips through our writers and the formats' own readers (nibabel, pydicom); a real CT slice
(the pydicom wheel's CT_small.dcm, never downloaded) projected by our CT operator, reconstructed,
written as a derived DICOM series and read again; atomic writes (a failure injected mid-write
leaves nothing behind and the previous output intact); ``regrecon reconstruct`` on TIFF, fastMRI,
DICOM and NIfTI inputs with NIfTI and DICOM outputs; the README's per-format config examples.
"""

from __future__ import annotations

import json
import math
import os
import re
import tomllib
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pydicom.data
import pytest
import tifffile
import torch
from deepinv.physics import BlurFFT
from deepinv.physics.functional.blur import gaussian_blur
from deepinv.utils import MRIMixin

import recon
from operators import ParallelBeamCT
from operators.coil_maps import simulated_coil_maps
from operators.kspace_masks import cartesian_mask
from operators.mri import to_complex
from recon import cli
from recon.config import load_config
from recon.io import provenance
from recon.readers import Volume, attenuation_to_hu, axial_affine, hu_to_attenuation, read
from recon.writers import as_volume, output_format, write, write_dicom, write_nifti

ROOT = Path(__file__).resolve().parents[1]
PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"


def ct_small() -> Path:
    path = Path(pydicom.data.get_testdata_file("CT_small.dcm", download=False))
    assert path.is_relative_to(PYDICOM_FILES), path  # inside the installed wheel: nothing is downloaded
    return path


def _volume(shape=(3, 5, 4), seed=0) -> Volume:
    rng = np.random.default_rng(seed)
    affine = np.array([[0.0, 0.0, -0.7, 10.0], [0.0, -0.6, 0.0, 20.0], [2.0, 0.0, 0.0, -5.0], [0, 0, 0, 1]])
    return Volume(data=rng.uniform(-100, 300, shape).astype(np.float32), affine=affine, format="nifti", path=Path("x"))


# ----------------------------------------------------------------------------- NIfTI


def test_nifti_round_trip_keeps_values_geometry_and_provenance(tmp_path):
    vol = _volume()
    attrs = provenance("tv", {"alpha": 0.01})
    path = write_nifti(tmp_path / "v.nii.gz", vol, provenance=attrs)
    back = read(path)
    np.testing.assert_array_equal(back.data, vol.data)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)
    img = nib.load(path)  # the format's own reader: (i, j, k) = (c, r, k), sform code 1 (scanner), mm
    assert img.shape == (4, 5, 3) and int(img.header["sform_code"]) == 1 and img.header.get_xyzt_units()[0] == "mm"
    assert np.asanyarray(img.dataobj)[3, 2, 1] == vol.data[1, 2, 3]
    (ext,) = img.header.extensions
    assert json.loads(ext.get_content())["params"] == '{"alpha": 0.01}'
    assert back.header["descrip"].startswith("regrecon ") and back.header["descrip"].endswith(" tv")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual mode of a new file, not the temporary file's 0600


def test_nifti_keeps_complex_images_and_refuses_bad_targets(tmp_path):
    z = (np.arange(24) + 1j * np.arange(24)[::-1]).reshape(2, 3, 4)
    back = read(write_nifti(tmp_path / "z.nii", z))
    assert back.data.dtype == np.complex64 and np.allclose(back.data, z) and np.allclose(back.affine, axial_affine())
    with pytest.raises(ValueError, match=r"output: '.*z.nii' exists; expected a new path \(or overwrite=True"):
        write_nifti(tmp_path / "z.nii", z)
    write_nifti(tmp_path / "z.nii", 2 * z, overwrite=True)
    assert np.allclose(read(tmp_path / "z.nii").data, 2 * z)
    with pytest.raises(ValueError, match=r"output: expected a file ending in .nii or .nii.gz, received '.*z.img'"):
        write_nifti(tmp_path / "z.img", z)
    with pytest.raises(ValueError, match=r"affine: expected a finite invertible \(4, 4\) matrix"):
        write_nifti(tmp_path / "a.nii", z, affine=np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"x: expected \(H, W\), \(D, H, W\), \(B, 1, H, W\) or \(B, 2, E, H, W\)"):
        write_nifti(tmp_path / "a.nii", np.zeros((2, 3, 4, 5)))
    with pytest.raises(TypeError, match="x: expected a torch.Tensor or numpy array, received list"):
        write_nifti(tmp_path / "a.nii", [[1.0]])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["z.nii"]


def test_nifti_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    write_nifti(tmp_path / "v.nii.gz", _volume())
    before = (tmp_path / "v.nii.gz").read_bytes()

    def half_written(img, filename):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", half_written)
    with pytest.raises(OSError, match="disk full"):
        write_nifti(tmp_path / "v.nii.gz", _volume(seed=1), overwrite=True)
    with pytest.raises(OSError, match="disk full"):
        write_nifti(tmp_path / "new.nii.gz", _volume(seed=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.nii.gz"] and (tmp_path / "v.nii.gz").read_bytes() == before


# ----------------------------------------------------------------------------- DICOM


def test_dicom_series_is_derived_from_its_source(tmp_path):
    src_vol = read(ct_small())
    src = pydicom.dcmread(ct_small())
    data = np.stack([src_vol.data[0], src_vol.data[0][::-1], src_vol.data[0].T])  # three slices on the source's grid
    attrs = provenance("graphla", {"psi": "tv", "max_iter": 300})
    folder = write_dicom(tmp_path / "series", data, provenance=attrs, source=src_vol, affine=src_vol.affine)
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == ["IM0001.dcm", "IM0002.dcm", "IM0003.dcm"]
    slices = [pydicom.dcmread(f) for f in files]
    for tag in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID"):
        assert all(s.get(tag) == src.get(tag) for s in slices), tag
    assert len({s.SeriesInstanceUID for s in slices}) == 1 and slices[0].SeriesInstanceUID != src.SeriesInstanceUID
    assert len({s.SOPInstanceUID for s in slices} | {src.SOPInstanceUID}) == 4
    first = slices[0]
    assert first.SOPClassUID == pydicom.uid.CTImageStorage and first.Modality == "CT" and list(first.ImageType) == ["DERIVED", "SECONDARY"]
    assert first.SourceImageSequence[0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    assert first.SeriesDescription == "regrecon graphla" and first.SoftwareVersions == f"regrecon {attrs['regrecon_version']}"
    assert '"psi": "tv"' in first.ImageComments and '"max_iter": 300' in first.DerivationDescription
    back = read(folder)
    slope = float(first.RescaleSlope)
    np.testing.assert_allclose(back.data, data, atol=0.51 * slope + 1e-3)
    np.testing.assert_allclose(back.affine[:, 1:], src_vol.affine[:, 1:], atol=1e-5)  # rows, columns, origin
    np.testing.assert_allclose(back.affine[:, 0], src_vol.affine[:, 0], atol=1e-5)  # slice step: the source's thickness
    assert back.header["provenance"]["method"] == "graphla" and back.header["provenance"]["params"] == attrs["params"]


def test_dicom_without_source_is_a_new_study(tmp_path):
    vol = _volume()
    folder = write_dicom(tmp_path / "s", vol, provenance=provenance("fbp", {}))
    ds = pydicom.dcmread(folder / "IM0001.dcm")
    assert ds.Modality == "OT" and ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage and ds.PatientID == ""
    back = read(folder)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-6)
    np.testing.assert_allclose(back.data, vol.data, atol=0.51 * float(ds.RescaleSlope) + 1e-3)
    with pytest.raises(TypeError, match="volume: expected a real volume .* pass np.abs"):
        write_dicom(tmp_path / "c", vol.data + 1j, provenance=provenance("fbp", {}))
    sheared = vol.affine.copy()
    sheared[0, 1] = 0.3
    with pytest.raises(ValueError, match="affine: the row and column axes make .* degrees; expected 90"):
        write_dicom(tmp_path / "c", vol, provenance=provenance("fbp", {}), affine=sheared)
    with pytest.raises(ValueError, match=r"output: '.*s' exists; expected a new path"):
        write_dicom(tmp_path / "s", vol, provenance=provenance("fbp", {}))
    with pytest.raises(TypeError, match="source: expected a Volume, a pydicom Dataset, a DICOM file path or None"):
        write_dicom(tmp_path / "c", vol, provenance=provenance("fbp", {}), source=3)
    with pytest.raises(TypeError, match="provenance: expected the mapping of recon.io.provenance"):
        write_dicom(tmp_path / "c", vol, provenance={"params": "{}"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_dicom_failure_mid_series_leaves_the_previous_series(tmp_path, monkeypatch):
    vol = _volume()
    folder = write_dicom(tmp_path / "s", vol, provenance=provenance("fbp", {}))
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    real, calls = pydicom.Dataset.save_as, []

    def fails_on_second_slice(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pydicom.Dataset, "save_as", fails_on_second_slice)
    with pytest.raises(OSError, match="disk full"):
        write_dicom(tmp_path / "s", _volume(seed=2), provenance=provenance("tv", {}), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    assert {f.name: f.read_bytes() for f in folder.iterdir()} == before
    monkeypatch.undo()
    write_dicom(tmp_path / "s", _volume(seed=2), provenance=provenance("tv", {}), overwrite=True)
    assert read(folder).header["provenance"]["method"] == "tv" and sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_real_ct_slice_projected_reconstructed_written_and_read_again(tmp_path):
    """CT_small (128^2, 0.66 mm) -> attenuation -> 90 parallel-beam views -> FBP -> HU -> derived DICOM -> read."""
    vol = read(ct_small())
    pixel = vol.spacing[2]
    mu = torch.from_numpy(hu_to_attenuation(vol.data, pixel))[:, None]  # (1, 1, 128, 128)
    physics = ParallelBeamCT(128, torch.arange(90, dtype=torch.float64) * math.pi / 90, backend="numba")
    x, info = recon.fbp(physics, physics.A(mu), filter="hann")
    hu = attenuation_to_hu(x, pixel)
    folder = write(tmp_path / "fbp", hu, method="fbp", params=info.params, source=vol, affine=vol.affine)
    back = read(folder)
    ds = pydicom.dcmread(folder / "IM0001.dcm")
    assert ds.PatientID == vol.source.PatientID and ds.StudyInstanceUID == vol.source.StudyInstanceUID
    assert back.header["provenance"]["params"] == '{"filter": "hann"}' and back.units == "HU"
    np.testing.assert_allclose(back.data, hu[:, 0].numpy(), atol=0.51 * float(ds.RescaleSlope) + 1e-2)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)
    truth = torch.from_numpy(vol.data)[:, None]
    peak = float(truth.max() - truth.min())
    assert float(recon.metrics.psnr(torch.from_numpy(back.data)[:, None], truth, peak)[0]) > 32.5  # measured 33.31 dB (FBP alone)


# ----------------------------------------------------------------------------- write() and as_volume


def test_write_dispatches_by_suffix(tmp_path):
    x = torch.rand(2, 1, 6, 5)
    info = recon.result.ReconInfo(params={"alpha": 0.1})
    h5 = write(tmp_path / "r.h5", x, method="tv", params=info.params, info=info)
    with h5py.File(h5) as fh:
        np.testing.assert_array_equal(fh["x"][()], x.numpy())
        assert fh.attrs["method"] == "tv"
    with pytest.raises(ValueError, match=r"output: '.*r.h5' exists"):
        write(tmp_path / "r.h5", x, method="tv")
    assert read(write(tmp_path / "r.nii", x, method="tv")).data.shape == (2, 6, 5)
    z = torch.randn(1, 2, 3, 6, 5)  # deepinv's complex MRI layout: 3 echoes
    back = read(write(tmp_path / "mag", z, method="tikhonov"))
    assert back.data.shape == (3, 6, 5) and back.header["provenance"]["image"] == "magnitude"
    np.testing.assert_allclose(back.data, np.abs(as_volume(z)), atol=1e-3)
    assert output_format("a.hdf5") == "h5" and output_format("a.nii.gz") == "nifti" and output_format("series") == "dicom"
    with pytest.raises(ValueError, match=r"output: format 'nifti' expects a name ending in .nii or .nii.gz, received 'a.h5'"):
        output_format("a.h5", "nifti")
    with pytest.raises(ValueError, match="format: expected one of h5, nifti, dicom, received 'png'"):
        output_format("a.png", "png")


# ----------------------------------------------------------------------------- the command line on scanner files


def _run(config: Path, *extra: str) -> int:
    return cli.main(["reconstruct", str(config), "--no-progress", *extra])


def test_cli_tiff_projections_to_nifti(tmp_path, capsys):
    n = 24
    physics = ParallelBeamCT(n, torch.linspace(0, math.pi, 31, dtype=torch.float64), backend="numba")
    x = 0.05 * recon.phantoms.coule_like(n, seed=2)
    sino = physics.A(x)[0].numpy().transpose(1, 0, 2)  # (angles, 1 row, detectors)
    tifffile.imwrite(tmp_path / "proj.tiff", (1000 * np.exp(-sino)).astype(np.float32))
    tifffile.imwrite(tmp_path / "flat.tiff", np.full(sino.shape[1:], 1000.0, np.float32))
    (tmp_path / "scan.toml").write_text(
        '[input]\npath = "proj.tiff"\nflat = "flat.tiff"\nangle_range = [0, 180]\ncenter = "estimate"\npixel_size = 0.5\n'
        f'[geometry]\nimg_size = {n}\n[method]\nname = "fbp"\n[output]\npath = "fbp.nii.gz"\n'
    )  # fmt: skip
    assert _run(tmp_path / "scan.toml") == 0
    out = capsys.readouterr().out
    assert "input: 31 projections of 1 x 34, rotation centre 16.5" in out and "0 transmission values clipped" in out
    back = read(tmp_path / "fbp.nii.gz")
    x_api, _ = recon.ct_from_file(tmp_path / "proj.tiff", flat=tmp_path / "flat.tiff", angle_range=(0, 180), center="estimate", img_size=n)
    np.testing.assert_allclose(back.data, x_api[:, 0].numpy(), atol=1e-6)
    assert back.spacing == pytest.approx((0.5, 0.5, 0.5))
    (ext,) = nib.load(tmp_path / "fbp.nii.gz").header.extensions
    prov = json.loads(ext.get_content())
    assert prov["method"] == "fbp" and prov["input_file"].endswith("proj.tiff") and len(prov["input_sha256"]) == 64


def test_cli_fastmri_to_dicom_magnitude(tmp_path):
    H, W = 32, 24
    maps = simulated_coil_maps(4, (H, W))
    image = recon.phantoms.coule_like(H, seed=1)[0, 0, :, 4:28].to(torch.complex64)
    mask = cartesian_mask((H, W), 2, n_center=10, seed=0)[0]
    with h5py.File(tmp_path / "k.h5", "w") as fh:
        fh["kspace"] = (MRIMixin.fft(maps * image) * mask).numpy()[None]
        fh["mask"] = mask.numpy()
    (tmp_path / "mri.toml").write_text('[input]\npath = "k.h5"\n[method]\nname = "tikhonov"\nalpha = 0.01\n[output]\nformat = "dicom"\n')
    assert _run(tmp_path / "mri.toml") == 0
    back = read(tmp_path / "mri")  # default output: the config's name, a folder
    x_api, _ = recon.mri_from_file(tmp_path / "k.h5", method="tikhonov", alpha=0.01)
    magnitude = to_complex(x_api)[0].abs().numpy()
    slope = float(pydicom.dcmread(tmp_path / "mri" / "IM0001.dcm").RescaleSlope)
    np.testing.assert_allclose(back.data, magnitude, atol=0.51 * slope + 1e-6)
    assert back.header["provenance"]["image"] == "magnitude" and back.modality == "OT"
    np.testing.assert_allclose(back.spacing, (1.0, 1.0, 1.0))  # no field of view in the file: 1 mm


def test_cli_dicom_series_deblurred_to_a_derived_series(tmp_path):
    src = pydicom.dcmread(ct_small())
    series = tmp_path / "series"
    series.mkdir()
    for k in range(2):
        ds = src.copy()
        ds.ImagePositionPatient = [-158.1, -179.0, -75.7 + 5.0 * k]
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(series / f"{k}.dcm")
    (tmp_path / "deblur.toml").write_text(
        '[input]\npath = "series"\n[geometry]\noperator = "blur"\nimg_size = 128\nsigma = 1.0\n'
        '[method]\nname = "tv"\nalpha = 1.0\nmax_iter = 5\nnonneg = false\n[output]\npath = "tv"\n'
    )  # fmt: skip
    assert _run(tmp_path / "deblur.toml") == 0
    back = read(tmp_path / "tv")
    assert back.data.shape == (2, 128, 128) and back.source.PatientID == src.PatientID and back.modality == "CT"
    np.testing.assert_allclose(back.affine, read(series).affine, atol=1e-5)
    vol = read(series)
    physics = BlurFFT(img_size=(1, 128, 128), filter=gaussian_blur(sigma=1.0))
    x_api, _ = recon.tv(physics, vol.images(), alpha=1.0, max_iter=5, nonneg=False, progress=False)
    slope = float(back.source.RescaleSlope)
    np.testing.assert_allclose(back.data, x_api[:, 0].numpy(), atol=0.51 * slope + 1e-3)
    # the same from NIfTI to NIfTI
    write_nifti(tmp_path / "v.nii.gz", vol)
    config = (tmp_path / "deblur.toml").read_text()
    (tmp_path / "n.toml").write_text(config.replace('"series"', '"v.nii.gz"').replace('path = "tv"', 'path = "tv.nii"'))
    assert _run(tmp_path / "n.toml") == 0
    np.testing.assert_allclose(read(tmp_path / "tv.nii").data, x_api[:, 0].numpy(), atol=1e-3)


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        ('[input]\npath = "k.h5"\n[geometry]\noperator = "mri"\n[method]\nname = "tikhonov"\nalpha = 0.1\n',
         "geometry: the SENSE operator comes from the fastmri file (mask, coil maps); expected no [geometry] table"),
        ('[input]\npath = "p.tiff"\nangle_range = [0, 180]\n[geometry]\nn_angles = 5\n[method]\nname = "fbp"\n',
         "geometry.n_angles: comes from the projection file (value 5); expected only operator, img_size, backend"),
        ('[input]\npath = "p.tiff"\nslice_index = 1\n[method]\nname = "fbp"\n',
         "input.slice_index: unknown key (value 1); expected one of path, format, flat, dark"),
        ('[input]\npath = "p.tiff"\n[method]\nname = "fbp"\n', "input: angles, angle_range: expected exactly one"),
        ('[input]\npath = "p.tiff"\nangle_range = [0, 180]\n[method]\nname = "fbp"\n[output]\npath = "o.nii"\nformat = "dicom"\n',
         "output.format: output: format 'dicom' expects a folder name without .h5/.nii, received"),
        ('[input]\npath = "p.tiff"\nformat = "png"\n[method]\nname = "fbp"\n', "input.format: expected one of array, dicom, nifti"),
        ('[input]\npath = "scan.raw"\n[method]\nname = "fbp"\n', "input: expected a file ending in .npy, .npz, .h5, .hdf5 or a scanner file"),
        ('[input]\npath = "missing.nii"\n[method]\nname = "fbp"\n', "input: no such file"),
        ('[input]\npath = "p.tiff"\nangle_range = [0, 180]\n[method]\nname = "fbp"\n[output]\npath = "p.nii"\noverwrite = false\n',
         "output: '{tmp}/p.nii' exists; expected a new path"),
    ],
)  # fmt: skip
def test_cli_scanner_file_errors(tmp_path, capsys, config, needle):
    tifffile.imwrite(tmp_path / "p.tiff", np.full((5, 1, 8), 0.5, np.float32))
    (tmp_path / "p.nii").write_bytes(b"old result")
    with h5py.File(tmp_path / "k.h5", "w") as fh:
        fh["kspace"] = np.ones((1, 1, 4, 4), np.complex64)
    (tmp_path / "c.toml").write_text(config)
    assert _run(tmp_path / "c.toml") == 2
    err = capsys.readouterr().err
    assert err.startswith("regrecon: error: ") and needle.format(tmp=tmp_path) in err, err
    assert (tmp_path / "p.nii").read_bytes() == b"old result"


def test_cli_batch_needs_an_hdf5_store(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "p.tiff", np.full((5, 2, 8), 0.5, np.float32))
    (tmp_path / "c.toml").write_text('[input]\npath = "p.tiff"\nangle_range = [0, 180]\n[method]\nname = "fbp"\n')
    assert _run(tmp_path / "c.toml", "--batch", "-o", str(tmp_path / "r.nii")) == 2
    assert "output: --batch streams the results into an HDF5 store; expected a .h5 output" in capsys.readouterr().err


def _readme_format_blocks() -> dict[str, str]:
    """The README's per-format config examples: fenced blocks opened with ```toml <format>."""
    text = (ROOT / "README.md").read_text()
    return {m.group(1): m.group(2) for m in re.finditer(r"^```toml (\w+)\n(.*?)^```", text, re.S | re.M)}


def test_readme_shows_one_checked_config_per_format(tmp_path):
    blocks = _readme_format_blocks()
    assert set(blocks) == {"dicom", "nifti", "tiff", "fastmri", "ismrmrd"}
    for fmt, block in blocks.items():
        (tmp_path / f"{fmt}.toml").write_text(block)
        cfg = load_config(tmp_path / f"{fmt}.toml")  # explicit formats: the files need not exist to check the config
        assert cfg.input_format == fmt == tomllib.loads(block)["input"]["format"]
        assert cfg.output_format in ("nifti", "dicom"), fmt
