"""Reading official EG3D network pickles without executing them, and the project's own weight format.

An official ``.pkl`` is a pickled dict whose networks are ``torch_utils.persistence`` objects: each
carries the *source code* of its module, which NVIDIA's loader ``exec``s. We never do. A restricted
unpickler resolves only an allowlist of globals (docs/conventions.md, files); persistent objects
become their plain ``meta`` dict, the few non-persistent modules become inert attribute holders, tensors are
rebuilt from the embedded legacy ``torch.save`` blobs by our own reader. Any other global is refused before
anything is called. The tensors are then walked like ``state_dict()`` and loaded into the project's own
modules, built from the configuration stored in the file.

A hostile pickle cannot make the loader allocate more than the file holds: a storage is read only when the
bytes it declares are there, a tensor must fit in its storage (no zero-stride view of a huge shape), the
module tree may be at most ``MAX_MODULE_DEPTH`` deep, and the configuration must lie within
``check_config``'s limits before any module is built (on the meta device: no memory) and the tensors'
shapes are compared with it. Non-finite weights are refused.

The project's format is one ``.safetensors`` file: the state dict, the JSON configuration in the file's
metadata and the tensors' content hash (``innout.storage``). ``load_generator`` converts a pickle into it
once, beside the pickle, or when that folder is not writable in ``pretrained/converted/`` or the cache
folder (``$INNOUT_CACHE_DIR/converted``); with no writable folder it warns and reads the pickle each time.
A damaged converted copy is reported once and converted again. A ``.safetensors`` generator the user gives
has no pickle behind it, so damage is a ``CheckpointError``. Files written before the content hash existed
(and other tools' files in this format) are accepted without it when every weight is finite: their
truncation is still caught by safetensors' own size checks, and garbled bytes mostly show as NaN/inf;
a finite garbling of such a file cannot be detected.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import json
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
from .config import GeneratorConfig, RenderingConfig
from .generator import TriPlaneGenerator

log = logging.getLogger(__name__)

FORMAT_NAME = "innout-eg3d"
FORMAT_VERSION = "1"
CONVERTED_SUFFIX = ".innout.safetensors"
MAX_MODULE_DEPTH = 32  # EG3D's deepest parameter sits 6 modules down
MAX_TENSOR_DIMS = 8
MAX_CONFIG_CHARS = 1 << 16  # the configuration as JSON is about 900 characters


class CheckpointError(UserError, ValueError):
    """The file is not a usable generator checkpoint."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """There is no file at the checkpoint's path."""


class UnsafeCheckpointError(CheckpointError, UnsafePickleError):
    """The pickle asks for a global outside the allowlist; nothing from it was executed."""


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


# -- configuration limits -------------------------------------------------------------------------------

# Least and most of each whole-number setting; far outside EG3D's own values (in brackets), still small
# enough that nothing built from them is absurd.
INT_LIMITS: dict[str, tuple[int, int]] = {
    "z_dim": (1, 4096),  # 512
    "c_dim": (0, 4096),  # 25
    "w_dim": (1, 4096),  # 512
    "img_resolution": (16, 2048),  # 512
    "img_channels": (1, 4),  # 3
    "channel_base": (1, 1 << 20),  # 32768
    "channel_max": (1, 4096),  # 512
    "mapping_layers": (1, 32),  # 2
    "num_fp16_res": (0, 16),
    "sr_num_fp16_res": (0, 16),
    "neural_rendering_resolution": (8, 1024),  # 128
    "triplane_resolution": (8, 2048),  # 256
    "triplane_channels": (1, 512),  # 32
    "depth_resolution": (1, 1024),  # 48
    "depth_resolution_importance": (0, 1024),  # 48
}
POWER_OF_TWO = ("img_resolution", "triplane_resolution")


