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
``--set``). Every field declares its documented range (its spec: iterations >= 0, samples >= 1, learning
rates > 0, weights >= 0, finite numbers only, ...); a value outside it raises ``SettingError`` the moment
it is set, whichever way (constructor, preset, ``--set``, ``from_dict``, plain assignment), so a bad
setting is refused before any work starts.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import UserError
from ..numbers import SEED, Range


class SettingError(UserError, ValueError):
    """A setting that does not exist, or a value outside its documented range (named in the message)."""


# --- what each setting may hold ------------------------------------------------------------------------
# Every field below declares a spec (``setting(default, spec)``); every assignment is checked against it
# (``Settings.__setattr__``): the dataclass constructor, ``dataclasses.replace``, ``--set``, presets,
# ``from_dict`` and plain ``cfg.joint.lr = ...`` alike, so a bad value is refused before any work starts.


class Spec:
    """What one setting may hold: ``check`` a Python value, ``parse`` one written as text (``--set``)."""

    def describe(self) -> str:
        raise NotImplementedError

    def check(self, value: Any, key: str) -> Any:
        raise NotImplementedError

    def parse(self, text: str, key: str) -> Any:
        return self.check(text, key)

    def refuse(self, key: str, value: Any) -> SettingError:
        return SettingError(f"{key} must be {self.describe()}, got {value!r}")


@dataclass(frozen=True)
class Number(Spec):
    """A finite integer or real in a documented range (``innout.numbers.Range``)."""

    range: Range

    def describe(self) -> str:
        return self.range.describe()

    def check(self, value: Any, key: str) -> Any:
        return self.range.check(value, key, SettingError)

    def parse(self, text: str, key: str) -> Any:
        return self.range.parse(text, key, SettingError)


@dataclass(frozen=True)
class Choice(Spec):
    options: tuple[str, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(repr(o) for o in self.options)

    def check(self, value: Any, key: str) -> Any:
        if value not in self.options:
            raise self.refuse(key, value)
        return value

    def parse(self, text: str, key: str) -> Any:
        return self.check(str(text).strip(), key)


@dataclass(frozen=True)
class Flag(Spec):
    TRUE: ClassVar[tuple[str, ...]] = ("1", "true", "yes", "on")
    FALSE: ClassVar[tuple[str, ...]] = ("0", "false", "no", "off")

    def describe(self) -> str:
        return "true or false"

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, bool):
            raise self.refuse(key, value)
        return value

    def parse(self, text: str, key: str) -> Any:
        word = str(text).strip().lower()
        if word in self.TRUE or word in self.FALSE:
            return word in self.TRUE
        raise self.refuse(key, text)


@dataclass(frozen=True)
class Name(Spec):
    def describe(self) -> str:
        return "a non-empty name"

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise self.refuse(key, value)
        return value


@dataclass(frozen=True)
class SamplesPerRay(Spec):
    """(coarse, fine) samples per ray, or None for the generator's own."""

    coarse: Range = Range(1, 1024, integer=True)
    fine: Range = Range(0, 1024, integer=True)

    def describe(self) -> str:
        return f"none or COARSE,FINE with coarse {self.coarse.describe()} and fine {self.fine.describe()}"

    def check(self, value: Any, key: str) -> Any:
        if value is None:
            return None
        if not isinstance(value, (tuple, list)) or len(value) != 2:
            raise self.refuse(key, value)
        return self.coarse.check(value[0], f"{key} (coarse)", SettingError), self.fine.check(
            value[1], f"{key} (fine)", SettingError
        )

    def parse(self, text: str, key: str) -> Any:
        text = str(text).strip()
        if text.lower() in ("none", "null"):
            return None
        parts = text.strip("()[] ").split(",")
        if len(parts) != 2:
            raise self.refuse(key, text)
        return self.check(
            (self.coarse.parse(parts[0], f"{key} (coarse)", SettingError),
             self.fine.parse(parts[1], f"{key} (fine)", SettingError)), key,
        )  # fmt: skip


