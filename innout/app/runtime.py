"""What the app runs on: the generator (EG3D weights, or the labelled demo generator), the device, the
edit directions installed for that generator, and ZeroGPU's decorator where it exists.

Nothing here is UI: ``app.py`` and the tests call these directly.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..edit.directions import Direction, latent_space_digest, save_direction
from ..eg3d.generator import TriPlaneGenerator
from ..places import directions_dir
from ..runtime import pick_device

DEMO_KINDS = ("tiny", "faces")  # faces: the synthetic world's trained prior (innout.world); tiny: untrained


MAX_GPU_SECONDS = 120  # ZeroGPU refuses a call that asks for more (a visitor's quota is minutes a day)


def on_zero_gpu() -> bool:
    """Whether GPU work runs under ``spaces.GPU`` (a Hugging Face Space with the ``spaces`` package)."""
    if not os.environ.get("SPACE_ID"):
        return False
    try:
        import spaces  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return False
    return True


def gpu(fn=None, *, duration: int = 30):
    """``spaces.GPU(duration=...)`` on Hugging Face ZeroGPU Spaces (where the ``spaces`` package is installed and
    ``SPACE_ID`` is set); everywhere else the function is returned unchanged. Every call declares at most
    ``MAX_GPU_SECONDS``: work longer than that (a fit) runs as slices, one call each (``handlers.fit_slice``). The
    declared duration is kept on the function (``gpu_duration``) for the tests."""
    if duration > MAX_GPU_SECONDS:
        raise ValueError(f"a GPU call may declare at most {MAX_GPU_SECONDS} s, not {duration}")

    def wrap(f):
        wrapped = f
        if on_zero_gpu():
            import spaces  # type: ignore[import-not-found]

            wrapped = spaces.GPU(duration=duration)(f)
        wrapped.gpu_duration = duration
        return wrapped

    return wrap(fn) if fn is not None else wrap


def device_notice(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(device))
        return f"Running on the GPU ({name}): a preview fit takes minutes."
    return (
        f"Running on the CPU ({torch.get_num_threads()} threads): editing a fitted scene is interactive "
        "(slider drags preview in a fraction of a second, a full-quality frame takes seconds), but fitting is "
        "slow: use the preview preset here, and a GPU for the fast and paper presets."
    )


@dataclass
class Runtime:
    """The generator the app fits with (None while the weights are missing) and how it was found."""

    device: str
    generator: TriPlaneGenerator | None = None
    label: str = ""
    demo: str | None = None  # the demo generator's kind when one is used
    problem: str | None = None  # why the EG3D weights are not in use (a missing file, a failed download)
    checkpoint: str | None = None
    directions: dict[str, Direction] = field(default_factory=dict)
    direction_notes: list[str] = field(default_factory=list)
    direction_folders: list[Path] | None = None  # scanned for directions; None = pretrained/directions (+ demo-*)
    learn_folder: Path | None = None  # where learning directions from the page saves them (also scanned)

    @property
    def ready(self) -> bool:
        return self.generator is not None

    @functools.cached_property
    def latent_space(self) -> str:
        return latent_space_digest(self.generator)

    def folders(self) -> list[Path]:
        """The folders scanned for this generator's directions, as they are now (demo-* may have appeared)."""
        root = directions_dir()
        folders = self.direction_folders if self.direction_folders is not None else [root, *sorted(root.glob("demo-*"))]
        return [*folders, *([self.learn_folder] if self.learn_folder and self.learn_folder not in folders else [])]

    def refresh_directions(self) -> bool:
        """Scan the folders again (files installed or learned while the app runs); True when the set of
        direction names changed. The dictionary is replaced whole, never changed in place."""
        if self.generator is None:
            return False
        found, notes = installed_directions(self.generator, self.folders(), digest=self.latent_space)
        changed = set(found) != set(self.directions)
        self.directions, self.direction_notes = found, notes
        return changed


