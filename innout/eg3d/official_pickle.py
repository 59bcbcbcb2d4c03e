"""Reading official EG3D network pickles without executing them.

An official ``.pkl`` is a pickled dict whose networks are ``torch_utils.persistence`` objects: each
carries the *source code* of its module, which NVIDIA's loader ``exec``s. We never do. A restricted
unpickler resolves only an allowlist of globals (docs/conventions.md, files); persistent objects
become their plain ``meta`` dict, the few non-persistent modules become inert attribute holders, tensors are
rebuilt from the embedded legacy ``torch.save`` blobs by our own reader. Any other global is refused before
anything is called. The tensors are then walked like ``state_dict()``.

A hostile pickle cannot make the loader allocate more than the file holds: a storage is read only when the
bytes it declares are there, a tensor must fit in its storage (no zero-stride view of a huge shape), the
module tree may be at most ``MAX_MODULE_DEPTH`` deep, and the configuration is checked (``building``) before
any module is built.
"""

from __future__ import annotations

import collections
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from ..safe_pickle import ZIP_MAGIC, DtypeSpec, RestrictedUnpickler, UnsafePickleError, describe, resolve_dtype
from .building import CheckpointError, CheckpointNotFoundError, UnsafeCheckpointError, check_config
from .config import GeneratorConfig, RenderingConfig

log = logging.getLogger(__name__)

MAX_MODULE_DEPTH = 32  # EG3D's deepest parameter sits 6 modules down
MAX_TENSOR_DIMS = 8


class PersistentObject(dict):
    """The ``meta`` dict of an official persistent class (type, version, module_src, class_name, state)."""


class InertModule:
    """Stand-in for the non-persistent EG3D modules: keeps the pickled ``__dict__``, does nothing else."""

    pickled_name = "?"

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise CheckpointError(f"malformed {self.pickled_name} in the pickle (its state is not a dict)")
        self.__dict__.update(state)


def _persistent(meta: dict) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("state"), dict):
        raise CheckpointError("malformed persistent object in the pickle")
    if meta.get("version") != 6:
        log.warning("persistence version %s (expected 6); reading it anyway", meta.get("version"))
    return PersistentObject(meta)


# -- the legacy torch.save blobs that hold the tensors' storages ----------------------------------------

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
STORAGE_DTYPES: dict[str, torch.dtype] = {
    "torch.FloatStorage": torch.float32,
    "torch.DoubleStorage": torch.float64,
    "torch.HalfStorage": torch.float16,
    "torch.BFloat16Storage": torch.bfloat16,
    "torch.LongStorage": torch.int64,
    "torch.IntStorage": torch.int32,
    "torch.ShortStorage": torch.int16,
    "torch.CharStorage": torch.int8,
    "torch.ByteStorage": torch.uint8,
    "torch.BoolStorage": torch.bool,
    "torch.UntypedStorage": torch.uint8,
    "torch.storage.UntypedStorage": torch.uint8,
}


@dataclass(frozen=True)
class _StorageSpec:
    dtype: torch.dtype
    key: str
    numel: int


class _StorageUnpickler(RestrictedUnpickler):
    """Reads the object record of a legacy blob: the storage's persistent id, nothing else."""

    def __init__(self, file) -> None:
        super().__init__(file, dict(STORAGE_DTYPES), "a tensor storage in the checkpoint")

    def persistent_load(self, pid):
        ok = isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and pid[5] is None
        if not ok or not isinstance(pid[1], torch.dtype) or not isinstance(pid[4], int) or pid[4] < 0:
            raise CheckpointError(f"malformed tensor storage record in the pickle: {describe(pid)}")
        return _StorageSpec(pid[1], str(pid[2]), pid[4])