@dataclass(frozen=True)
class Section(Spec):
    """A group of settings (another ``Settings`` dataclass)."""

    kind: type

    def describe(self) -> str:
        return f"a {self.kind.__name__}"

    def check(self, value: Any, key: str) -> Any:
        if not isinstance(value, self.kind):
            first = next(iter(_specs(self.kind)))
            raise SettingError(f"{key!r} is a group of settings; set its fields, e.g. {key}.{first}=VALUE")
        return value


def setting(default: Any, spec: Spec) -> Any:
    """A dataclass field whose values are checked against ``spec``."""
    return field(default=default, metadata={"spec": spec})


def section(kind: type) -> Any:
    return field(default_factory=kind, metadata={"spec": Section(kind)})


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


def _specs(kind: type) -> dict[str, Spec]:
    return {f.name: f.metadata["spec"] for f in dataclasses.fields(kind)}


class Settings:
    """Base of the configuration dataclasses: every assignment is checked against its field's spec, and
    names no field are refused (a typo must not pass as a new attribute). ``group`` prefixes the names
    in messages (``joint.lr``)."""

    group: ClassVar[str] = ""

    def __setattr__(self, name: str, value: Any) -> None:
        specs = _specs(type(self))
        if name not in specs:
            raise SettingError(f"unknown setting {self.key(name)!r} (known here: {', '.join(sorted(specs))})")
        super().__setattr__(name, specs[name].check(value, self.key(name)))

    def key(self, name: str) -> str:
        return f"{self.group}.{name}" if self.group else name

    def validate(self) -> None:
        """Check every field again, groups included (values put in by other means than assignment)."""
        for name, spec in _specs(type(self)).items():
            value = getattr(self, name)
            spec.check(value, self.key(name))
            if isinstance(value, Settings):
                value.validate()


@dataclass
class InitConfig(Settings):
    """Nearest-neighbour initialisation (paper Algorithm 1; docs/method.md)."""

    group: ClassVar[str] = "init"
    samples: int = setting(500, AT_LEAST_ONE)  # random z drawn; each frame keeps the one whose render is closest
    batch: int = setting(4, BATCH)  # candidates synthesised at once
    lpips_net: str = setting("alex", LPIPS)
    compare: str = setting("sr", COMPARE)  # 'sr': the 512 image as in the official code; 'raw': the neural render
    resolution: int | None = setting(None, RAYS)  # neural rendering resolution (None: the generator's)
    samples_per_ray: tuple[int, int] | None = setting(None, SamplesPerRay())  # (coarse, fine); None: the generator's


@dataclass
class InversionConfig(Settings):
    """In-distribution W+ inversion: w_t = w_cano + a * r_t (docs/method.md, fitting)."""

    group: ClassVar[str] = "inversion"
    residual_scale: float = setting(0.7, Number(Range(0, 10)))
    subset_frames: int = setting(16, AT_LEAST_ONE)  # K
    subset_epochs: int = setting(200, ITERATIONS)  # M1, on the K frames
    all_epochs: int = setting(20, ITERATIONS)  # M2, on all frames
    batch_frames: int = setting(1, BATCH)
    lr: float = setting(5e-3, LR)
    rampup: float = setting(0.05, SHARE)  # share of steps with a linear lr ramp-up
    rampdown: float = setting(0.25, SHARE)  # share of steps with a cosine lr ramp-down
    lambda_l2: float = setting(1.0, WEIGHT)
    lambda_lpips: float = setting(1.0, WEIGHT)
    lambda_delta: float = setting(1e-3, WEIGHT)
    lambda_w: float = setting(0.0, WEIGHT)
    lpips_net: str = setting("vgg", LPIPS)
    compare: str = setting("sr", COMPARE)  # loss on the 512 SR image ('sr') or on the neural render ('raw')
    resolution: int | None = setting(None, RAYS)
    samples_per_ray: tuple[int, int] | None = setting(None, SamplesPerRay())
    space: str = setting("w+", Choice(("w+", "w")))  # 'w+' (14 codes per frame) or 'w' (one code: the W baseline)
    checkpoint_every: int = setting(200, EVERY)


