"""Reading official EG3D network pickles without executing them, and the project's own weight format.

An official ``.pkl`` is a pickled dict whose networks are ``torch_utils.persistence`` objects: each
carries the *source code* of its module, which NVIDIA's loader ``exec``s. We never do. A restricted
unpickler resolves only an allowlist of globals (docs/conventions.md, files); persistent objects
become their plain ``meta`` dict, the few non-persistent modules become inert attribute holders, tensors are rebuilt
from the embedded legacy ``torch.save`` blobs by ``torch.load(weights_only=True)``. Any other global
is refused before anything is called. The tensors are then walked like ``state_dict()``
and loaded into the project's own modules, built from the configuration stored in the file.

The project's format is one ``.safetensors`` file: the state dict plus the JSON configuration in the
file's metadata. ``load_generator`` converts a pickle into it once (next to the pickle, or in
``pretrained/``) so later loads take a fraction of a second.
"""

from __future__ import annotations

import collections
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from ..safe_pickle import RestrictedUnpickler, UnsafePickleError
from .config import GeneratorConfig, RenderingConfig
from .generator import TriPlaneGenerator

log = logging.getLogger(__name__)

FORMAT_NAME = "innout-eg3d"
FORMAT_VERSION = "1"
CONVERTED_SUFFIX = ".innout.safetensors"


class CheckpointError(UserError, ValueError):
    """The file is not a usable generator checkpoint."""


class UnsafeCheckpointError(CheckpointError, UnsafePickleError):
    """The pickle asks for a global outside the allowlist; nothing from it was executed."""


class PersistentObject(dict):
    """The ``meta`` dict of an official persistent class (type, version, module_src, class_name, state)."""


class InertModule:
    """Stand-in for the non-persistent EG3D modules: keeps the pickled ``__dict__``, does nothing else."""

    pickled_name = "?"

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _persistent(meta: dict) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class" or "state" not in meta:
        raise CheckpointError("malformed persistent object in the pickle")
    if meta.get("version") != 6:
        log.warning("persistence version %s (expected 6); reading it anyway", meta.get("version"))
    return PersistentObject(meta)


def _load_storage_blob(data: bytes):
    return torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    return data


def _numpy_scalar(dtype, data):
    if isinstance(data, str):
        data = data.encode("latin1")
    return np.frombuffer(data, dtype=dtype)[0].item()


def _inert(name: str) -> type:
    return type(name.rsplit(".", 1)[-1], (InertModule,), {"pickled_name": name})


_INERT_CLASSES = (
    "training.triplane.OSGDecoder",
    "training.volumetric_rendering.renderer.ImportanceRenderer",
    "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
    "training.volumetric_rendering.ray_sampler.RaySampler",
    "torch.nn.modules.container.Sequential",
    "torch.nn.modules.activation.Softplus",
)

ALLOWED_GLOBALS: dict[str, Any] = {
    "torch_utils.persistence._reconstruct_persistent_obj": _persistent,
    "torch._utils._rebuild_tensor_v2": torch._utils._rebuild_tensor_v2,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.storage._load_from_bytes": _load_storage_blob,
    "collections.OrderedDict": collections.OrderedDict,
    "dnnlib.util.EasyDict": dict,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
    "numpy.dtype": np.dtype,
    "builtins.set": set,
    **{name: _inert(name) for name in _INERT_CLASSES},
}


