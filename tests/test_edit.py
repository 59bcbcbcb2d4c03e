"""Edit directions (format, apply, conditional), StyleCLIP mappers, labellers and learning directions."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from innout.edit.directions import (
    Direction,
    DirectionError,
    DirectionMismatchError,
    apply_directions,
    conditioned_normal,
    latent_space_digest,
    load_direction,
    load_directions,
    save_direction,
)
from innout.edit.labelers import MOUTH_CORNERS, LandmarkLabeler, make_labeler
from innout.edit.learn import GeneratorSource, learn_direction
from innout.edit.mapper import OFFICIAL_STEP, LevelsMapper, load_mapper

from .conftest import requires


def unit(seed: int) -> torch.Tensor:
    v = torch.randn(512, generator=torch.Generator().manual_seed(seed))
    return v / v.norm()


def test_direction_file_round_trip(tmp_path, tiny_generator):
    d = Direction(
        "smile", unit(0) * 3, scale=2.5, layers=[0, 1, 2], value_range=(-2, 4),
        latent_space=latent_space_digest(tiny_generator), info={"labeler": "smile", "samples": 10},
    )  # fmt: skip
    assert float(d.normal.norm()) == pytest.approx(1.0)
    back = load_direction(save_direction(d, tmp_path / "smile.safetensors"))
    assert back.name == "smile" and back.scale == 2.5 and back.layers == [0, 1, 2]
    assert back.value_range == (-2, 4) and back.info == d.info and back.latent_space == d.latent_space
    torch.testing.assert_close(back.normal, d.normal)
    np.save(tmp_path / "age.npy", unit(1).numpy()[None])  # InterfaceGAN's boundary.npy layout [1, 512]
    found = load_directions([tmp_path])
    assert set(found) == {"smile", "age"} and found["age"].latent_space is None
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(DirectionError):
        load_direction(tmp_path / "junk.safetensors")
    np.save(tmp_path / "short.npy", np.ones(7))
    with pytest.raises(DirectionError, match="512"):
        load_direction(tmp_path / "short.npy")


def test_direction_belongs_to_its_generator(tiny_generator):
    from innout.eg3d.random import random_generator

    other = random_generator("tiny", seed=5)
    d = Direction("smile", unit(0), latent_space=latent_space_digest(other))
    with pytest.raises(DirectionMismatchError, match="another generator"):
        d.check_space(latent_space_digest(tiny_generator))
    d.check_space(latent_space_digest(other))


def test_apply_strength_layers_and_several_edits():
    ws = torch.randn(2, 14, 512)
    a = Direction("a", unit(0), scale=2.0, layers=[0, 1, 2, 3])
    b = Direction("b", unit(1), scale=0.5)
    out = apply_directions(ws, {"a": 1.5, "b": -2.0}, {"a": a, "b": b})
    expected = ws - 1.0 * unit(1)
    expected[:, :4] += 3.0 * unit(0)
    torch.testing.assert_close(out, expected)
    with pytest.raises(DirectionError, match="no direction named"):
        apply_directions(ws, {"c": 1.0}, {"a": a})


def test_conditional_manipulation_leaves_the_condition_unchanged():
    base = unit(0)
    primary = Direction("age", 0.8 * base + 0.6 * unit(1))
    condition = Direction("glasses", base)
    n = conditioned_normal(primary, [condition])
    assert float(n @ condition.normal) == pytest.approx(0.0, abs=1e-6)
    assert float(n.norm()) == pytest.approx(1.0)
    ws = torch.randn(1, 14, 512)
    out = apply_directions(ws, {"age": 3.0}, {"age": primary, "glasses": condition}, conditional=["glasses"])
    moved = (out - ws)[0, 0]
    assert float(moved @ condition.normal) == pytest.approx(0.0, abs=1e-5)
    assert float(moved.norm()) == pytest.approx(3.0, rel=1e-5)
    with pytest.raises(DirectionError, match="span"):
        conditioned_normal(condition, [primary, Direction("x", unit(1))])


def test_w_plus_offset_file_moves_ws_by_exactly_strength_times_offset(tmp_path):
    """GOAE's ws_edit/*.npy layout [1, 14, 512]: w' = w + s * offset on every ws, exactly, saved and read back."""
    rng = np.random.default_rng(3)
    offset = rng.normal(size=(1, 14, 512)).astype(np.float32)
    offset[0, 9:] = 0  # published edits often leave the fine ws alone
    np.save(tmp_path / "glass.npy", offset)
    d = load_direction(tmp_path / "glass.npy")
    assert d.kind == "offset" and d.name == "glass" and d.latent_space is None and d.value_range == (-2, 2)
    ws = torch.from_numpy(rng.normal(size=(3, 14, 512)).astype(np.float32))
    for s in (1.0, -0.7, 2.0):
        out = apply_directions(ws, {"glass": s}, {"glass": d})
        assert torch.equal(out, ws + s * torch.from_numpy(offset))
    back = load_direction(save_direction(d, tmp_path / "glass.safetensors"))
    assert back.kind == "offset" and torch.equal(back.offsets, torch.from_numpy(offset[0]))
    assert torch.equal(apply_directions(ws, {"glass": 1.3}, {"glass": back}), ws + 1.3 * torch.from_numpy(offset))
    # next to a unit-normal direction, in the same call; and conditioned on it: the offsets lose that component
    smile = Direction("smile", unit(0), scale=2.0)
    both = apply_directions(ws, {"glass": 1.0, "smile": 0.5}, {"glass": d, "smile": smile})
    torch.testing.assert_close(both, ws + torch.from_numpy(offset) + 1.0 * unit(0))
    kept = apply_directions(ws, {"glass": 1.0}, {"glass": d, "smile": smile}, conditional=["smile"]) - ws
    assert float((kept[0] @ unit(0)).abs().max()) < 1e-4
    with pytest.raises(DirectionError, match="offsets for 14 ws, but this generator has 10"):
        apply_directions(ws[:, :10], {"glass": 1.0}, {"glass": d})
    np.save(tmp_path / "wide.npy", np.ones((1, 15, 512), np.float32))
    np.save(tmp_path / "ints.npy", np.ones((1, 14, 512), np.int32))
    np.save(tmp_path / "zero.npy", np.zeros((1, 14, 512), np.float32))
    for bad, message in (("wide", "num_ws up to 14"), ("ints", "int32"), ("zero", "all zero")):
        with pytest.raises(DirectionError, match=message):
            load_direction(tmp_path / f"{bad}.npy")


def official_mapper_checkpoint(mapper: LevelsMapper) -> dict:
    """The layout StyleCLIP's training saves: {'state_dict': net.state_dict(), 'opts': vars(opts)}."""
    names = {"coarse": "course_mapping", "medium": "medium_mapping", "fine": "fine_mapping"}
    state = {}
    for level, official in names.items():
        for i, layer in enumerate(mapper.mappers[level].layers):
            state[f"mapper.{official}.mapping.{i + 1}.weight"] = layer.weight.detach().clone()
            state[f"mapper.{official}.mapping.{i + 1}.bias"] = layer.bias.detach().clone()
    return {"state_dict": state, "opts": {"no_coarse_mapper": False, "description": "smiling face"}}