W_ALLOWANCES = ("none", "start")  # what the joint stage's L_w lets each frame's latent keep for free
AREA_ALLOWANCES = ("none", "masks", "guess")  # what the joint stage's area term lets the object cover for free
BLEND_SPANS = ("shell", "front", "ray")  # where the OOD head start puts b = 1 on a masked ray (fit/bootstrap.py)
OOD_MOTIONS = ("none", "translation", "auto")  # how the OOD field may move from frame to frame (scene/ood_field.py)
EMPTY_SPANS = ("front", "everywhere")  # where the OOD head start teaches the field to be empty (fit/bootstrap.py)


@dataclass
class JointConfig(Settings):
    """Joint optimisation of the latents, the OOD tri-plane, decoder and per-frame codes (docs/method.md, fitting)."""

    group: ClassVar[str] = "joint"
    iterations: int = setting(10_000, ITERATIONS)
    batch_frames: int = setting(1, BATCH)
    lr: float = setting(5e-3, LR)  # OOD tri-plane, decoder and codes
    # beyond the paper: the OOD decoder's own learning rate in the joint stage (None: ``lr``, as the official code).
    # The decoder is shared by every sample of every ray, so Adam's steps on it move the field's density and blend
    # everywhere at once (the head start keeps ``lr`` for it). 5e-4 measured better on most world objects but cost
    # 4 dB in the band of the tiny colour benchmark, below its acceptance (docs/results.md), so the official rate
    ood_decoder_lr: float | None = setting(None, Number(Range(0, 1, lo_open=True, optional=True)))
    latent_lr: float = setting(5e-4, Number(Range(0, 1)))  # w_cano and residuals; 0 freezes them (planes cached)
    # before a fit without masks w_cano becomes (1 - r) w_cano + r N(0, 1), as the official mask-free script
    # (r = 0.3); a fit with masks starts from its masked inversion, as the official mask-supervised script
    cano_reinit: float = setting(0.3, SHARE)
    ood_resolution: int = setting(256, Number(Range(4, 2048, integer=True)))
    ood_code_dim: int = setting(32, Number(Range(1, 4096, integer=True)))
    # beyond the paper: 'translation' gives the OOD field a per-frame translation, started at the first guess's
    # per-frame centroid and trained with the field, so that an object moving against the head stays one object;
    # 'auto': the same when the first guess's centroids move by more than the object's size, else none (the
    # translations stay 0); 'none': the paper's field (only the per-frame code varies). Measured on the world: the
    # card needs 'translation' (IoU with a mask 0.11 -> 0.50) but head-fixed objects lose with it, and 'auto' misses
    # the card (docs/results.md), so 'none' is the default
    ood_motion: str = setting("none", Choice(OOD_MOTIONS))
    resolution: int | None = setting(None, RAYS)  # neural rendering resolution (None: the generator's, 128)
    samples_per_ray: tuple[int, int] | None = setting(None, SamplesPerRay())
    lambda_l2: float = setting(1.0, WEIGHT)
    lambda_lpips: float = setting(1.0, WEIGHT)  # at the rendering resolution
    lpips_net: str = setting("vgg", LPIPS)
    lambda_l2_sr: float = setting(1.0, WEIGHT)  # L2 of the 512 SR composite; 0 skips the SR in this stage
    lambda_entropy: float = setting(1.0, WEIGHT)
    entropy_skew: float = setting(2.0, Number(Range(0, 100, lo_open=True)))  # H(b ** skew), as the official code
    lambda_area: float = setting(1.0, WEIGHT)
    # beyond the paper: share of the iterations during which the entropy and area terms are off (then at full
    # weight); 0: from the start, as the official code. 0.5 measured better on every world object
    # (docs/differences.md)
    blend_warmup: float = setting(0.5, SHARE)
    # beyond the paper: after the warm-up, the entropy and area weights rise linearly from 0 to full over this share
    # of the iterations; 0: at full weight at once (then the OOD opacity collapsed within 10-15 steps). 0.5 measured
    # better inside the object on every world object, with and without a mask (docs/differences.md)
    blend_ramp: float = setting(0.5, SHARE)
    # beyond the paper (innout/fit/bootstrap.py): before the stage, the OOD field is regressed for this many
    # steps onto a first guess of the object (the masks when given, else where the inversion's render errs
    # by more than Otsu's threshold and ``bootstrap_floor``); 0: the paper's start (the field collapses)
    bootstrap_steps: int = setting(300, ITERATIONS)
    bootstrap_floor: float = setting(0.05, SHARE)  # mean absolute error in [0, 1] units below which a pixel is face
    # unsupervised only: the inversion whose errors make the first guess: 'w+' (the one the joint stage starts
    # from) or 'w' (one code per frame, run as a stage of its own: a regularised inversion that explains less of
    # the object, so its errors show more of it). 'w' makes a better guess but not a better fit on the world
    # (mixed across objects, docs/differences.md) and costs a second inversion, so 'w+'
    guess_space: str = setting("w+", Choice(("w+", "w")))
    # beyond the paper: the area term's free share per frame: 'none' (the official term: every covered ray costs),
    # 'masks' (with the user's masks only: only the part of each frame's total coverage above the masks' share is
    # penalised, so the object the user marked is not worn down while the face latents learn to imitate it) or
    # 'guess' (also without masks: above the first guess's share). Measured on the world (docs/differences.md):
    # 'masks' better on every object with a mask; 'guess' without masks better inside the object on all five but a
    # worse mask on three, so not the default
    area_allowance: str = setting("masks", Choice(AREA_ALLOWANCES))
    # the head start's cross-entropy of b: the shell samples' and the others' means averaged (true), or the mean
    # over all samples (false; the shell is a few percent of them). Measured: mixed on the world (docs/differences.md)
    bootstrap_balanced: bool = setting(False, Flag())
    # where the head start puts b = 1 on a masked ray: 'shell' (the shell only), 'front' (also the empty space in
    # front of it) or 'ray' (the whole ray, behind the shell too). 'front' measured better than 'shell' on three
    # world objects and the colour benchmark, the same on two (docs/differences.md)
    bootstrap_blend: str = setting("front", Choice(BLEND_SPANS))
    # where the head start teaches the OOD density to be empty: 'front' (only in front of the shell on the guessed
    # rays, as the first head start) or 'everywhere' (every sample but the shell: elsewhere the untrained density
    # stays high and only b, a sigmoid never quite 0, hides it, a leak the joint stage then removes through the
    # shared decoder, taking the object with it). 'everywhere' measured better with masks on every world object and
    # on the tiny colour benchmark (docs/results.md)
    bootstrap_empty: str = setting("everywhere", Choice(EMPTY_SPANS))
    # beyond the paper, unsupervised only: the semi-supervised OOD-only L2 with the first guess's masks (the head
    # start's) in place of the user's, at this weight falling linearly to 0 over the first ``guide_fade`` share of
    # the iterations: the OOD colour stays the better explanation of the object while the face latents adapt.
    # 1 measured better than 0 on four world objects, worse on the tiny random-generator benchmark (docs/differences.md)
    lambda_guide: float = setting(1.0, WEIGHT)
    guide_fade: float = setting(1.0, SHARE)
    # the same fading guide for b: the cross-entropy of each ray's largest b against the first guess's masks.
    # Measured mixed on the world (docs/differences.md), so off
    lambda_guide_blend: float = setting(0.0, WEIGHT)
    lambda_delta: float = setting(2e-3, WEIGHT)
    lambda_w: float = setting(1.0, WEIGHT)
    # beyond the paper: L_w's free distance per frame: 'start' (only the distance beyond where the frame's latent
    # began the stage costs: the latents may not wander further from the prior, nor are they pulled onto its mean)
    # or 'none' (the official term: every distance from w_avg costs). The official term is a norm, so its gradient
    # never fades: with Adam at 5e-4 it pulled every frame onto w_avg within ~1,500 steps on the world, and at the
    # fast and paper presets' lengths the fit became the mean face with the OOD field painting the rest (removal
    # worse than the input); 'start' kept the split there. At 150 steps mixed (docs/differences.md)
    w_allowance: str = setting("start", Choice(W_ALLOWANCES))
    # semi-supervised (only with OOD masks)
    lambda_l2_ood: float = setting(1.0, WEIGHT)  # OOD-only render vs target inside the mask
    lambda_sparsity: float = setting(3.0, WEIGHT)  # blend weight outside the mask
    # beyond the paper: the cross-entropy of each ray's largest b against the mask (the user said where the object
    # is): nothing else holds b up inside it against the area term. Measured on the world (docs/differences.md):
    # IoU up where the propagated masks are right (surgical mask 0.44 -> 0.88); 0: the paper's semi-supervised losses
    lambda_mask_blend: float = setting(1.0, WEIGHT)
    checkpoint_every: int = setting(500, EVERY)


