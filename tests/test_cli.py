"""The command line: help, sampling from a local checkpoint, clear errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from innout.cli import main
from innout.eg3d import save_generator

from .conftest import REPO_ROOT


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "innout", "--help"], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0
    for command in ("download", "convert", "sample"):
        assert command in out.stdout


def test_sample_from_local_checkpoint(tiny_generator, tmp_path):
    ckpt = save_generator(tiny_generator, tmp_path / "tiny.safetensors")
    out = tmp_path / "face.png"
    assert main(["sample", "--checkpoint", str(ckpt), "-o", str(out), "--seed", "3", "--yaw", "0.3"]) == 0
    import imageio.v3 as iio

    image = iio.imread(out)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8 and image.std() > 0


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "nope.pkl"), "-o", str(tmp_path / "x.png")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_convert(tiny_generator, tmp_path):
    from .official_format import official_pickle_bytes

    pkl = tmp_path / "net.pkl"
    pkl.write_bytes(official_pickle_bytes(tiny_generator))
    out = tmp_path / "net.safetensors"
    assert main(["convert", str(pkl), "-o", str(out)]) == 0
    assert out.is_file()
