"""A generator from a configuration and tensors, every number checked before anything is built.

Whatever file the weights come from (an official pickle, the project's safetensors, a scene file), the
configuration must lie within ``check_config``'s limits before any module is built (on the meta device: no
memory), the tensors' shapes must be exactly the architecture's, and every weight must be finite floating
point. Any problem is a ``CheckpointError`` naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import torch

from ..errors import UserError
from ..safe_pickle import UnsafePickleError, describe
from .config import GeneratorConfig, RenderingConfig
from .generator import TriPlaneGenerator

MAX_CONFIG_CHARS = 1 << 16  # the configuration as JSON is about 900 characters


class CheckpointError(UserError, ValueError):
    """The file is not a usable generator checkpoint."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """There is no file at the checkpoint's path."""


class UnsafeCheckpointError(CheckpointError, UnsafePickleError):
    """The pickle asks for a global outside the allowlist; nothing from it was executed."""


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


