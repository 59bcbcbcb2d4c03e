"""The fit's presets, and the app's effort knob.

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
"""

from __future__ import annotations

from ..numbers import Range
from ..settings import SettingError
from .config import FitConfig, InitConfig, InversionConfig, JointConfig, PTIConfig, SuperResolutionConfig


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


EFFORT = Range(0, 10, lo_open=True)


def scaled(cfg: FitConfig, factor: float) -> FitConfig:
    """A copy of ``cfg`` with every stage's optimisation length multiplied by ``factor`` (at least one
    step each): the app's effort knob, for a quick look before a full fit."""
    factor = EFFORT.check(factor, "the effort factor", SettingError)
    out = FitConfig.from_dict(cfg.to_dict())

    def n(value: int) -> int:
        return max(1, round(value * factor)) if value > 0 else 0

    out.init.samples = max(out.init.batch, n(out.init.samples))
    out.inversion.subset_epochs = n(out.inversion.subset_epochs)
    out.inversion.all_epochs = n(out.inversion.all_epochs)
    out.joint.iterations = n(out.joint.iterations)
    out.joint.bootstrap_steps = n(out.joint.bootstrap_steps)
    out.superres.epochs = n(out.superres.epochs)
    out.pti.steps = n(out.pti.steps)
    return out