def read_legacy_storage(blob: bytes) -> torch.Tensor:
    """A storage saved by ``torch.save(storage, _use_new_zipfile_serialization=False)`` (what pickling a
    tensor embeds) as a flat tensor. Five pickles (magic number, protocol, system info, the storage's
    record, its key) and then, per storage, its element count and raw bytes. The bytes are read only when
    the blob holds as many as the record declares."""
    what = "a tensor storage in the checkpoint"
    if not isinstance(blob, bytes):
        raise CheckpointError(f"{what} is a {type(blob).__name__}, not bytes")
    if blob[:4] == ZIP_MAGIC:
        raise CheckpointError(f"{what} is a zip archive; network pickles embed torch's legacy format (crafted file?)")
    f = io.BytesIO(blob)
    try:
        magic, protocol, info = (RestrictedUnpickler(f, {}, what).load() for _ in range(3))
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise CheckpointError(
                f"{what} is not in torch's legacy format (magic {describe(magic)}, protocol {describe(protocol)})"
            )
        if not isinstance(info, dict) or info.get("little_endian") is not True:
            raise CheckpointError(f"{what} was written on a big-endian machine, which is not supported")
        spec = _StorageUnpickler(f).load()
        keys = RestrictedUnpickler(f, {}, what).load()
    except UserError:
        raise
    except Exception as exc:  # truncated or garbled records
        raise CheckpointError(f"{what} is not readable ({type(exc).__name__}: {exc})") from exc
    if not isinstance(spec, _StorageSpec) or keys != [spec.key]:
        raise CheckpointError(f"{what} does not hold exactly one storage")
    header = f.read(8)
    stored = int.from_bytes(header, "little", signed=True) if len(header) == 8 else -1
    nbytes = spec.numel * spec.dtype.itemsize
    left = len(blob) - f.tell()
    if stored != spec.numel or nbytes > left:
        raise CheckpointError(
            f"{what} declares {spec.numel} elements ({nbytes} bytes) but holds {left} bytes: "
            "the file is damaged or crafted"
        )
    if nbytes == 0:
        return torch.empty(0, dtype=spec.dtype)
    start = f.tell()
    return torch.frombuffer(bytearray(memoryview(blob)[start : start + nbytes]), dtype=spec.dtype)  # one copy