def _setting_problem(name: str, value: Any, default: Any) -> str | None:
    """What is wrong with one setting, judged by the type of its default (None: nothing)."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "must be true or false"
    if isinstance(default, int) or name in INT_LIMITS:
        if type(value) is not int:
            return "must be a whole number"
        lo, hi = INT_LIMITS.get(name, (0, 1 << 20))
        if not lo <= value <= hi:
            return f"must be between {lo} and {hi}"
        if name in POWER_OF_TWO and value & (value - 1):
            return "must be a power of two"
        return None
    if isinstance(default, float) or default is None:  # conv_clamp is None or a number
        if value is None and default is None:
            return None
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return None if ok and abs(value) < 1e6 else "must be a finite number"
    if isinstance(default, str):
        return None if isinstance(value, str) and len(value) < 200 else "must be a short text"
    if isinstance(default, tuple):
        ok = isinstance(value, tuple | list) and len(value) == len(default)
        ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        return None if ok else f"must be {len(default)} finite numbers"
    return None


def _problems(obj: Any, prefix: str = "") -> list[str]:
    problems = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            problems += _problems(value, f"{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        problem = _setting_problem(f.name, value, default)
        if problem:
            problems.append(f"{prefix}{f.name} = {describe(value)} {problem}")
    return problems


def check_config(config: GeneratorConfig, what: str = "the checkpoint") -> GeneratorConfig:
    """``config`` when every setting has the right type and lies within ``INT_LIMITS`` (and the render's
    near/far distances and box make sense); otherwise ``CheckpointError`` naming the first problems."""
    problems = _problems(config)
    r = config.rendering
    if not problems and not (0 < r.ray_start < r.ray_end and r.box_warp > 0):
        got = f"{r.ray_start}, {r.ray_end}, {r.box_warp}"
        problems.append(f"rendering needs 0 < ray_start < ray_end and box_warp > 0 (got {got})")
    if problems:
        raise CheckpointError(f"{what}: the generator configuration is not usable: {'; '.join(problems[:3])}")
    return config


def config_from_metadata(text: str | None, what: str) -> GeneratorConfig:
    """The generator configuration stored as JSON in a file's metadata, checked (``check_config``)."""
    if text is None:
        raise CheckpointError(f"{what}: the file has no generator configuration (metadata 'config')")
    if len(text) > MAX_CONFIG_CHARS:
        raise CheckpointError(
            f"{what}: the generator configuration is {len(text)} characters long; it has a few hundred"
        )
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{what}: the generator configuration is not valid JSON ({exc})") from exc
    expected = {f.name for f in dataclasses.fields(GeneratorConfig)}
    rendering_expected = {f.name for f in dataclasses.fields(RenderingConfig)}
    if not isinstance(data, dict) or not isinstance(data.get("rendering"), dict):
        raise CheckpointError(f"{what}: the generator configuration is not an object with a 'rendering' object")
    missing = sorted((expected - set(data)) | {f"rendering.{k}" for k in rendering_expected - set(data["rendering"])})
    unknown = sorted((set(data) - expected) | {f"rendering.{k}" for k in set(data["rendering"]) - rendering_expected})
    if missing or unknown:
        raise CheckpointError(f"{what}: the generator configuration lacks {missing[:5]} / has unknown {unknown[:5]}")
    try:
        config = GeneratorConfig.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{what}: the generator configuration is not usable ({exc})") from exc
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


# -- building the generator -----------------------------------------------------------------------------


def meta_generator(config: GeneratorConfig, what: str = "the checkpoint") -> TriPlaneGenerator:
    """The generator's modules on the meta device (no memory), to compare a file's tensors with."""
    check_config(config, what)
    try:
        with torch.device("meta"):
            return TriPlaneGenerator(config)
    except (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, RuntimeError) as exc:
        raise CheckpointError(f"{what}: no generator can be built with its configuration ({exc})") from exc


def check_state_shapes(G: TriPlaneGenerator, shapes: dict[str, tuple[int, ...]], what: str = "the checkpoint") -> None:
    """``CheckpointError`` unless ``shapes`` (name -> shape) are exactly the generator's tensors."""
    expected = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = sorted(k for k in expected if k in shapes and expected[k] != tuple(shapes[k]))
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{what} does not match the generator architecture: "
            f"missing {missing[:5]}, unexpected {[k[:80] for k in unexpected[:5]]}, wrong shapes {wrong[:5]}"
        )


def fill_generator(
    G: TriPlaneGenerator, state_dict: dict[str, torch.Tensor], device, what: str, *, finite_checked: bool = False
) -> TriPlaneGenerator:
    """Load ``state_dict`` (shapes already checked) into the meta-device ``G``: floating point and finite only
    (``finite_checked``: the caller has already refused NaN/inf, e.g. ``innout.storage.load_tensors``)."""
    from ..storage import non_finite

    bad = [k for k, v in state_dict.items() if not v.is_floating_point()]
    if bad:
        raise CheckpointError(f"{what}: weights {bad[:3]} are not floating point")
    bad = [] if finite_checked else non_finite(state_dict)
    if bad:
        raise CheckpointError(f"{what}: {len(bad)} weights hold NaN or infinite values ({', '.join(bad[:3])})")
    G.load_state_dict({k: v.float() for k, v in state_dict.items()}, strict=True, assign=True)
    return G.to(device).eval().requires_grad_(False)


def build_generator(
    config: GeneratorConfig, state_dict: dict[str, torch.Tensor], device="cpu", *, what: str = "the checkpoint"
) -> TriPlaneGenerator:
    G = meta_generator(config, what)
    check_state_shapes(G, {k: tuple(v.shape) for k, v in state_dict.items()}, what)
    return fill_generator(G, state_dict, device, what)


# -- the project's format -------------------------------------------------------------------------------


def save_generator(G: TriPlaneGenerator, path: str | os.PathLike, extra_metadata: dict[str, str] | None = None) -> Path:
    """Write the project's format: safetensors with the config as JSON metadata and the content hash
    (atomic). ``StorageError`` when the folder cannot be written."""
    from safetensors import SafetensorError

    from ..storage import StorageError, save_tensors

    metadata = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": json.dumps(G.config.to_dict())}
    metadata.update(extra_metadata or {})
    try:
        return save_tensors(G.state_dict(), path, metadata)
    except SafetensorError as exc:  # safetensors reports its I/O errors (a read-only folder...) as its own type
        raise StorageError(f"could not write the generator at {path}: {exc}") from exc