def test_styleclip_mapper_matches_the_official_formulas(tmp_path):
    torch.manual_seed(0)
    mapper = LevelsMapper()
    with torch.no_grad():
        for p in mapper.parameters():
            if p.ndim == 1:
                p.normal_()
    torch.save(official_mapper_checkpoint(mapper), tmp_path / "smile.pt")
    loaded = load_mapper(tmp_path / "smile.pt")
    ws = torch.randn(2, 14, 512)
    # the official maths written out: pixel norm over the group's ws (dim 1), then 4 x equalised linear
    # (weight * 0.01 / sqrt(512), bias * 0.01) + leaky ReLU 0.2 * sqrt(2)
    x = ws[:, 4:8]
    x = x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)
    for layer in mapper.mappers["medium"].layers:
        x = torch.nn.functional.leaky_relu(x @ (layer.weight * 0.01 / math.sqrt(512)).T + layer.bias * 0.01, 0.2)
        x = x * math.sqrt(2)
    torch.testing.assert_close(loaded(ws)[:, 4:8], x, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(loaded.edit(ws, 2.0), ws + 2.0 * OFFICIAL_STEP * loaded(ws))
    coarse_only = load_mapper(tmp_path / "smile.pt", levels=("coarse",))
    assert torch.count_nonzero(coarse_only(ws)[:, 4:]) == 0
    assert torch.count_nonzero(coarse_only(ws)[:, :4]) > 0
    torch.save({"state_dict": {}}, tmp_path / "empty.pt")
    with pytest.raises(DirectionError, match="lacks"):
        load_mapper(tmp_path / "empty.pt")


def test_mapper_file_with_code_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"state_dict": Evil()}, f, protocol=2)
    with pytest.raises(DirectionError, match="not a readable mapper"):
        load_mapper(tmp_path / "evil.pt")