def load_runtime(
    *,
    checkpoint: str | None = None,
    demo: str | None = None,
    device: str | None = None,
    download: bool = True,
    directions: list[str | os.PathLike] | None = None,
    fallback_demo: str | None = None,
) -> Runtime:
    """The app's generator: ``demo`` (a demo generator), else the EG3D checkpoint from ``checkpoint``,
    ``INNOUT_EG3D_CHECKPOINT`` or ``pretrained/``, downloaded when missing and ``download`` is set. A
    failure is kept in ``problem`` instead of raised, and the ``fallback_demo`` generator is used when given
    (the app opens ready to use, with a banner saying why), else there is no generator."""
    from ..eg3d import load_generator
    from ..eg3d.building import CheckpointError
    from ..eg3d.download import resolve_eg3d_checkpoint
    from ..eg3d.random import random_generator
    from ..weights import IntegrityError, WeightsUnavailableError

    runtime = Runtime(device=pick_device(device))
    given = [Path(d) for d in directions] if directions else None  # replace the default folders
    if demo == "faces":
        from ..world.directions import ASSET_DIR
        from ..world.prior import ASSET

        runtime.generator = load_generator(ASSET, runtime.device)
        runtime.demo = demo
        runtime.label = "DEMO generator 'faces' (the synthetic world's small trained prior: cartoon heads)"
        given = given if given is not None else [ASSET_DIR]
        runtime.learn_folder = demo_directions_dir(demo)
    elif demo:
        if demo not in DEMO_KINDS:
            raise ValueError(f"--demo-generator must be one of {DEMO_KINDS}, got {demo!r}")
        runtime.generator = random_generator(demo).to(runtime.device)
        runtime.demo = demo
        runtime.label = f"DEMO generator '{demo}' (small, untrained: it renders noise, not faces)"
        runtime.learn_folder = demo_directions_dir(demo)
    else:
        try:
            path = resolve_eg3d_checkpoint(checkpoint, download=download)
            runtime.generator = load_generator(path, runtime.device)
            runtime.checkpoint = str(path)
            runtime.label = f"EG3D {path.name}"
            runtime.learn_folder = directions_dir()
        except (WeightsUnavailableError, IntegrityError, CheckpointError, OSError) as exc:
            if fallback_demo is None:
                return Runtime(device=runtime.device, problem=str(exc))
            fallback = load_runtime(demo=fallback_demo, device=runtime.device, directions=directions)
            fallback.problem = str(exc)
            return fallback
    runtime.direction_folders = given
    runtime.refresh_directions()
    return runtime


def demo_directions_dir(kind: str) -> Path:
    return directions_dir() / f"demo-{kind}"


def installed_directions(
    G: TriPlaneGenerator, folders: list[str | os.PathLike] | None = None, *, digest: str | None = None
) -> tuple[dict[str, Direction], list[str]]:
    """The directions in ``folders`` (default: pretrained/directions and its demo-* folders) that were
    learned for ``G``'s latent space (W+ offsets: made for as many ws as ``G`` has), and a note for each
    one left out."""
    from ..edit.directions import DirectionMismatchError, scan_directions

    root = directions_dir()
    folders = folders if folders is not None else [root, *sorted(root.glob("demo-*"))]
    digest = digest or latent_space_digest(G)
    found, notes = {}, []
    for folder in folders:
        candidates, problems = scan_directions([folder]) if Path(folder).exists() else ({}, [])
        notes += [problem.replace(str(Path(folder)), Path(folder).name) for problem in problems]
        for name, direction in candidates.items():
            try:
                direction.check_space(digest)
            except DirectionMismatchError:
                notes.append(f"{name} ({Path(folder).name}): learned for another generator")
                continue
            if direction.offsets is not None and len(direction.offsets) != G.num_ws:
                rows = len(direction.offsets)
                notes.append(f"{name} ({Path(folder).name}): W+ offsets for {rows} ws, this generator has {G.num_ws}")
                continue
            found[name] = direction
    return found, notes


def learn_demo_directions(runtime: Runtime, *, samples: int = 128, progress: bool = False) -> list[str]:
    """Learn the face-free demo directions (brightness, warmth) for the demo generator and save them in
    pretrained/directions/demo-KIND/, once; later starts load them. Returns the names learned now."""
    from ..edit.labelers import IMAGE_ATTRIBUTES, make_labeler
    from ..edit.learn import GeneratorSource, learn_direction

    if runtime.demo != "tiny" or runtime.generator is None:
        return []  # the 'faces' prior ships its directions (assets/world_directions)
    folder = demo_directions_dir(runtime.demo)
    source = GeneratorSource(runtime.generator, super_resolution=False)
    learned = []
    for name in IMAGE_ATTRIBUTES:  # labellers that need no face: the demo generator draws none
        if name in runtime.directions:
            continue
        direction = learn_direction(name, source, make_labeler(name), samples=samples, progress=progress)
        save_direction(direction, folder / f"{name}.safetensors")
        runtime.directions[name] = direction
        learned.append(name)
    return learned


def world_example_clip() -> str | None:
    """The bundled synthetic clip (assets/examples/world_sunglasses: EG3D's dataset layout, known cameras)."""
    folder = Path(__file__).resolve().parents[2] / "assets" / "examples" / "world_sunglasses"
    return str(folder) if (folder / "dataset.json").is_file() else None


def world_example_scene() -> str | None:
    """The bundled synthetic clip fitted with the 'faces' prior (preview preset, OOD planes 64²: the file stays
    under 10 MB): a scene the faces demo opens at once."""
    path = Path(__file__).resolve().parents[2] / "assets" / "examples" / "world_sunglasses_scene.safetensors"
    return str(path) if path.is_file() else None


@functools.cache
def example_clips() -> list[str]:
    """The bundled example clips (assets/examples/*.mp4; LivePortrait, MIT licence)."""
    folder = Path(__file__).resolve().parents[2] / "assets" / "examples"
    return [str(p) for p in sorted(folder.glob("*.mp4"))]
