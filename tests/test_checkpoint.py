"""Loading checkpoints: official pickles safely, the project's safetensors format, conversion caching."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from innout.eg3d import CheckpointError, UnsafeCheckpointError, frontal_label, load_generator, save_generator
from innout.eg3d.checkpoint import CONVERTED_SUFFIX, read_network_pickle

from .official_format import official_pickle_bytes


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
