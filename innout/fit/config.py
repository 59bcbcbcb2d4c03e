"""Every hyper-parameter of a fit, in one place: validated dataclasses (``innout.settings``), one group per
stage. The presets that fill them are in ``innout.fit.presets``; ``python -m innout fit --set help`` prints every
field with its value, range and one-line help; the measurements behind the defaults that depart from the paper
are in docs/differences.md and docs/settings.md.

Any field can be overridden with ``apply_overrides(cfg, ["joint.iterations=200", ...])`` (the CLI's
``--set``). Every field declares its documented range (its spec: iterations >= 0, samples >= 1, learning
rates > 0, weights >= 0, finite numbers only, ...); a value outside it raises ``SettingError`` the moment
it is set, whichever way (constructor, preset, ``--set``, ``from_dict``, plain assignment), so a bad
setting is refused before any work starts.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from ..numbers import SEED, Range
from ..settings import (
    Choice,
    Flag,
    Name,
    Number,
    SamplesPerRay,
    SettingError,
    Settings,
    section,
    set_dotted,
    setting,
)

# the documented ranges shared by several settings
ITERATIONS = Number(Range(0, 10_000_000, integer=True))  # steps or epochs; 0 skips
AT_LEAST_ONE = Number(Range(1, 1_000_000, integer=True))  # counts that cannot be 0 (frames, samples, batches)
BATCH = Number(Range(1, 4096, integer=True))
EVERY = Number(Range(1, None, integer=True))  # checkpoint interval, steps
LR = Number(Range(0, 1, lo_open=True))  # Adam learning rates: > 0; above 1 nothing converges
WEIGHT = Number(Range(0, 1e6))  # loss weights; 0 drops the term
SHARE = Number(Range(0, 1))  # a share of the steps, or a mixing ratio
RAYS = Number(Range(8, 1024, integer=True, optional=True))  # neural rendering resolution; None: the generator's
LPIPS = Choice(("alex", "vgg"))
COMPARE = Choice(("sr", "raw"))


@dataclass
class InitConfig(Settings):
    """Nearest-neighbour initialisation (paper Algorithm 1; docs/method.md)."""

    group: ClassVar[str] = "init"
    samples: int = setting(500, AT_LEAST_ONE, help="random z drawn; each frame keeps the one whose render is closest")
    batch: int = setting(4, BATCH, help="candidates synthesised at once (more: faster, more memory)")
    lpips_net: str = setting("alex", LPIPS, help="the LPIPS network that compares candidates: 'alex' or 'vgg'")
    compare: str = setting(
        "sr", COMPARE, help="'sr': compare the 512 SR image, as the official code; 'raw': the neural render"
    )
    resolution: int | None = setting(None, RAYS, help="neural rendering resolution; None: the generator's own")
    samples_per_ray: tuple[int, int] | None = setting(
        None, SamplesPerRay(), help="samples per ray as COARSE,FINE; None: the generator's own"
    )


@dataclass
class InversionConfig(Settings):
    """In-distribution W+ inversion: w_t = w_cano + a * r_t (docs/method.md, fitting)."""

    group: ClassVar[str] = "inversion"
    residual_scale: float = setting(
        0.7, Number(Range(0, 10)), help="a in w_t = w_cano + a * r_t: how much each frame's residual counts"
    )
    subset_frames: int = setting(16, AT_LEAST_ONE, help="K: evenly spaced frames of the first phase")
    subset_epochs: int = setting(200, ITERATIONS, help="M1: epochs on the K frames; 0 skips the phase")
    all_epochs: int = setting(20, ITERATIONS, help="M2: epochs on all frames after it; 0 skips the phase")
    batch_frames: int = setting(1, BATCH, help="frames per optimisation step")
    lr: float = setting(5e-3, LR, help="Adam learning rate of w_cano and the residuals")
    rampup: float = setting(0.05, SHARE, help="share of the steps with a linear learning-rate ramp-up; 0: none")
    rampdown: float = setting(0.25, SHARE, help="share of the steps with a cosine learning-rate ramp-down; 0: none")
    lambda_l2: float = setting(1.0, WEIGHT, help="weight of the L2 between image and frame; 0: off")
    lambda_lpips: float = setting(1.0, WEIGHT, help="weight of the LPIPS between image and frame; 0: off")
    lambda_delta: float = setting(
        1e-3, WEIGHT, help="weight of L_Delta (the 13 W+ codes' distance to the first); 0: off"
    )
    lambda_w: float = setting(0.0, WEIGHT, help="weight of L_w (the latents' distance to w_avg); 0: off")
    lpips_net: str = setting("vgg", LPIPS, help="the LPIPS network of the loss: 'vgg' (the paper's) or 'alex'")
    compare: str = setting(
        "sr", COMPARE, help="'sr': the loss on the 512 SR image, as the official code; 'raw': the neural render"
    )
    resolution: int | None = setting(None, RAYS, help="neural rendering resolution; None: the generator's own")
    samples_per_ray: tuple[int, int] | None = setting(
        None, SamplesPerRay(), help="samples per ray as COARSE,FINE; None: the generator's own"
    )
    space: str = setting(
        "w+",
        Choice(("w+", "w")),
        help="'w+': 14 codes per frame (the method); 'w': one code per frame (the W baseline)",
    )
    checkpoint_every: int = setting(200, EVERY, help="steps between checkpoints a stopped fit resumes from")


W_ALLOWANCES = ("none", "start")  # what the joint stage's L_w lets each frame's latent keep for free
AREA_ALLOWANCES = ("none", "masks", "guess")  # what the joint stage's area term lets the object cover for free
BLEND_SPANS = ("shell", "front", "ray")  # where the OOD head start puts b = 1 on a masked ray (fit/bootstrap.py)
OOD_MOTIONS = ("none", "translation", "auto")  # how the OOD field may move from frame to frame (scene/ood_field.py)
EMPTY_SPANS = ("front", "everywhere")  # where the OOD head start teaches the field to be empty (fit/bootstrap.py)
AREA_REACHES = ("all", "planes")  # which OOD parameters the area term trains (fit/joint.py)
OOD_BACKGROUNDS = ("black", "random")  # what the OOD-only image is seen against in its losses (losses.py)
BOOTSTRAP_DEPTHS = ("surface", "background", "views")  # at what depth the OOD head start puts the object (bootstrap.py)


@dataclass
class JointConfig(Settings):
    """Joint optimisation of the latents, the OOD tri-plane, decoder and per-frame codes (docs/method.md, fitting).
    Why the defaults that depart from the paper are what they are: docs/settings.md."""

    group: ClassVar[str] = "joint"
    iterations: int = setting(10_000, ITERATIONS, help="optimisation steps of the joint stage; 0 skips it")
    batch_frames: int = setting(1, BATCH, help="frames per step")
    lr: float = setting(5e-3, LR, help="Adam learning rate of the OOD tri-plane, its decoder and the per-frame codes")
    ood_decoder_lr: float | None = setting(
        None,
        Number(Range(0, 1, lo_open=True, optional=True)),
        help="beyond the paper: the OOD decoder's own learning rate; None: joint.lr, as the official code",
    )
    latent_lr: float = setting(
        5e-4, Number(Range(0, 1)), help="learning rate of w_cano and the residuals; 0 freezes them (face planes cached)"
    )
    cano_reinit: float = setting(
        0.3,
        SHARE,
        help="r: without masks w_cano restarts as (1 - r) w_cano + r N(0, 1), as the official script; 0: off",
    )
    ood_resolution: int = setting(256, Number(Range(4, 2048, integer=True)), help="resolution of the OOD tri-plane")
    ood_code_dim: int = setting(
        32, Number(Range(1, 4096, integer=True)), help="length of each frame's code fed to the OOD decoder"
    )
    ood_motion: str = setting(
        "auto",
        Choice(OOD_MOTIONS),
        help="beyond the paper: 'none': a still OOD field; 'translation': a per-frame shift; 'auto': one if it moves",
    )
    resolution: int | None = setting(None, RAYS, help="neural rendering resolution; None: the generator's own (128)")
    samples_per_ray: tuple[int, int] | None = setting(
        None, SamplesPerRay(), help="samples per ray as COARSE,FINE; None: the generator's own"
    )
    lambda_l2: float = setting(1.0, WEIGHT, help="weight of the composite's L2 at the rendering resolution; 0: off")
    lambda_lpips: float = setting(
        1.0, WEIGHT, help="weight of the composite's LPIPS at the rendering resolution; 0: off"
    )
    lpips_net: str = setting("vgg", LPIPS, help="the LPIPS network of the loss: 'vgg' (the paper's) or 'alex'")
    lambda_l2_sr: float = setting(
        1.0, WEIGHT, help="weight of the 512 SR composite's L2; 0: off, and the SR is not run in this stage"
    )
    lambda_entropy: float = setting(
        1.0, WEIGHT, help="weight of the blend entropy H(b ** skew), pushing b to 0 or 1; 0: off"
    )
    entropy_skew: float = setting(
        2.0, Number(Range(0, 100, lo_open=True)), help="the skew in the entropy H(b ** skew); 2 as the official code"
    )
    lambda_area: float = setting(1.0, WEIGHT, help="weight of the blend area term (each ray's largest b costs); 0: off")
    area_reach: str = setting(
        "planes",
        Choice(AREA_REACHES),
        help="beyond the paper: what the area term trains: 'planes' (the OOD tri-plane only) or 'all' (paper)",
    )
    blend_warmup: float = setting(
        0.0, SHARE, help="beyond the paper: share of the steps with entropy and area off; 0: on from the start (paper)"
    )
    blend_ramp: float = setting(
        0.0,
        SHARE,
        help="beyond the paper: share of the steps over which they then rise to full; 0: full at once (paper)",
    )
    bootstrap_steps: int = setting(
        300,
        ITERATIONS,
        help="beyond the paper: head-start steps fitting the OOD field to a first guess; 0: the paper's start",
    )
    bootstrap_floor: float = setting(
        0.05, SHARE, help="without masks: error in [0, 1] below which a pixel counts as face in the first guess"
    )
    guess_space: str = setting(
        "w+",
        Choice(("w+", "w")),
        help="without masks: the inversion whose errors make the first guess: 'w+' (the stage's) or 'w' (one more)",
    )
    area_allowance: str = setting(
        "masks",
        Choice(AREA_ALLOWANCES),
        help="beyond the paper: area left free: 'none' (paper), 'masks' (the user's masks), 'guess' (the first guess)",
    )
    bootstrap_balanced: bool = setting(
        False,
        Flag(),
        help="head start's cross-entropy of b: true: shell and other samples weighed equally; false: all as one",
    )
    bootstrap_blend: str = setting(
        "front",
        Choice(BLEND_SPANS),
        help="where the head start puts b = 1 on a masked ray: 'shell', 'front' (and before it) or 'ray' (all of it)",
    )
    bootstrap_empty: str = setting(
        "everywhere",
        Choice(EMPTY_SPANS),
        help="where the head start empties the OOD field: 'front' (before the shell) or 'everywhere' but the shell",
    )
    bootstrap_depth: str = setting(
        "views",
        Choice(BOOTSTRAP_DEPTHS),
        help="head start's depth: 'surface' (inversion's), 'background' (masked off it), 'views' (and views agree)",
    )
    lambda_guide: float = setting(
        1.0, WEIGHT, help="beyond the paper, without masks: weight of the OOD-only L2 inside the first guess; 0: off"
    )
    guide_fade: float = setting(1.0, SHARE, help="share of the steps over which the first-guess guides fall to 0")
    lambda_guide_blend: float = setting(
        0.0,
        WEIGHT,
        help="without masks: weight of the largest b's cross-entropy against the first guess (fading); 0: off",
    )
    lambda_delta: float = setting(
        2e-3, WEIGHT, help="weight of L_Delta (the 13 W+ codes' distance to the first); 0: off"
    )
    lambda_w: float = setting(
        1.0, WEIGHT, help="weight of L_w (the latents' distance to w_avg, see w_allowance); 0: off"
    )
    w_allowance: str = setting(
        "start",
        Choice(W_ALLOWANCES),
        help="beyond the paper: L_w counts 'start': the distance beyond each latent's start; 'none': all (paper)",
    )
    ood_background: str = setting(
        "black",
        Choice(OOD_BACKGROUNDS),
        help="the OOD-only image's background in its L2 terms: 'black' (official) or 'random' (a colour per step)",
    )
    # semi-supervised (only with OOD masks)
    lambda_l2_ood: float = setting(
        1.0, WEIGHT, help="with masks: weight of the OOD-only render's L2 against the frame inside the mask; 0: off"
    )
    lambda_sparsity: float = setting(
        3.0, WEIGHT, help="with masks: weight of the blend weight b outside the mask; 0: off"
    )
    lambda_mask_blend: float = setting(
        1.0,
        WEIGHT,
        help="beyond the paper, with masks: weight of the largest b's cross-entropy against the mask; 0: off",
    )
    checkpoint_every: int = setting(500, EVERY, help="steps between checkpoints a stopped fit resumes from")


@dataclass
class SuperResolutionConfig(Settings):
    """Fine-tuning of the SR module alone (docs/method.md, fitting)."""

    group: ClassVar[str] = "superres"
    epochs: int = setting(100, ITERATIONS, help="epochs of SR fine-tuning; 0 skips the stage")
    lr: float = setting(1e-3, LR, help="Adam learning rate of the SR module")
    lambda_l2: float = setting(1.0, WEIGHT, help="weight of the SR image's L2 against the frame; 0: off")
    lambda_lpips: float = setting(1.0, WEIGHT, help="weight of the SR image's LPIPS against the frame; 0: off")
    lpips_net: str = setting("vgg", LPIPS, help="the LPIPS network of the loss: 'vgg' (the paper's) or 'alex'")
    cache_renders: bool = setting(
        True, Flag(), help="true: render each frame once (the fields are frozen); false: render again at every step"
    )
    checkpoint_every: int = setting(200, EVERY, help="steps between checkpoints a stopped fit resumes from")


@dataclass
class PTIConfig(Settings):
    """Pivotal tuning (the PTI baseline): the generator is tuned around fixed W+ pivots."""

    group: ClassVar[str] = "pti"
    steps: int = setting(350, ITERATIONS, help="steps of tuning the generator around the pivots; 0: none")
    lr: float = setting(3e-4, LR, help="Adam learning rate of the generator's weights")
    lambda_l2: float = setting(1.0, WEIGHT, help="weight of the image's L2 against the frame; 0: off")
    lambda_lpips: float = setting(1.0, WEIGHT, help="weight of the image's LPIPS against the frame; 0: off")
    lpips_net: str = setting("vgg", LPIPS, help="the LPIPS network of the loss: 'vgg' or 'alex'")
    checkpoint_every: int = setting(100, EVERY, help="steps between checkpoints a stopped fit resumes from")


@dataclass
class FitConfig(Settings):
    name: str = setting("paper", Name(), help="the configuration's label (a preset's name); it changes no result")
    max_frames: int | None = setting(
        None,
        Number(Range(1, None, integer=True, optional=True)),
        help="evenly spaced frames kept from the prepared video; None: all",
    )
    seed: int = setting(
        20221026, Number(SEED), help="seed of every random draw of the fit (init samples, re-initialisation, ...)"
    )
    init: InitConfig = section(InitConfig, help="nearest-neighbour initialisation: each frame's starting latent")
    inversion: InversionConfig = section(InversionConfig, help="in-distribution W+ inversion: w_t = w_cano + a * r_t")
    joint: JointConfig = section(
        JointConfig, help="joint optimisation of the latents and the OOD field (tri-plane, decoder, per-frame codes)"
    )
    superres: SuperResolutionConfig = section(SuperResolutionConfig, help="fine-tuning of the SR module alone")
    pti: PTIConfig = section(
        PTIConfig, help="pivotal tuning (the PTI baseline): the generator tuned around fixed pivots"
    )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FitConfig:
        """A configuration from ``to_dict``'s form (e.g. JSON): unknown keys and bad values are refused."""
        if not isinstance(data, dict):
            raise SettingError(f"a fit configuration must be a mapping of settings, got {type(data).__name__}")
        cfg = cls()
        for key, value in data.items():
            set_dotted(cfg, str(key), value)
        cfg.validate()
        return cfg