@dataclass
class SuperResolutionConfig(Settings):
    """Fine-tuning of the SR module alone (docs/method.md, fitting)."""

    group: ClassVar[str] = "superres"
    epochs: int = setting(100, ITERATIONS)  # 0 skips the stage
    lr: float = setting(1e-3, LR)
    lambda_l2: float = setting(1.0, WEIGHT)
    lambda_lpips: float = setting(1.0, WEIGHT)
    lpips_net: str = setting("vgg", LPIPS)
    cache_renders: bool = setting(True, Flag())  # the fields are frozen: render each frame once
    checkpoint_every: int = setting(200, EVERY)


@dataclass
class PTIConfig(Settings):
    """Pivotal tuning (the PTI baseline): the generator is tuned around fixed W+ pivots."""

    group: ClassVar[str] = "pti"
    steps: int = setting(350, ITERATIONS)
    lr: float = setting(3e-4, LR)
    lambda_l2: float = setting(1.0, WEIGHT)
    lambda_lpips: float = setting(1.0, WEIGHT)
    lpips_net: str = setting("vgg", LPIPS)
    checkpoint_every: int = setting(100, EVERY)


@dataclass
class FitConfig(Settings):
    name: str = setting("paper", Name())
    # evenly spaced frames kept from the prepared video (None: all)
    max_frames: int | None = setting(None, Number(Range(1, None, integer=True, optional=True)))
    seed: int = setting(20221026, Number(SEED))
    init: InitConfig = section(InitConfig)
    inversion: InversionConfig = section(InversionConfig)
    joint: JointConfig = section(JointConfig)
    superres: SuperResolutionConfig = section(SuperResolutionConfig)
    pti: PTIConfig = section(PTIConfig)

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
            _set(cfg, str(key), value)
        cfg.validate()
        return cfg


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