class SmileSource:
    """A generator whose smile is controllable, for testing direction learning with a real labeller.

    Latents: w = R z with R a fixed random rotation of R^512 (so no axis of z is special), the same w on
    every one of 14 layers. Image: the public-domain astronaut photo (scikit-image) with its mouth
    corners pulled outwards by 10 px and up by 6 px times tanh(w[0]) (a Gaussian displacement field of
    14 px around each corner, found by the face mesh once), and a brightness change of 10 % times
    tanh(w[1]) as a nuisance. So the first latent dimension drives the smile and nothing else does.
    """

    num_ws = 14
    latent_space = None

    def __init__(self, labeler: LandmarkLabeler) -> None:
        from skimage import data

        self.photo = cv2.resize(data.astronaut()[20:400, 60:440], (384, 384), interpolation=cv2.INTER_AREA)
        self.corners = labeler.landmarks(self.photo)[list(MOUTH_CORNERS), :2]
        q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((512, 512)))
        self.rotation = torch.from_numpy(q).float()
        h, w = self.photo.shape[:2]
        self.grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).astype(np.float32)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        z = torch.randn(n, 512, generator=generator)
        return (z @ self.rotation.T)[:, None].expand(n, self.num_ws, 512)

    def render(self, ws: torch.Tensor) -> list[np.ndarray]:
        images = []
        for w in ws[:, 0]:
            s = math.tanh(float(w[0]))
            displacement = np.zeros_like(self.grid)
            for corner, side in zip(self.corners, (-1, 1), strict=True):
                g = np.exp(-((self.grid - corner) ** 2).sum(-1) / (2 * 14.0**2))[..., None]
                displacement += g * np.array([side * 10.0 * s, -6.0 * s], np.float32)
            m = self.grid - displacement
            image = cv2.remap(self.photo, m[..., 0], m[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            brightness = 1 + 0.1 * math.tanh(float(w[1]))
            images.append(np.clip(image.astype(np.float32) * brightness, 0, 255).astype(np.uint8))
        return images


@pytest.fixture(scope="module")
def smile_labeler():
    labeler = LandmarkLabeler("smile")
    yield labeler
    labeler.close()


@requires("mediapipe")
def test_learned_smile_direction_moves_the_smile_score_monotonically(smile_labeler):
    source = SmileSource(smile_labeler)
    direction = learn_direction("smile", source, smile_labeler, samples=96, seed=0, progress=False)
    assert direction.info["scored"] == 96
    # the first latent dimension is the only one that matters; chance level would be about 0.04
    assert float(direction.normal[0]) > 0.2
    ws = source.sample(3, torch.Generator().manual_seed(11))
    strengths = [-2.0, -1.0, 0.0, 1.0, 2.0]
    scores = np.stack(
        [smile_labeler(source.render(apply_directions(ws, {"smile": s}, {"smile": direction}))) for s in strengths]
    )  # [strengths, latents]
    assert np.isfinite(scores).all()
    assert (np.diff(scores, axis=0) > 0).all(), scores
    assert (scores[-1] - scores[0]).min() > 0.1


@requires("mediapipe")
def test_landmark_labellers_on_a_photo(smile_labeler):
    from skimage import data

    photo = np.ascontiguousarray(data.astronaut())
    yaw = LandmarkLabeler("yaw")
    eyes = LandmarkLabeler("eyes_open")
    mouth = make_labeler("mouth_open")
    try:
        y = float(yaw([photo])[0])
        y_flipped = float(yaw([np.ascontiguousarray(photo[:, ::-1])])[0])
        assert abs(y + y_flipped) < 0.5 * max(abs(y), 3.0)  # mirroring the face mirrors its yaw
        assert 0.1 < float(eyes([photo])[0]) < 0.6
        assert 0 <= float(mouth([photo])[0]) < 0.5
        blank = np.zeros((256, 256, 3), np.uint8)
        assert np.isnan(smile_labeler([blank])[0])
    finally:
        yaw.close()
        eyes.close()
    with pytest.raises(ValueError, match="attribute"):
        LandmarkLabeler("age")
    with pytest.raises(ValueError, match="CLIP weights"):
        make_labeler("clip:A portrait of a smiling face")


def test_generator_source_renders_and_learning_needs_faces(tiny_generator):
    source = GeneratorSource(tiny_generator, super_resolution=False)
    ws = source.sample(2, torch.Generator().manual_seed(0))
    assert ws.shape == (2, 14, 512)
    images = source.render(ws)
    assert images[0].dtype == np.uint8 and images[0].shape == (32, 32, 3)

    def no_face(images):
        return np.full(len(images), np.nan)

    with pytest.raises(DirectionError, match="no face"):
        learn_direction("x", source, no_face, samples=4, batch=4, progress=False)


# -- hostile and damaged direction and mapper files -----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"layers": "[100]"}, r"layers must be null \(all\) or distinct ws indices 0-13, got \[100\]"),
        ({"layers": "[]"}, "layers must be null"),
        ({"layers": "[1, 1]"}, "layers must be null"),
        ({"drop": ("name",)}, "lacks name"),
        ({"name": ""}, "name '' is missing or empty"),
        ({"name": "a=b"}, "holds '='"),
        ({"normal": lambda: torch.ones(7)}, r"the normal has shape \[7\]; a direction in W has 512 numbers"),
        ({"normal": lambda: torch.full((512,), float("nan"))}, "zero or non-finite normal"),
        ({"normal": lambda: torch.zeros(512)}, "zero or non-finite normal"),
        ({"normal": lambda: torch.ones(512, dtype=torch.int64)}, "not floating point"),
        ({"range": "[-3,"}, "range is not valid JSON"),
        ({"range": "[3, -3]"}, "range must go from low to high"),
        ({"range": "[0, 1e999]"}, "range must be a finite number"),
        ({"scale": "1e999"}, "scale must be a finite number"),
        ({"scale": "-2"}, "scale must be positive"),
        ({"info": "[1]"}, "info must be an object"),
        ({"info": "[" * 100_000}, "info is not valid JSON"),
        ({"latent_space": "12"}, "latent_space must be a short text or null"),
    ],
)
def test_malformed_direction_files_are_refused_naming_the_file(tmp_path, changes, message):
    from tests.hostile.files import direction_file

    path = direction_file(tmp_path, changes=changes)
    with pytest.raises(DirectionError, match=message) as info:
        load_direction(path)
    assert str(path) in str(info.value)


