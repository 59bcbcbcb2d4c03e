"""Every hyper-parameter of a fit, in one place: plain dataclasses and three presets.

- ``paper``: the numbers of the paper and of the official code as released (docs/method.md, fitting): NN init
  with 500 samples, W+ inversion 200 epochs on K = 16 frames then 20 on all, joint optimisation 10,000
  iterations at 128^2 with 48 + 48 samples and LPIPS-VGG, SR fine-tuning 100 epochs. The joint stage is
  the official mask-free variant (w_cano re-initialised as 0.7 w_cano + 0.3 N(0, 1), w = w_cano + 0.7 r
  trained with lr 5e-4, L_w 1.0, L_Delta 2e-3), since the unsupervised fit is the default here.
- ``fast`` (GPU): the same losses, resolutions and samples; frames batched (4 per step, 2,500 steps = the
  paper's 10,000 frame visits), half the inversion and SR epochs.
- ``preview`` (minutes on a CPU): at most 12 frames, 64^2 rays with 24 + 24 samples, LPIPS-Alex,
  few samples and iterations, no SR fine-tuning. For trying the flow, not for quality.

Every preset keeps the method's terms and trains the latents in the joint stage (with L_w and L_Delta); the
cheaper ones cut frames, resolution, samples and iterations, never terms (``joint.latent_lr=0`` freezes the
latents and caches the face tri-planes, an option with its own, different result).

Any field can be overridden with ``apply_overrides(cfg, ["joint.iterations=200", ...])`` (the CLI's
``--set``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError


@dataclass
class InitConfig:
    """Nearest-neighbour initialisation (paper Algorithm 1; docs/method.md)."""

    samples: int = 500  # random z drawn; each frame keeps the one whose render is closest (LPIPS)
    batch: int = 4  # candidates synthesised at once
    lpips_net: str = "alex"
    compare: str = "sr"  # 'sr': the 512 image as in the official code; 'raw': the neural render (cheaper)
    resolution: int | None = None  # neural rendering resolution (None: the generator's)
    samples_per_ray: tuple[int, int] | None = None  # (coarse, fine); None: the generator's


@dataclass
class InversionConfig:
    """In-distribution W+ inversion: w_t = w_cano + a * r_t (docs/method.md, fitting)."""

    residual_scale: float = 0.7
    subset_frames: int = 16  # K
    subset_epochs: int = 200  # M1, on the K frames
    all_epochs: int = 20  # M2, on all frames
    batch_frames: int = 1
    lr: float = 5e-3
    rampup: float = 0.05  # share of steps with a linear lr ramp-up
    rampdown: float = 0.25  # share of steps with a cosine lr ramp-down
    lambda_l2: float = 1.0
    lambda_lpips: float = 1.0
    lambda_delta: float = 1e-3
    lambda_w: float = 0.0
    lpips_net: str = "vgg"
    compare: str = "sr"  # loss on the 512 SR image ('sr') or on the neural render ('raw')
    resolution: int | None = None
    samples_per_ray: tuple[int, int] | None = None
    space: str = "w+"  # 'w+' (14 codes per frame) or 'w' (one code broadcast: the W baseline)
    checkpoint_every: int = 200


@dataclass
class JointConfig:
    """Joint optimisation of the latents, the OOD tri-plane, decoder and per-frame codes (docs/method.md, fitting)."""

    iterations: int = 10_000
    batch_frames: int = 1
    lr: float = 5e-3  # OOD tri-plane, decoder and codes
    latent_lr: float = 5e-4  # w_cano and residuals; 0 freezes them (face tri-planes cached)
    # before the stage w_cano becomes (1 - r) w_cano + r N(0, 1), as the official mask-free script (r = 0.3)
    cano_reinit: float = 0.3
    ood_resolution: int = 256
    ood_code_dim: int = 32
    resolution: int | None = None  # neural rendering resolution (None: the generator's, 128)
    samples_per_ray: tuple[int, int] | None = None
    lambda_l2: float = 1.0
    lambda_lpips: float = 1.0  # at the rendering resolution
    lpips_net: str = "vgg"
    lambda_l2_sr: float = 1.0  # L2 of the 512 SR composite; 0 skips the SR in this stage
    lambda_entropy: float = 1.0
    entropy_skew: float = 2.0  # H(b ** skew), as the official code
    lambda_area: float = 1.0
    # share of the iterations over which the entropy and area weights ramp up from 0 (0: from the start,
    # as the official code)
    blend_warmup: float = 0.0
    lambda_delta: float = 2e-3
    lambda_w: float = 1.0
    # semi-supervised (only with OOD masks)
    lambda_l2_ood: float = 1.0  # OOD-only render vs target inside the mask
    lambda_sparsity: float = 3.0  # blend weight outside the mask
    checkpoint_every: int = 500


@dataclass
class SuperResolutionConfig:
    """Fine-tuning of the SR module alone (docs/method.md, fitting)."""

    epochs: int = 100  # 0 skips the stage
    lr: float = 1e-3
    lambda_l2: float = 1.0
    lambda_lpips: float = 1.0
    lpips_net: str = "vgg"
    cache_renders: bool = True  # the fields are frozen: render each frame once
    checkpoint_every: int = 200


@dataclass
class PTIConfig:
    """Pivotal tuning (the PTI baseline): the generator is tuned around fixed W+ pivots."""

    steps: int = 350
    lr: float = 3e-4
    lambda_l2: float = 1.0
    lambda_lpips: float = 1.0
    lpips_net: str = "vgg"
    checkpoint_every: int = 100


@dataclass
class FitConfig:
    name: str = "paper"
    max_frames: int | None = None  # evenly spaced frames kept from the prepared video
    seed: int = 20221026
    init: InitConfig = field(default_factory=InitConfig)
    inversion: InversionConfig = field(default_factory=InversionConfig)
    joint: JointConfig = field(default_factory=JointConfig)
    superres: SuperResolutionConfig = field(default_factory=SuperResolutionConfig)
    pti: PTIConfig = field(default_factory=PTIConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitConfig:
        cfg = cls()
        for key, value in data.items():
            _set(cfg, key, value)
        return cfg


class SettingError(UserError, ValueError):
    """A --set override that names no setting or has a value of the wrong type."""


def paper() -> FitConfig:
    return FitConfig()


def fast() -> FitConfig:
    cfg = FitConfig(name="fast")
    cfg.init.batch = 16
    cfg.inversion.batch_frames = 4
    cfg.inversion.subset_epochs = 100  # 4 frames a step: 400 frame visits per frame of the subset
    cfg.joint.iterations = 2_500
    cfg.joint.batch_frames = 4
    cfg.superres.epochs = 50
    return cfg


def preview() -> FitConfig:
    cfg = FitConfig(name="preview", max_frames=12)
    cfg.init = InitConfig(samples=8, batch=4, compare="raw", resolution=64, samples_per_ray=(24, 24))
    cfg.inversion = InversionConfig(
        subset_frames=4,
        subset_epochs=10,
        all_epochs=2,
        lpips_net="alex",
        compare="raw",
        resolution=64,
        samples_per_ray=(24, 24),
        checkpoint_every=10,
    )
    cfg.joint = JointConfig(
        iterations=150,
        ood_resolution=128,
        resolution=64,
        samples_per_ray=(24, 24),
        lpips_net="alex",
        lambda_l2_sr=0.0,
        checkpoint_every=25,
    )
    cfg.superres = SuperResolutionConfig(epochs=0)
    cfg.pti = PTIConfig(steps=30, lpips_net="alex", checkpoint_every=10)
    return cfg


PRESETS = {"paper": paper, "fast": fast, "preview": preview}


def get_preset(name: str) -> FitConfig:
    if name not in PRESETS:
        raise SettingError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return PRESETS[name]()


def _convert(current: Any, value: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.lower() in ("none", "null"):
        return None
    if isinstance(current, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingError(f"{key}: expected true/false, got {value!r}")
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    if isinstance(current, tuple) or (current is None and "," in text):
        return tuple(int(v) for v in text.strip("()").split(","))
    if current is None:
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _set(cfg: Any, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    target = cfg
    for part in parents:
        if not dataclasses.is_dataclass(target) or not hasattr(target, part):
            raise SettingError(f"unknown setting {dotted!r}")
        target = getattr(target, part)
    names = {f.name for f in dataclasses.fields(target)}
    if leaf not in names:
        raise SettingError(f"unknown setting {dotted!r} (known here: {', '.join(sorted(names))})")
    current = getattr(target, leaf)
    if dataclasses.is_dataclass(current):
        if not isinstance(value, dict):
            raise SettingError(f"{dotted!r} is a group; set its fields, e.g. {dotted}.{next(iter(names))}=...")
        for key, sub in value.items():
            _set(current, key, sub)
        return
    if isinstance(value, list):
        value = tuple(value)
    setattr(target, leaf, _convert(current, value, dotted))


def apply_overrides(cfg: FitConfig, overrides: list[str]) -> FitConfig:
    """Apply ``section.field=value`` strings (e.g. ``joint.iterations=200``, ``init.samples_per_ray=16,16``)."""
    for item in overrides:
        if "=" not in item:
            raise SettingError(f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            _set(cfg, key.strip(), value)
        except (TypeError, ValueError) as exc:
            raise SettingError(f"{item!r}: {exc}") from exc
    return cfg


def scaled(cfg: FitConfig, factor: float) -> FitConfig:
    """A copy of ``cfg`` with every stage's optimisation length multiplied by ``factor`` (at least one
    step each): the app's effort knob, for a quick look before a full fit."""
    if factor <= 0:
        raise SettingError(f"the effort factor must be positive, got {factor}")
    out = FitConfig.from_dict(cfg.to_dict())

    def n(value: int) -> int:
        return max(1, round(value * factor)) if value > 0 else 0

    out.init.samples = max(out.init.batch, n(out.init.samples))
    out.inversion.subset_epochs = n(out.inversion.subset_epochs)
    out.inversion.all_epochs = n(out.inversion.all_epochs)
    out.joint.iterations = n(out.joint.iterations)
    out.superres.epochs = n(out.superres.epochs)
    out.pti.steps = n(out.pti.steps)
    return out