def read_network_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Unpickle an official network pickle safely; networks come back as ``PersistentObject`` dicts."""
    with open(path, "rb") as f:
        try:
            data = RestrictedUnpickler(f, ALLOWED_GLOBALS, f"the checkpoint {Path(path).name}").load()
        except UnsafePickleError as exc:
            raise UnsafeCheckpointError(str(exc)) from None
        except Exception as exc:  # truncated file, wrong format...
            raise CheckpointError(f"{path}: not a readable EG3D network pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict with 'G_ema', found {type(data).__name__}")
    return data


def _state_of(obj: Any) -> dict:
    if isinstance(obj, PersistentObject):
        return obj["state"]
    if isinstance(obj, InertModule):
        return obj.__dict__
    raise CheckpointError(f"unexpected object {type(obj).__name__} in the module tree")


def collect_tensors(module: Any, prefix: str = "") -> dict[str, torch.Tensor]:
    """Walk a pickled module like ``state_dict()``: own parameters, own buffers, then children in order."""
    state = _state_of(module)
    tensors: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in state.get(group, {}).items():
            if value is not None:
                tensors[prefix + name] = value
    for name, child in state.get("_modules", {}).items():
        if child is not None:
            tensors.update(collect_tensors(child, f"{prefix}{name}."))
    return tensors


def config_from_official(state: dict, tensors: dict[str, torch.Tensor]) -> GeneratorConfig:
    """Generator configuration from a pickled ``TriPlaneGenerator``'s init kwargs (EG3D's init kwargs)."""
    kw = dict(state.get("_init_kwargs") or {})
    rendering_kwargs = dict(kw.get("rendering_kwargs") or state.get("rendering_kwargs") or {})
    if not rendering_kwargs:
        raise CheckpointError("the generator pickle has no rendering_kwargs")
    sr_module = str(rendering_kwargs.get("superresolution_module", "")).rsplit(".", 1)[-1]
    mapping_layers = sum(1 for k in tensors if k.startswith("backbone.mapping.fc") and k.endswith(".weight"))
    nrr = state.get("neural_rendering_resolution") or 128
    return GeneratorConfig(
        z_dim=int(kw.get("z_dim", state.get("z_dim", 512))),
        c_dim=int(kw.get("c_dim", state.get("c_dim", 25))),
        w_dim=int(kw.get("w_dim", state.get("w_dim", 512))),
        img_resolution=int(kw.get("img_resolution", state.get("img_resolution", 512))),
        img_channels=int(kw.get("img_channels", 3)),
        channel_base=int(kw.get("channel_base", 32768)),
        channel_max=int(kw.get("channel_max", 512)),
        mapping_layers=mapping_layers,
        num_fp16_res=int(kw.get("num_fp16_res", 4)),
        conv_clamp=kw.get("conv_clamp"),
        sr_num_fp16_res=int(kw.get("sr_num_fp16_res", 0)),
        superresolution_module=sr_module,
        neural_rendering_resolution=int(nrr),
        rendering=RenderingConfig.from_official(rendering_kwargs),
    )


@dataclass
class OfficialGenerator:
    config: GeneratorConfig
    state_dict: dict[str, torch.Tensor]


def read_official_generator(path: str | os.PathLike, key: str = "G_ema") -> OfficialGenerator:
    data = read_network_pickle(path)
    net = data.get(key)
    if not isinstance(net, PersistentObject):
        raise CheckpointError(f"{path}: no {key!r} network in the pickle (keys: {sorted(data)})")
    if net.get("class_name") != "TriPlaneGenerator":
        raise CheckpointError(f"{path}: {key} is a {net.get('class_name')!r}, expected 'TriPlaneGenerator'")
    tensors = collect_tensors(net)
    return OfficialGenerator(config_from_official(net["state"], tensors), tensors)


def build_generator(config: GeneratorConfig, state_dict: dict[str, torch.Tensor], device="cpu") -> TriPlaneGenerator:
    with torch.device("meta"):
        G = TriPlaneGenerator(config)
    expected = G.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = sorted(k for k in expected if k in state_dict and tuple(expected[k].shape) != tuple(state_dict[k].shape))
    if missing or unexpected or wrong:
        raise CheckpointError(
            "checkpoint does not match the generator architecture: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, wrong shapes {wrong[:5]}"
        )
    G.load_state_dict({k: v.float() for k, v in state_dict.items()}, strict=True, assign=True)
    return G.to(device).eval().requires_grad_(False)


def save_generator(G: TriPlaneGenerator, path: str | os.PathLike, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write the project's format: safetensors with the config as JSON metadata (atomic)."""
    from safetensors.torch import save_file

    path = Path(path)
    metadata = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": json.dumps(G.config.to_dict())}
    metadata.update(extra_metadata or {})
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def load_safetensors_generator(path: str | os.PathLike, device="cpu") -> TriPlaneGenerator:
    from safetensors.torch import load_file

    try:
        meta = read_safetensors_metadata(path)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not an In-N-Out generator file (format {meta.get('format')!r})")
    config = GeneratorConfig.from_dict(json.loads(meta["config"]))
    return build_generator(config, load_file(str(path)), device)


def _source_signature(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def converted_path_for(pkl: Path, cache_dir: Path | None = None) -> Path:
    directory = cache_dir or pkl.parent
    return directory / (pkl.stem + CONVERTED_SUFFIX)


def load_generator(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    convert: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> TriPlaneGenerator:
    """Load a generator from an official EG3D ``.pkl`` or the project's ``.safetensors``.

    A pickle is read without executing anything in it; with ``convert`` its weights are also saved
    as ``<name>.innout.safetensors`` (beside it, or in ``cache_dir``) and reused while the pickle's
    size and modification time are unchanged.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return load_safetensors_generator(path, device)

    converted = converted_path_for(path, Path(cache_dir) if cache_dir else None)
    signature = _source_signature(path)
    if convert and converted.is_file():
        try:
            if read_safetensors_metadata(converted).get("source_signature") == signature:
                return load_safetensors_generator(converted, device)
        except CheckpointError as exc:
            log.warning("ignoring unreadable converted checkpoint %s: %s", converted, exc)
    official = read_official_generator(path)
    G = build_generator(official.config, official.state_dict, "cpu")
    if convert:
        try:
            converted.parent.mkdir(parents=True, exist_ok=True)
            save_generator(G, converted, {"source": path.name, "source_signature": signature})
        except OSError as exc:
            log.warning("could not cache the converted checkpoint at %s: %s", converted, exc)
    return G.to(device)
