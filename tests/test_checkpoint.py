"""Loading checkpoints: official pickles safely, the project's safetensors format, conversion caching."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from innout.eg3d import CheckpointError, UnsafeCheckpointError, frontal_label, load_generator, save_generator
from innout.eg3d.checkpoint import CONVERTED_SUFFIX
from innout.eg3d.official_pickle import read_network_pickle

from .hostile.official_format import official_pickle_bytes


def render(G, seed=0):
    torch.manual_seed(seed)
    c = frontal_label()
    with torch.no_grad():
        return G.synthesis(G.mapping(torch.randn(1, 512), c), c, deterministic=True)["image"]


def test_official_format_round_trip_never_executes_embedded_source(tiny_generator, tmp_path):
    marker = tmp_path / "executed"
    source = f"open({str(marker)!r}, 'w').write('pwned')\n"
    pkl = tmp_path / "network.pkl"
    pkl.write_bytes(official_pickle_bytes(tiny_generator, module_src=source))
    G = load_generator(pkl, convert=False)
    assert not marker.exists()
    assert G.config == tiny_generator.config
    torch.testing.assert_close(render(G), render(tiny_generator))


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


@pytest.mark.parametrize("func_name", ["os.system", "builtins.eval", "builtins.exec", "subprocess.call"])
def test_malicious_pickle_is_refused_and_does_nothing(tmp_path, func_name):
    import builtins
    import subprocess

    marker = tmp_path / "pwned"
    funcs = {
        "os.system": (os.system, f"touch {marker}"),
        "builtins.eval": (builtins.eval, f"open({str(marker)!r}, 'w')"),
        "builtins.exec": (builtins.exec, f"open({str(marker)!r}, 'w')"),
        "subprocess.call": (subprocess.call, ["touch", str(marker)]),
    }
    func, arg = funcs[func_name]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(func, arg)}, protocol=4))
    with pytest.raises(UnsafeCheckpointError) as info:
        load_generator(path, convert=False)
    module = "posix" if func_name == "os.system" else func_name.split(".")[0]
    assert module in str(info.value)
    assert not marker.exists()


def test_truncated_and_foreign_files_give_clear_errors(tiny_generator, tmp_path):
    data = official_pickle_bytes(tiny_generator)
    truncated = tmp_path / "truncated.pkl"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable EG3D network pickle"):
        load_generator(truncated, convert=False)
    other = tmp_path / "other.pkl"
    other.write_bytes(pickle.dumps({"G_ema": None}))
    with pytest.raises(CheckpointError, match="no 'G_ema' network"):
        load_generator(other, convert=False)
    not_st = tmp_path / "x.safetensors"
    not_st.write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        load_generator(not_st)
    with pytest.raises(FileNotFoundError):
        load_generator(tmp_path / "missing.pkl")


def test_safetensors_round_trip(tiny_generator, tmp_path):
    path = save_generator(tiny_generator, tmp_path / "g.safetensors")
    G = load_generator(path)
    torch.testing.assert_close(render(G), render(tiny_generator))


def test_pickle_is_converted_once_and_reused(tiny_generator, tmp_path, monkeypatch):
    pkl = tmp_path / "net.pkl"
    pkl.write_bytes(official_pickle_bytes(tiny_generator))
    load_generator(pkl)
    converted = tmp_path / ("net" + CONVERTED_SUFFIX)
    assert converted.is_file()

    import innout.eg3d.checkpoint as checkpoint

    def fail(*args, **kwargs):
        raise AssertionError("the pickle was read again")

    monkeypatch.setattr(checkpoint, "read_official_generator", fail)
    G = load_generator(pkl)
    torch.testing.assert_close(render(G), render(tiny_generator))
    # a changed pickle invalidates the converted copy
    os.utime(pkl, ns=(1, 1))
    with pytest.raises(AssertionError, match="read again"):
        load_generator(pkl)


def test_network_pickle_structure(tiny_generator, tmp_path):
    pkl = tmp_path / "net.pkl"
    pkl.write_bytes(official_pickle_bytes(tiny_generator))
    data = read_network_pickle(pkl)
    assert set(data) == {"G", "D", "G_ema", "training_set_kwargs"}
    assert data["G_ema"]["class_name"] == "TriPlaneGenerator"


# -- hostile and damaged files -------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:TypedStorage is deprecated")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64, torch.int64, torch.uint8, torch.bool])
def test_legacy_storage_reader_reads_what_torch_writes(dtype):
    import io

    from innout.eg3d.official_pickle import read_legacy_storage

    values = (torch.arange(7) % 2 == 0) if dtype == torch.bool else torch.arange(7).to(dtype)
    for storage in (values.untyped_storage(), values.storage()):
        buf = io.BytesIO()
        torch.save(storage, buf, _use_new_zipfile_serialization=False)
        flat = read_legacy_storage(buf.getvalue())
        expected = values if storage is not values.untyped_storage() else values.view(-1).view(torch.uint8)
        assert torch.equal(flat, expected.reshape(-1))


def test_storage_that_declares_more_than_it_holds_is_refused():
    from innout.eg3d.official_pickle import read_legacy_storage
    from tests.hostile.files import legacy_storage_bomb, zip_bomb_pt

    with pytest.raises(CheckpointError, match="declares 2147483648 elements .* but holds 16 bytes"):
        read_legacy_storage(legacy_storage_bomb())
    with pytest.raises(CheckpointError, match="zip archive"):
        read_legacy_storage(zip_bomb_pt())


def test_size_and_stride_bombs_are_refused_within_memory(tmp_path):
    from innout.bench.processes import peak_rss_mb
    from tests.hostile.files import MEMORY_BOUND_MB, pickle_size_bomb, pickle_stride_bomb

    for name, data, message in [
        ("size.pkl", pickle_size_bomb(), "zip archive"),
        ("stride.pkl", pickle_stride_bomb(), "does not fit in its storage of 1 elements"),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        assert path.stat().st_size < 3 << 20
        code = f"""