def _set(cfg: Settings, dotted: str, value: Any) -> None:
    """Set ``section.field`` (or a whole section from a dict) on ``cfg``; text is parsed by the field's spec."""
    *parents, leaf = dotted.split(".")
    target = cfg
    for part in parents:
        specs = _specs(type(target))
        if not isinstance(specs.get(part), Section):
            groups = sorted(k for k, s in specs.items() if isinstance(s, Section)) or ["none"]
            name = target.key(part)
            raise SettingError(f"unknown setting {dotted!r} ({name!r} is no group; groups: {', '.join(groups)})")
        target = getattr(target, part)
    specs = _specs(type(target))
    if leaf not in specs:
        raise SettingError(f"unknown setting {target.key(leaf)!r} (known here: {', '.join(sorted(specs))})")
    spec, key = specs[leaf], target.key(leaf)
    if isinstance(spec, Section) and isinstance(value, dict):  # a group from a dict: field by field
        for sub, sub_value in value.items():
            _set(getattr(target, leaf), str(sub), sub_value)
        return
    setattr(target, leaf, spec.parse(value, key) if isinstance(value, str) else value)


def apply_overrides(cfg: FitConfig, overrides: list[str]) -> FitConfig:
    """Apply ``section.field=value`` strings (e.g. ``joint.iterations=200``, ``init.samples_per_ray=16,16``);
    a name that is no setting or a value outside the setting's range raises ``SettingError`` at once."""
    for item in overrides:
        if "=" not in item:
            raise SettingError(f"--set takes KEY=VALUE (e.g. joint.iterations=200), got {item!r}")
        key, value = item.split("=", 1)
        _set(cfg, key.strip(), value)
    cfg.validate()
    return cfg


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