def read_safetensors_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata of a generator file; ``CheckpointError`` when its header cannot be read."""
    from ..storage import CorruptEntryError, read_metadata

    try:
        return read_metadata(path)
    except CorruptEntryError as exc:
        raise CheckpointError(f"{exc} (the file is damaged, incomplete or not a safetensors file)") from exc


def _declared_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises its own error types for malformed headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


def load_safetensors_generator(
    path: str | os.PathLike, device="cpu", *, require_digest: bool = False
) -> TriPlaneGenerator:
    """A generator from the project's format. The configuration and the tensors' shapes are checked from
    the file's header before any tensor is read; then the content hash (when present, or required) and
    the weights' finiteness. Any problem is a ``CheckpointError`` naming the file."""
    from ..storage import CorruptEntryError, load_tensors

    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"generator checkpoint not found: {path}")
    meta = read_safetensors_metadata(path)
    if meta.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not an In-N-Out generator file (format {describe(meta.get('format'))})")
    G = meta_generator(config_from_metadata(meta.get("config"), str(path)), str(path))
    check_state_shapes(G, _declared_shapes(path), str(path))
    try:
        tensors, _ = load_tensors(path, require_digest=require_digest)
    except CorruptEntryError as exc:
        raise CheckpointError(f"{exc}; download or convert the generator again") from exc
    return fill_generator(G, tensors, device, str(path), finite_checked=True)


# -- converting pickles once ----------------------------------------------------------------------------


def _source_signature(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _cache_root() -> Path:
    return Path(os.environ.get("INNOUT_CACHE_DIR", Path.home() / ".cache" / "innout"))


def converted_candidates(pkl: Path, cache_dir: Path | None = None) -> list[Path]:
    """Where the converted weights of ``pkl`` may be kept, in order of preference: ``cache_dir`` when given;
    else beside the pickle, then ``pretrained/converted/`` and the cache folder (there named with a digest
    of the pickle's path, so two pickles of one name do not share an entry)."""
    if cache_dir is not None:
        return [Path(cache_dir) / (pkl.stem + CONVERTED_SUFFIX)]
    from ..weights import pretrained_dir

    tag = hashlib.sha256(str(pkl.resolve()).encode()).hexdigest()[:12]
    name = f"{pkl.stem}-{tag}{CONVERTED_SUFFIX}"
    return [
        pkl.parent / (pkl.stem + CONVERTED_SUFFIX),
        pretrained_dir() / "converted" / name,
        _cache_root() / "converted" / name,
    ]


def _discard(path: Path, reason: str) -> None:
    from ..storage import discard

    try:
        discard(path, reason)
    except OSError as exc:  # a read-only folder: the next writable place gets the fresh copy
        log.warning("could not remove %s (%s)", path, exc)


def _reuse_converted(converted: Path, signature: str, device) -> TriPlaneGenerator | None:
    """The generator of a converted copy made from this very pickle, or None (absent, stale, or damaged:
    reported once and removed)."""
    from ..storage import DIGEST_KEY

    if not converted.is_file():
        return None
    try:
        meta = read_safetensors_metadata(converted)
    except CheckpointError as exc:
        _discard(converted, str(exc))
        return None
    if meta.get("source_signature") != signature:
        return None  # the pickle changed since: convert it again
    if DIGEST_KEY not in meta:
        log.info("%s was written by an older version (no content hash): converting the pickle again", converted)
        return None
    try:
        return load_safetensors_generator(converted, device, require_digest=True)
    except CheckpointError as exc:
        _discard(converted, str(exc))
        return None


def _keep_converted(G: TriPlaneGenerator, pkl: Path, signature: str, candidates: list[Path]) -> Path | None:
    """Save the converted weights in the first candidate folder that can be written; warn when none can."""
    from safetensors import SafetensorError

    tried = []
    for converted in candidates:
        try:
            converted.parent.mkdir(parents=True, exist_ok=True)
            return save_generator(G, converted, {"source": pkl.name, "source_signature": signature})
        except (OSError, UserError, SafetensorError) as exc:
            tried.append(f"{converted.parent} ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r})")
    log.warning(
        "could not keep the converted weights of %s anywhere (%s): the pickle will be read again next time",
        pkl, "; ".join(tried),
    )  # fmt: skip
    return None


def load_generator(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    convert: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> TriPlaneGenerator:
    """Load a generator from an official EG3D ``.pkl`` or the project's ``.safetensors``.

    A pickle is read without executing anything in it; with ``convert`` its weights are also saved as
    ``<name>.innout.safetensors`` (beside it, or in ``cache_dir``, or where ``converted_candidates`` finds
    room) and reused while the pickle's size and modification time are unchanged.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"generator checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return load_safetensors_generator(path, device)
    candidates = converted_candidates(path, Path(cache_dir) if cache_dir else None) if convert else []
    signature = _source_signature(path)
    for converted in candidates:
        G = _reuse_converted(converted, signature, device)
        if G is not None:
            return G
    official = read_official_generator(path)
    G = build_generator(official.config, official.state_dict, "cpu", what=str(path))
    if candidates:
        _keep_converted(G, path, signature, candidates)
    return G.to(device)