from innout.eg3d.building import CheckpointError
from innout.eg3d.checkpoint import load_generator
try:
    load_generator({str(path)!r})
except CheckpointError as exc:
    print("refused", exc)
"""
        peak, last = peak_rss_mb(code)
        assert last.startswith("refused") and message in last and str(path) in last
        assert peak < MEMORY_BOUND_MB
        assert not list(tmp_path.glob("*.innout.safetensors"))


def test_deep_module_tree_is_a_checkpoint_error(tmp_path):
    from tests.hostile.files import deep_module_pickle

    path = tmp_path / "deep.pkl"
    path.write_bytes(deep_module_pickle(3000))
    with pytest.raises(CheckpointError, match="nested more than 32 levels"):
        load_generator(path, convert=False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"channel_max": 1 << 40}, "channel_max = 1099511627776 must be between 1 and 4096"),
        ({"z_dim": 10**5000}, "z_dim = a number of about 5000 digits must be between"),
        ({"c_dim": [25]}, "settings are not usable"),
        ({"img_resolution": 48}, "img_resolution = 48 must be a power of two"),
        ({"conv_clamp": float("nan")}, "settings are not usable|conv_clamp = nan must be a finite number"),
    ],
)
def test_pickled_settings_outside_the_limits_are_refused(tmp_path, changes, message):
    from tests.hostile.files import pickle_with_config

    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle_with_config(**changes)())
    with pytest.raises(CheckpointError, match=message):
        load_generator(path, convert=False)


def test_micro_pickle_round_trip(tmp_path):
    from tests.hostile.files import generator_pickle, micro_generator

    G = micro_generator()
    path = tmp_path / "micro.pkl"
    path.write_bytes(generator_pickle(G))
    back = load_generator(path, convert=False)
    assert back.config == G.config
    for k, v in G.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k


def _micro_pickle(folder):
    from tests.hostile.files import generator_pickle, micro_generator

    folder.mkdir(exist_ok=True)
    path = folder / "network.pkl"
    path.write_bytes(generator_pickle(micro_generator()))
    return path


def _isolate(monkeypatch, tmp_path):
    monkeypatch.setenv("INNOUT_PRETRAINED_DIR", str(tmp_path / "pretrained"))
    monkeypatch.setenv("INNOUT_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("pretrained", "cache"):
        (tmp_path / name).mkdir(exist_ok=True)


def test_pickle_in_a_read_only_folder_is_converted_into_pretrained(tmp_path, monkeypatch, caplog):
    from tests.hostile.files import read_only

    _isolate(monkeypatch, tmp_path)
    pkl = _micro_pickle(tmp_path / "models")
    with read_only(pkl.parent) as done:
        if not done:
            pytest.skip("a folder cannot be made read-only here")
        first = load_generator(pkl)
        (converted,) = (tmp_path / "pretrained" / "converted").glob("network-*.innout.safetensors")
        import innout.eg3d.checkpoint as checkpoint

        monkeypatch.setattr(checkpoint, "read_official_generator", lambda *a: pytest.fail("the pickle was read again"))
        again = load_generator(pkl)
    assert not list(pkl.parent.glob("*.innout.safetensors"))
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []
    for k, v in first.state_dict().items():
        assert torch.equal(again.state_dict()[k], v)
    assert converted.stat().st_size > 0


def test_pickle_loads_when_no_folder_is_writable(tmp_path, monkeypatch, caplog):
    from tests.hostile.files import read_only

    _isolate(monkeypatch, tmp_path)
    pkl = _micro_pickle(tmp_path / "models")
    with read_only(pkl.parent, tmp_path / "pretrained", tmp_path / "cache") as done:
        if not done:
            pytest.skip("a folder cannot be made read-only here")
        with caplog.at_level("WARNING", logger="innout.eg3d.checkpoint"):
            G = load_generator(pkl)
    assert G.config.w_dim == 8
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "could not keep the converted weights" in warnings[0] and "read again" in warnings[0]
    assert not list(tmp_path.rglob("*.innout.safetensors"))


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_damaged_converted_copy_is_reported_once_and_made_again(tmp_path, monkeypatch, caplog, damage):
    from innout.storage import DIGEST_KEY, read_metadata
    from tests.hostile import files as robust_files

    _isolate(monkeypatch, tmp_path)
    pkl = _micro_pickle(tmp_path)
    G = load_generator(pkl)
    converted = tmp_path / ("network" + CONVERTED_SUFFIX)
    getattr(robust_files, damage)(converted, converted)
    with caplog.at_level("WARNING"):
        again = load_generator(pkl)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(converted) in warnings[0] and "is corrupt" in warnings[0]
    for k, v in G.state_dict().items():
        assert torch.equal(again.state_dict()[k], v)
    assert DIGEST_KEY in read_metadata(converted)  # made again, whole
    caplog.clear()
    load_generator(pkl)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_converted_copy_from_before_the_hash_is_converted_again_quietly(tmp_path, monkeypatch, caplog):
    from innout.storage import DIGEST_KEY, read_metadata
    from tests.hostile.files import rewrite_safetensors

    _isolate(monkeypatch, tmp_path)
    pkl = _micro_pickle(tmp_path)
    load_generator(pkl)
    converted = tmp_path / ("network" + CONVERTED_SUFFIX)
    rewrite_safetensors(converted, converted)
    assert DIGEST_KEY not in read_metadata(converted)
    with caplog.at_level("WARNING"):
        load_generator(pkl)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
    assert DIGEST_KEY in read_metadata(converted)


def test_damaged_or_malformed_generator_files_are_checkpoint_errors(tmp_path):
    import json

    from tests.hostile.files import garbled, micro_config, micro_generator, rewrite_safetensors, truncated

    path = save_generator(micro_generator(), tmp_path / "g.safetensors")
    config = micro_config().to_dict()
    variants = {
        "truncated": (truncated(path, tmp_path / "t.safetensors"), "not a readable safetensors file"),
        "garbled": (garbled(path, tmp_path / "x.safetensors"), "does not match its hash"),
        "no config": (
            rewrite_safetensors(path, tmp_path / "a.safetensors", drop_meta=("config",)),
            "no generator configuration",
        ),
        "not json": (rewrite_safetensors(path, tmp_path / "b.safetensors", metadata={"config": "{"}), "not valid JSON"),
        "missing": (
            rewrite_safetensors(
                path, tmp_path / "c.safetensors", metadata={"config": json.dumps({**config, "rendering": {}})}
            ),
            r"lacks \['rendering.avg_camera_pivot', 'rendering.avg_camera_radius', 'rendering.box_warp'",
        ),
        "types": (
            rewrite_safetensors(
                path, tmp_path / "d.safetensors", metadata={"config": json.dumps({**config, "z_dim": 4.5})}
            ),
            "z_dim = 4.5 must be a whole number",
        ),
        "absurd": (
            rewrite_safetensors(
                path, tmp_path / "e.safetensors", metadata={"config": json.dumps({**config, "w_dim": 10**9})}
            ),
            "w_dim = 1000000000 must be between 1 and 4096",
        ),
        "not an object": (
            rewrite_safetensors(path, tmp_path / "f.safetensors", metadata={"config": "[]"}),
            "not an object",
        ),
    }
    for name, (variant, message) in variants.items():
        with pytest.raises(CheckpointError, match=message) as info:
            load_generator(variant)
        assert str(variant) in str(info.value), name


def test_generator_file_without_hash_is_accepted_only_when_finite(tmp_path):
    from tests.hostile.files import micro_generator, rewrite_safetensors

    G = micro_generator()
    path = save_generator(G, tmp_path / "g.safetensors")
    old = rewrite_safetensors(path, tmp_path / "old.safetensors")  # as written before the hash existed
    back = load_generator(old)
    for k, v in G.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)
    weight = G.state_dict()["decoder.net.0.weight"].clone()
    weight[0, 1] = float("inf")
    bad = rewrite_safetensors(path, tmp_path / "bad.safetensors", tensors={"decoder.net.0.weight": weight})
    with pytest.raises(CheckpointError, match="NaN or infinite values"):
        load_generator(bad)