def _huge_header(path):
    header = {"descr": "<f4", "fortran_order": False, "shape": (4_000_000_000,)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(bytes(2048))


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: np.savez(p.open("wb"), a=np.zeros(512, np.float32)), "an archive of several arrays"),
        (lambda p: p.write_bytes(b""), "not a plain numpy array file"),
        (_huge_header, "not a plain numpy array file .*mmap length is greater than file size"),
        (lambda p: np.save(p, np.array([object()] * 512)), "not a plain numpy array file"),
        (lambda p: np.save(p, np.arange(512)), "floating-point numbers"),
        (lambda p: np.save(p, np.full(512, np.inf, np.float32)), "zero or non-finite normal"),
    ],
)
def test_malformed_boundary_npy_files_are_refused_without_allocating(tmp_path, write, message):
    path = tmp_path / "boundary.npy"
    write(path)
    with pytest.raises(DirectionError, match=message) as info:
        load_direction(path)
    assert str(path) in str(info.value)


def test_one_bad_file_in_a_folder_leaves_the_others_usable(tmp_path, caplog, capsys):
    from innout.cli import main
    from innout.edit.directions import scan_directions
    from tests.hostile.files import direction_file

    for name in ("smile", "age"):
        direction_file(tmp_path, name)
    (tmp_path / "broken.safetensors").write_bytes(b"garbage")
    np.save(tmp_path / "short.npy", np.ones(7))
    found, problems = scan_directions([tmp_path])
    assert set(found) == {"smile", "age"}
    assert sorted(p.split(":")[0] for p in problems) == [
        str(tmp_path / "broken.safetensors"),
        str(tmp_path / "short.npy"),
    ]
    with caplog.at_level("WARNING"):
        assert set(load_directions([tmp_path])) == {"smile", "age"}
    assert sum("direction left out" in r.getMessage() for r in caplog.records) == 2
    with pytest.raises(DirectionError, match="broken.safetensors"):
        load_directions([tmp_path / "broken.safetensors"])  # named explicitly: an error
    capsys.readouterr()
    assert main(["directions", "show", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert {line.split(":")[0] for line in out.splitlines()} == {"smile", "age"}
    assert "left out" in err and "broken.safetensors" in err and "short.npy" in err
    assert main(["directions", "show", str(tmp_path / "smile.safetensors"), str(tmp_path / "broken.safetensors")]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("smile:") and "error:" in err and "broken.safetensors" in err


def test_direction_values_are_checked_when_made():
    with pytest.raises(DirectionError, match="has 7 numbers; a direction in W has 512"):
        Direction("a", torch.ones(7))
    with pytest.raises(DirectionError, match="layers"):
        Direction("a", unit(0), layers=[14])
    d = Direction("a", unit(0), layers=[3, 1])
    assert d.layers == [1, 3]
    with pytest.raises(DirectionError, match="this generator has 2"):
        d.offset(2, 1.0)


def test_mapper_size_bomb_is_refused_within_memory(tmp_path):
    from innout.bench.processes import peak_rss_mb
    from tests.hostile.files import MEMORY_BOUND_MB, zip_bomb_pt

    path = tmp_path / "mapper.pt"
    path.write_bytes(zip_bomb_pt(obj={"state_dict": {"w": torch.zeros(4)}}))
    code = f"""
from innout.edit.directions import DirectionError
from innout.edit.mapper import load_mapper
try:
    load_mapper({str(path)!r})
except DirectionError as exc:
    print("refused", exc)
"""
    peak, last = peak_rss_mb(code)
    assert last.startswith("refused") and "is compressed" in last and str(path) in last
    assert peak < MEMORY_BOUND_MB


@pytest.mark.parametrize(
    ("weight", "message"),
    [
        (lambda shape: torch.full(shape, float("nan")), "mapping.1.weight holds NaN or infinite values"),
        (lambda shape: torch.zeros(shape[0], 3) if len(shape) == 2 else torch.zeros(shape), r"has shape \[512, 3\]"),
        (lambda shape: torch.zeros(shape, dtype=torch.int64), "not a floating-point tensor"),
    ],
)
def test_mapper_weights_must_be_finite_and_of_their_shape(tmp_path, weight, message):
    from tests.hostile.files import mapper_checkpoint

    torch.save(mapper_checkpoint(weight), tmp_path / "mapper.pt")
    with pytest.raises(DirectionError, match=message):
        load_mapper(tmp_path / "mapper.pt")
    good = mapper_checkpoint()
    torch.save(good, tmp_path / "good.pt")
    mapper = load_mapper(tmp_path / "good.pt")
    torch.testing.assert_close(
        mapper.mappers["fine"].layers[3].weight, good["state_dict"]["mapper.fine_mapping.mapping.4.weight"]
    )
