"""The command line: help, sampling from a local checkpoint, clear errors."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys

import numpy as np
import pytest

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
    from .hostile.official_format import official_pickle_bytes

    pkl = tmp_path / "net.pkl"
    pkl.write_bytes(official_pickle_bytes(tiny_generator))
    out = tmp_path / "net.safetensors"
    assert main(["convert", str(pkl), "-o", str(out)]) == 0
    assert out.is_file()


def _options_of_every_command():
    """(command, option, action) for every option of every command and sub-command."""
    from innout.cli import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, [*path, name])
            else:
                yield " ".join(path), action

    yield from walk(build_parser(), [])


def test_every_numeric_option_has_a_documented_range():
    """No option takes a bare int or float: each checks finiteness and its range (``innout.numbers.Range``)."""
    unchecked = []
    for command, action in _options_of_every_command():
        if action.type in (int, float):
            unchecked.append(f"{command} {'/'.join(action.option_strings) or action.dest}")
    assert not unchecked, f"options without a range check: {unchecked}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["render", "s.safetensors", "-o", "o.mp4", "--orbit", "--fps", "0"], "--fps: must be a finite number > 0"),
        (["render", "s.safetensors", "-o", "o.mp4", "--orbit", "--fps", "nan"], "--fps"),
        (["render", "s.safetensors", "-o", "o.mp4", "--orbit", "--fps", "1000"], "<= 240"),
        (["render", "s.safetensors", "-o", "o.mp4", "--orbit", "--views", "0"], "--views: must be an integer >= 1"),
        (["render", "s.safetensors", "-o", "o.mp4", "--orbit", "--views", "99999999"], "--views"),
        (["render", "s.safetensors", "-o", "o.mp4", "--orbit", "--path-yaw", "inf"], "--path-yaw"),
        (["render", "s.safetensors", "-o", "o.mp4", "--orbit", "--path-pitch", "95"], "--path-pitch"),
        (["render", "s.safetensors", "-o", "o.png", "--frame", "-1"], "--frame: must be an integer >= 0"),
        (["render", "s.safetensors", "-o", "o.png", "--outside-scale", "nan"], "--outside-scale"),
        (["mesh", "s.safetensors", "-o", "o.ply", "--level", "inf"], "--level: must be a finite number"),
        (["fit", "x.mp4", "--max-frames", "0"], "--max-frames: must be an integer >= 1"),
        (["fit", "x.mp4", "--seed", "-1"], "--seed"),
        (["fit", "x.mp4", "--stride", "0"], "--stride"),
        (["prepare", "x.mp4", "out", "--landmark-smoothing", "nan"], "--landmark-smoothing"),
        (["prepare", "x.mp4", "out", "--max-gap", "-1"], "--max-gap"),
        (["sample", "--pitch", "nan"], "--pitch"),
        (["sample", "--truncation", "-inf"], "--truncation"),
        (["directions", "learn", "x", "--labeler", "yaw", "--fraction", "0.9"], "--fraction"),
        (["directions", "learn", "x", "--labeler", "yaw", "--yaw-std", "nan"], "--yaw-std"),
        (["directions", "learn", "x", "--labeler", "yaw", "--batch", "0"], "--batch"),
    ],
)
def test_bad_numeric_options_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as usage:
        main(argv)
    assert usage.value.code == 2
    assert message in capsys.readouterr().err


def test_camera_and_edit_numbers_are_checked_before_the_scene_is_read(tmp_path, capsys):
    missing = str(tmp_path / "no-scene.safetensors")  # never opened: the numbers are refused first
    for extra, message in (
        (["--camera", "nan,0"], "--camera: the yaw must be a finite number"),
        (["--camera", "0,100"], "--camera: the pitch must be a finite number >= -90 and <= 90"),
        (["--camera", "10"], "--camera takes YAW,PITCH"),
        (["--edit", "smile=inf"], "--edit smile: the strength must be a finite number"),
    ):
        assert main(["render", missing, "-o", str(tmp_path / "o.png"), *extra]) == 2
        assert message in capsys.readouterr().err


def test_range_type_and_messages():
    from innout.numbers import NumberError, Range

    fps = Range(0, 240, lo_open=True, unit="frames per second")
    assert fps.describe() == "a finite number > 0 and <= 240 (frames per second)"
    assert fps.check(np.float32(30), "fps") == 30.0 and fps.parse(" 25 ", "fps") == 25.0
    for bad in (0, -1, math.nan, math.inf, 241, 10**400, True, "25", None):
        with pytest.raises(NumberError, match="fps must be"):
            fps.check(bad, "fps")
    count = Range(1, None, integer=True, optional=True)
    assert count.check(3.0, "n") == 3 and count.check(None, "n") is None and count.parse("none", "n") is None
    with pytest.raises(NumberError, match=r"n must be an integer >= 1, or none, got '2\.5'"):
        count.parse("2.5", "n")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^must be a finite number > 0 .* got 'nan'$"):
        fps.argtype()("nan")


def test_render_finds_the_faces_demos_directions_where_the_app_does(tmp_path, capsys):
    """The bundled example scene (fitted with the world's prior) renders with the app's smile slider from the
    command line, and an edit nobody has says how to add one (--directions)."""
    import imageio.v3 as iio
    import numpy as np

    from innout.cli import main

    scene = REPO_ROOT / "assets" / "examples" / "world_sunglasses_scene.safetensors"
    if not scene.is_file():
        pytest.skip(f"{scene} is missing")
    plain, smiling = tmp_path / "plain.png", tmp_path / "smile.png"
    assert main(["render", str(scene), "-o", str(plain), "--quality", "preview", "--frame", "4"]) == 0
    assert main(["render", str(scene), "-o", str(smiling), "--quality", "preview", "--frame", "4", "--edit",
                 "smile=2"]) == 0  # fmt: skip
    change = np.abs(iio.imread(smiling).astype(float) - iio.imread(plain).astype(float)).mean()
    assert change > 0.5, change
    assert main(["render", str(scene), "-o", str(plain), "--edit", "frown=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown edit(s) frown; available: " in err and "smile" in err


def test_fit_in_slices_on_the_command_line(tmp_path, capsys):
    """`fit --time-budget S`: a slice prints a line starting 'unfinished:' and exits with 3; the same command
    again continues, and the last slice writes the scene an uninterrupted fit writes."""
    import torch

    from innout.cli import main
    from innout.scene import load_scene

    clip = REPO_ROOT / "assets" / "examples" / "world_sunglasses"  # EG3D's dataset layout: no face detection
    if not clip.is_dir():
        pytest.skip(f"{clip} is missing")
    settings = ["init.samples=2", "init.batch=2", "inversion.subset_epochs=1", "inversion.all_epochs=1",
                "joint.iterations=6", "joint.checkpoint_every=2", "joint.bootstrap_steps=2"]  # fmt: skip
    base = ["fit", str(clip), "--random-generator", "tiny", "--max-frames", "2", "--device", "cpu",
            *[a for s in settings for a in ("--set", s)]]  # fmt: skip
    straight = tmp_path / "straight.safetensors"
    assert main([*base, "--workdir", str(tmp_path / "a"), "-o", str(straight)]) == 0
    sliced = tmp_path / "sliced.safetensors"
    command = [*base, "--workdir", str(tmp_path / "b"), "-o", str(sliced), "--time-budget", "0"]
    codes = []
    while not codes or codes[-1] == 3:
        codes.append(main(command))
        assert len(codes) < 20, codes
    out = capsys.readouterr().out
    # a slice per step of the stages that keep checkpoints (inversion: 4 steps, joint: 6), the last one ending the fit
    assert codes == [3] * 8 + [0], codes
    assert out.count("unfinished: stopped in joint at step ") == 5 and "run the same command again" in out
    a, b = load_scene(straight), load_scene(sliced)
    torch.testing.assert_close(b.ws, a.ws, rtol=0, atol=0)
    for name, value in a.ood.state_dict().items():
        torch.testing.assert_close(b.ood.state_dict()[name], value, rtol=0, atol=0)