def _rebuild_tensor(storage, storage_offset, size, stride, *_rest) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` for our flat storages: the tensor must lie inside its storage and
    have no more elements than it (a zero stride could otherwise make a huge tensor of one number)."""
    if not isinstance(storage, torch.Tensor) or storage.dim() != 1:
        raise CheckpointError("a tensor in the pickle has no storage")
    size, stride = tuple(size), tuple(stride)
    numbers = (storage_offset, *size, *stride)
    if len(size) != len(stride) or len(size) > MAX_TENSOR_DIMS or not all(type(v) is int and v >= 0 for v in numbers):
        raise CheckpointError(
            f"a tensor in the pickle has a malformed shape {describe(size)} / stride {describe(stride)}"
        )
    numel = math.prod(size)
    extent = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1 if numel else 0
    if numel > storage.numel() or extent > storage.numel():
        raise CheckpointError(
            f"a tensor of shape {list(size)} does not fit in its storage of {storage.numel()} elements "
            "(the file is damaged or crafted)"
        )
    return torch.as_strided(storage, size, stride, storage_offset)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *state):
    if not isinstance(data, torch.Tensor):
        raise CheckpointError("a parameter in the pickle is not a tensor")
    return data


def _numpy_scalar(dtype, data):
    dtype = resolve_dtype(dtype)
    if isinstance(data, str):
        data = data.encode("latin1")
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise CheckpointError("a number in the pickle is malformed")
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
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.storage._load_from_bytes": read_legacy_storage,
    "collections.OrderedDict": collections.OrderedDict,
    "dnnlib.util.EasyDict": dict,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
    "numpy.dtype": DtypeSpec,
    "builtins.set": set,
    **{name: _inert(name) for name in _INERT_CLASSES},
}


def read_network_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """Unpickle an official network pickle safely; networks come back as ``PersistentObject`` dicts."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"generator checkpoint not found: {path}")
    with open(path, "rb") as f:
        try:
            data = RestrictedUnpickler(f, ALLOWED_GLOBALS, f"the checkpoint {path.name}").load()
        except UnsafePickleError as exc:
            raise UnsafeCheckpointError(str(exc)) from None
        except CheckpointError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        except Exception as exc:  # truncated file, wrong format, nesting deeper than the interpreter's stack...
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


def _named_entries(state: dict, group: str, prefix: str) -> dict:
    entries = state.get(group) or {}
    if not isinstance(entries, dict):
        raise CheckpointError(f"malformed module {prefix.rstrip('.') or 'G_ema'}: its {group} is not a dict")
    return entries


def collect_tensors(module: Any, prefix: str = "", depth: int = 0) -> dict[str, torch.Tensor]:
    """Walk a pickled module like ``state_dict()``: own parameters, own buffers, then children in order.
    Refuses a tree deeper than ``MAX_MODULE_DEPTH`` (a crafted file could otherwise exhaust the stack)."""
    if depth > MAX_MODULE_DEPTH:
        raise CheckpointError(
            f"the module tree is nested more than {MAX_MODULE_DEPTH} levels deep (EG3D's is 6): not an EG3D generator"
        )
    state = _state_of(module)
    tensors: dict[str, torch.Tensor] = {}
    for group in ("_parameters", "_buffers"):
        for name, value in _named_entries(state, group, prefix).items():
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{prefix}{name} is a {type(value).__name__}, not a tensor")
            tensors[f"{prefix}{name}"] = value
    for name, child in _named_entries(state, "_modules", prefix).items():
        if child is not None:
            tensors.update(collect_tensors(child, f"{prefix}{name}.", depth + 1))
    return tensors


def config_from_official(state: dict, tensors: dict[str, torch.Tensor], what: str = "the pickle") -> GeneratorConfig:
    """Generator configuration from a pickled ``TriPlaneGenerator``'s init kwargs (EG3D's init kwargs)."""
    try:
        kw = dict(state.get("_init_kwargs") or {})
        rendering_kwargs = dict(kw.get("rendering_kwargs") or state.get("rendering_kwargs") or {})
        if not rendering_kwargs:
            raise CheckpointError(f"{what}: the generator pickle has no rendering_kwargs")
        sr_module = str(rendering_kwargs.get("superresolution_module", "")).rsplit(".", 1)[-1]
        mapping_layers = sum(1 for k in tensors if k.startswith("backbone.mapping.fc") and k.endswith(".weight"))
        nrr = state.get("neural_rendering_resolution") or 128
        config = GeneratorConfig(
            z_dim=int(kw.get("z_dim", state.get("z_dim", 512))),
            c_dim=int(kw.get("c_dim", state.get("c_dim", 25))),
            w_dim=int(kw.get("w_dim", state.get("w_dim", 512))),
            img_resolution=int(kw.get("img_resolution", state.get("img_resolution", 512))),
            img_channels=int(kw.get("img_channels", 3)),
            channel_base=int(kw.get("channel_base", 32768)),
            channel_max=int(kw.get("channel_max", 512)),
            mapping_layers=mapping_layers,
            num_fp16_res=int(kw.get("num_fp16_res", 4)),
            conv_clamp=None if kw.get("conv_clamp") is None else float(kw["conv_clamp"]),
            sr_num_fp16_res=int(kw.get("sr_num_fp16_res", 0)),
            superresolution_module=sr_module,
            neural_rendering_resolution=int(nrr),
            rendering=RenderingConfig.from_official(rendering_kwargs),
        )
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError) as exc:
        raise CheckpointError(f"{what}: the generator's settings are not usable ({exc})") from exc
    return check_config(config, what)


@dataclass
class OfficialGenerator:
    config: GeneratorConfig
    state_dict: dict[str, torch.Tensor]


def read_official_generator(path: str | os.PathLike, key: str = "G_ema") -> OfficialGenerator:
    """The configuration and tensors of the network ``key`` of an official pickle; ``CheckpointError``
    for anything else, however malformed (a nesting too deep for the interpreter included)."""
    try:
        return _read_official_generator(Path(path), key)
    except RecursionError:
        raise CheckpointError(f"{path}: the pickle is nested too deeply to be an EG3D generator") from None


def _read_official_generator(path: Path, key: str) -> OfficialGenerator:
    data = read_network_pickle(path)
    net = data.get(key)
    if not isinstance(net, PersistentObject):
        keys = ", ".join(describe(k) for k in list(data)[:10])
        raise CheckpointError(f"{path}: no {key!r} network in the pickle (keys: {keys})")
    if net.get("class_name") != "TriPlaneGenerator":
        raise CheckpointError(f"{path}: {key} is a {describe(net.get('class_name'))}, expected 'TriPlaneGenerator'")
    try:
        tensors = collect_tensors(net)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return OfficialGenerator(config_from_official(net["state"], tensors, str(path)), tensors)


