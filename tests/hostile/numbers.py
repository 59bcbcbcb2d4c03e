"""Robustness cases: numbers (see tests/hostile/cases.py).

NaN, infinity, zero, negative and absurd numbers wherever a user can give one: fit settings (``--set``,
presets, JSON), command-line options of every command, render requests (edits, cameras), camera
construction, exports (frame rate, views), and a scene whose own numbers are broken. Each must be refused
with a message naming the value, before any work, and never end as a black image written with exit 0.
Scenes are made at run time from the tiny random generator (a fraction of a second).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from .cases import Case, CaseFailed, run_cli


# --- inputs made at run time ------------------------------------------------------------------------------
def tiny_generator():
    from innout.eg3d import GeneratorConfig
    from innout.eg3d.random import synthetic_generator

    return synthetic_generator(GeneratorConfig.tiny(), seed=1, contrast=1.0, grey=False)


def tiny_scene(folder: Path, *, poison: str | None = None) -> Path:
    """A two-frame scene file of the tiny generator with a band as its OOD object (nothing rendered to make
    it). ``poison``: 'ws' puts a NaN in the latents, 'weights' one in the generator's decoder."""
    import torch

    from innout.eg3d import orbit_label
    from innout.eg3d.cameras import FRONTAL_PITCH, FRONTAL_YAW, INO_FOCAL, frontal_label
    from innout.scene import SceneData, SceneSource, save_scene
    from innout.world.band import band_ood_field

    G = tiny_generator()
    with torch.no_grad():
        z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(3))
        ws = G.mapping(z, frontal_label(INO_FOCAL).expand(2, -1))
        if poison == "ws":
            ws[1, 3, 7] = float("nan")
        if poison == "weights":
            G.decoder.net[0].weight[0, 0] = float("nan")
    cameras = torch.cat([orbit_label(FRONTAL_YAW + yaw, FRONTAL_PITCH) for yaw in (-0.1, 0.1)])
    data = SceneData(G, ws, cameras, band_ood_field(2, resolution=16), SceneSource.synthetic(2))
    return save_scene(data, folder / "tiny.safetensors")


def a_photo(folder: Path) -> Path:
    """A small valid image: an input the fit would start preparing if nothing refused it first."""
    import numpy as np

    from innout.images import save_image

    path = folder / "photo.png"
    save_image(np.full((64, 64, 3), 128, np.uint8), path)
    return path


def leaves_nothing(out: Path, argv: list) -> str:
    """Run the command line; when it refuses, ``out`` must not have been written (no black image)."""
    try:
        return run_cli(argv)
    except Exception:
        if out.exists():
            raise CaseFailed(f"{out.name} was written although the command was refused") from None
        raise


def render_cli(*options: str) -> Callable[[Path], str]:
    """Render the tiny scene to an orbit video with ``options`` (preview quality, 2 views)."""

    def run(folder: Path) -> str:
        out = folder / "out.mp4"
        argv = ["render", tiny_scene(folder), "-o", out, "--orbit", "--views", "2", "--quality", "preview"]
        return leaves_nothing(out, [*argv, *options])

    return run


def image_cli(*options: str, poison: str | None = None) -> Callable[[Path], str]:
    """Render one frame of the tiny scene (``poison``: see ``tiny_scene``) to a PNG with ``options``."""

    def run(folder: Path) -> str:
        out = folder / "out.png"
        argv = ["render", tiny_scene(folder, poison=poison), "-o", out, "--quality", "preview", *options]
        return leaves_nothing(out, argv)

    return run


def fit_cli(*options: str) -> Callable[[Path], str]:
    """``fit`` of a photo with ``options``; a refusal must come before any work: no work folder, no scene."""

    def run(folder: Path) -> str:
        work = folder / "work"
        argv = ["fit", a_photo(folder), "--random-generator", "tiny", "--workdir", work, "-o", folder / "s.safetensors"]
        try:
            return run_cli([*argv, *options])
        finally:
            if work.exists():
                raise CaseFailed("the fit started (its work folder exists) before the bad setting was refused")

    return run


# --- fit settings -----------------------------------------------------------------------------------------
def set_lr_nan_before_init(folder: Path) -> str:
    """``--set joint.lr=nan`` used to fail only after the init stage: it must be refused at once."""
    start = time.perf_counter()
    try:
        return fit_cli("--set", "joint.lr=nan")(folder)
    finally:
        seconds = time.perf_counter() - start
        if seconds > 2:
            raise CaseFailed(f"the refusal took {seconds:.1f} s: work was done before the setting was checked")


def config_json_nan(folder: Path) -> str:
    from innout.fit import FitConfig

    text = '{"joint": {"iterations": 100, "lr": NaN}}'  # Python's json reads and writes NaN
    FitConfig.from_dict(json.loads(text))
    return "a NaN learning rate was accepted from JSON"


def config_assignment(group: str, name: str, value) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from innout.fit import get_preset

        setattr(getattr(get_preset("preview"), group), name, value)
        return f"{group}.{name} = {value!r} was accepted"

    return run


def effort(value: float) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from innout.fit import get_preset, scaled

        scaled(get_preset("preview"), value)
        return f"effort {value} was accepted"

    return run


# --- render requests, cameras, exports (the Python API) ---------------------------------------------------
def request(**fields) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from innout.scene import RenderRequest, Scene

        scene = Scene.load(tiny_scene(folder))
        result = scene.render(RenderRequest(**fields))
        return f"rendered {result.image.shape} with {fields}"

    return run


def scene_with_nan_latents(folder: Path) -> str:
    from innout.scene import RenderRequest, Scene

    image = Scene.load(tiny_scene(folder, poison="ws")).render(RenderRequest(1)).image
    return f"rendered frame 1 of a scene with NaN latents: mean pixel {image.mean():.1f}"


def non_finite_pixels(folder: Path) -> str:
    """Weights that turn NaN after loading (nothing a file check sees): the render itself must refuse."""
    import torch

    from innout.scene import RenderRequest, Scene

    scene = Scene.load(tiny_scene(folder))
    with torch.no_grad():
        scene.G.decoder.net[0].weight[0, 0] = float("nan")
    image = scene.render(RenderRequest(0)).image
    return f"returned an image with mean pixel {image.mean():.1f}"


def direction_nan_scale_at_runtime(folder: Path) -> str:
    import torch

    from innout.edit.directions import Direction
    from innout.scene import Scene

    scene = Scene.load(tiny_scene(folder))
    normal = torch.randn(512, generator=torch.Generator().manual_seed(0))
    direction = Direction("odd", normal, scale=2.0, latent_space=scene.edits.latent_space)
    direction.scale = math.nan  # changed after construction (which checks it): only add_direction's check is left
    scene.add_direction(direction)
    return "a direction with a NaN scale was added"


def mapper_nan_weights(folder: Path) -> str:
    import torch

    from innout.edit.mapper import LevelsMapper
    from innout.scene import Scene

    mapper = LevelsMapper("broken")
    with torch.no_grad():
        next(mapper.parameters()).view(-1)[0] = float("inf")
    Scene.load(tiny_scene(folder)).add_mapper(mapper)
    return "a mapper with infinite weights was added"


def direction_scale(scale: float) -> Callable[[Path], str]:
    """A direction file whose scale is ``scale``, used through the command line with --edit. ``Direction``
    refuses such a scale when it is made, so it is set afterwards: the file holds it (JSON's NaN / Infinity)
    and the loader of ``--directions`` is what must refuse it."""

    def run(folder: Path) -> str:
        import torch

        from innout.edit.directions import Direction, latent_space_digest, save_direction

        normal = torch.randn(512, generator=torch.Generator().manual_seed(0))
        direction = Direction("odd", normal, scale=2.0, latent_space=latent_space_digest(tiny_generator()))
        direction.scale = scale
        save_direction(direction, folder / "odd.safetensors")
        return image_cli("--directions", str(folder / "odd.safetensors"), "--edit", "odd=1")(folder)

    return run


def orbit_label_of(yaw: float, pitch: float, **options) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from innout.eg3d import orbit_label

        label = orbit_label(yaw, pitch, **options)
        return f"made a camera label {label.flatten()[:3].tolist()}"

    return run


def export_path(fps: float = 25.0, views: list | None = None) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from innout.export import export_camera_path
        from innout.scene import Scene

        out = folder / "path.mp4"
        export_camera_path(Scene.load(tiny_scene(folder)), out, 0, views or [(0.0, 0.0)], fps=fps)
        return f"wrote {out.name} at {fps} fps"

    return run


def camera_path_of(n_views: int, **amplitudes) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from innout.export import camera_path

        return f"made {len(camera_path('orbit', n_views, **amplitudes))} views"

    return run


def valid_extremes(folder: Path) -> str:
    """The ends of the documented ranges are valid: they must render, not be refused."""
    out = folder / "edge.mp4"
    scene = tiny_scene(folder)
    run_cli(["render", scene, "-o", out, "--yaw-sweep", "--views", "1", "--fps", "240", "--path-yaw", "180",
             "--path-pitch", "0", "--quality", "preview", "--frame", "1"])  # fmt: skip
    if not out.is_file() or out.stat().st_size == 0:
        raise CaseFailed("no video was written")
    return f"wrote {out.name} ({out.stat().st_size} bytes)"


def studio(action: Callable) -> Callable[[Path], str]:
    """``action(session)`` on an app session holding the tiny scene (the app's own entry points)."""

    def run(folder: Path) -> str:
        from innout.app.runtime import Runtime
        from innout.app.session import StudioSession

        session = StudioSession(Runtime(device="cpu", generator=tiny_generator(), label="tiny"), tmp_root=folder)
        try:
            session.load_scene(tiny_scene(folder))
            session.input, session.prepared = folder / "photo.png", object()  # refused before they are read
            return f"the session answered {action(session)!r}"
        finally:
            session.close()

    return run


def view(**fields):
    from innout.app.session import View

    return View(**fields)


def refused(name: str, run: Callable[[Path], str], match: str) -> Case:
    """``match``: a regular expression of the refusal's message that names the check the case is about."""
    return Case(f"numbers/{name}", "refused", run, match=match)


NAN, INF = "nan", "inf"
ARG = r"argument {}: must be "  # an option's own range check (argparse), e.g. ARG.format("--fps")
YAW = r"camera yaw must be a finite number >= -6\.28319 and <= 6\.28319"  # RenderRequest's camera check

CASES: list[Case] = [
    # fit: settings and options, refused before any work
    refused("fit-max-frames-0", fit_cli("--max-frames", "0"), ARG.format("--max-frames") + "an integer >= 1"),
    refused("fit-set-max-frames-0", fit_cli("--set", "max_frames=0"), r"max_frames must be an integer >= 1"),
    refused("fit-set-iterations-negative", fit_cli("--set", "joint.iterations=-5"),
            r"joint\.iterations must be an integer >= 0"),
    refused("fit-set-init-samples-0", fit_cli("--set", "init.samples=0"), r"init\.samples must be an integer >= 1"),
    Case("numbers/set-lr-nan-before-init", "refused", set_lr_nan_before_init,
         match=r"joint\.lr must be a finite number > 0 and <= 1, got 'nan'"),
    refused("fit-set-lr-inf", fit_cli("--set", "inversion.lr=inf"), r"inversion\.lr must be a finite number > 0"),
    refused("fit-set-lr-0", fit_cli("--set", "superres.lr=0"), r"superres\.lr must be a finite number > 0"),
    refused("fit-set-weight-negative", fit_cli("--set", "joint.lambda_area=-1"),
            r"joint\.lambda_area must be a finite number >= 0"),
    refused("fit-set-resolution-0", fit_cli("--set", "joint.resolution=0"),
            r"joint\.resolution must be an integer >= 8"),
    refused("fit-set-samples-per-ray-nan", fit_cli("--set", "init.samples_per_ray=nan,4"),
            r"init\.samples_per_ray \(coarse\) must be an integer >= 1.*got 'nan'"),
    refused("fit-set-share-above-1", fit_cli("--set", "inversion.rampdown=1.5"),
            r"inversion\.rampdown must be a finite number >= 0 and <= 1"),
    refused("fit-set-checkpoint-every-0", fit_cli("--set", "joint.checkpoint_every=0"),
            r"joint\.checkpoint_every must be an integer >= 1"),
    refused("fit-set-unknown-key", fit_cli("--set", "joint.learning_rate=0.1"),
            r"unknown setting 'joint\.learning_rate'"),
    refused("fit-seed-negative", fit_cli("--seed", "-1"), ARG.format("--seed") + "an integer >= 0"),
    refused("fit-prepare-stride-0", fit_cli("--stride", "0"), ARG.format("--stride") + "an integer >= 1"),
    refused("fit-prepare-smoothing-nan", fit_cli("--camera-smoothing", NAN),
            ARG.format("--camera-smoothing") + "a finite number >= 0"),
    refused("fit-prepare-max-gap-negative", fit_cli("--max-gap", "-2"), ARG.format("--max-gap") + "an integer >= 0"),
    refused("fit-config-json-nan", config_json_nan, r"joint\.lr must be a finite number > 0 and <= 1, got nan"),
    refused("fit-config-assign-iterations-bool", config_assignment("joint", "iterations", True),
            r"joint\.iterations must be an integer >= 0 and <= \d+, got True"),
    refused("fit-config-assign-batch-0", config_assignment("init", "batch", 0), r"init\.batch must be an integer >= 1"),
    refused("fit-effort-nan", effort(math.nan), r"the effort factor must be a finite number > 0.*got nan"),
    refused("fit-effort-0", effort(0.0), r"the effort factor must be a finite number > 0.*got 0\.0"),
    # render: options of the command line
    refused("render-fps-0", render_cli("--fps", "0"), ARG.format("--fps") + "a finite number > 0 and <= 240"),
    refused("render-fps-nan", render_cli("--fps", NAN), ARG.format("--fps") + "a finite number > 0 and <= 240"),
    refused("render-fps-absurd", render_cli("--fps", "100000"), ARG.format("--fps") + "a finite number > 0 and <= 240"),
    refused("render-views-0", render_cli("--views", "0"), ARG.format("--views") + "an integer >= 1 and <= 1000"),
    refused("render-views-huge", render_cli("--views", "1000000000"),
            ARG.format("--views") + "an integer >= 1 and <= 1000"),
    refused("render-frame-out-of-range", render_cli("--frame", "7"),
            r"frame 7 is out of range: the scene has frames 0-1"),
    refused("render-frame-negative", image_cli("--frame", "-1"), ARG.format("--frame") + "an integer >= 0"),
    refused("render-path-yaw-nan", render_cli("--path-yaw", NAN), ARG.format("--path-yaw") + "a finite number"),
    refused("render-path-yaw-beyond", render_cli("--path-yaw", "720"),
            ARG.format("--path-yaw") + r"a finite number >= 0 and <= 180"),
    refused("render-path-pitch-inf", render_cli("--path-pitch", INF), ARG.format("--path-pitch") + "a finite number"),
    refused("render-camera-nan", image_cli("--camera", "nan,0"), r"--camera: the yaw must be a finite number"),
    refused("render-camera-pitch-inf", image_cli("--camera", "0,inf"), r"--camera: the pitch must be a finite number"),
    refused("render-camera-pitch-beyond", image_cli("--camera", "0,120"),
            r"--camera: the pitch must be a finite number >= -90 and <= 90"),
    refused("render-edit-nan", image_cli("--edit", "smile=nan"), r"--edit smile: the strength must be a finite number"),
    refused("render-edit-inf", image_cli("--edit", "smile=-inf"),
            r"--edit smile: the strength must be a finite number"),
    refused("render-outside-scale-nan", image_cli("--remove-ood", "--removal", "mask", "--outside-scale", NAN),
            ARG.format("--outside-scale") + "a finite number"),
    refused("render-direction-scale-nan", direction_scale(math.nan),
            r"odd\.safetensors: direction 'odd': scale must be a finite number, got nan"),
    refused("render-direction-scale-inf", direction_scale(math.inf),
            r"odd\.safetensors: direction 'odd': scale must be a finite number, got inf"),
    refused("mesh-level-nan",
            lambda folder: run_cli(["mesh", tiny_scene(folder), "-o", folder / "m.ply", "--level", NAN]),
            ARG.format("--level") + "a finite number"),
    # a scene whose own numbers are broken: refused, never a black image
    refused("scene-nan-weights-black-image", image_cli(poison="weights"),
            r"tiny\.safetensors: \d+ tensors hold NaN or infinite values \(generator\.decoder\.net\.0\.weight\)"),
    refused("scene-nan-latents", scene_with_nan_latents,
            r"tiny\.safetensors: \d+ tensors hold NaN or infinite values \(ws\)"),
    # the Python API: render requests, mappers, cameras, exports
    refused("request-camera-nan", request(frame=0, camera=(math.nan, 0.0)), YAW + ".*got nan"),
    refused("request-camera-yaw-inf", request(frame=0, camera=(math.inf, 0.0)), YAW + ".*got inf"),
    refused("request-edit-strength-nan", request(frame=0, edits={"smile": math.nan}),
            r"the strength of edit 'smile' must be a finite number"),
    refused("request-frame-nan", request(frame=math.nan), r"frame must be an integer >= 0, got nan"),
    refused("request-outside-scale-inf", request(frame=0, remove_ood=True, removal="mask", outside_scale=math.inf),
            r"outside_scale must be a finite number >= 0"),
    refused("mapper-weights-inf-at-runtime", mapper_nan_weights,
            r"the weights of mapper 'broken' \([\w.]+\) hold NaN or infinite"),
    refused("direction-scale-nan-at-runtime", direction_nan_scale_at_runtime,
            r"the scale of direction 'odd' must be a finite number > 0.*got nan"),
    refused("render-non-finite-pixels", non_finite_pixels, r"the render of frame 0 has NaN or infinite pixels"),
    refused("orbit-label-yaw-nan", orbit_label_of(math.nan, 1.5), r"camera yaw must be finite, got nan"),
    refused("orbit-label-focal-0", orbit_label_of(1.5, 1.5, focal=0.0),
            r"the camera's focal length must be a finite number > 0"),
    refused("export-camera-path-fps-0", export_path(fps=0.0), r"^fps must be a finite number > 0 and <= 240"),
    refused("export-camera-path-fps-nan", export_path(fps=math.nan), r"^fps must be a finite number > 0 and <= 240"),
    refused("export-camera-path-view-nan", export_path(views=[(0.0, 0.0), (math.nan, 0.0)]), YAW + ".*got nan"),
    refused("camera-path-views-0", camera_path_of(0),
            r"the number of views in a camera path must be an integer >= 1"),
    refused("camera-path-yaw-inf", camera_path_of(8, yaw=math.inf),
            r"the camera path's yaw amplitude must be a finite number"),
    # other commands
    refused("sample-yaw-nan", lambda folder: run_cli(["sample", "--yaw", NAN, "-o", folder / "s.png"]),
            ARG.format("--yaw") + "a finite number"),
    refused("sample-seed-negative", lambda folder: run_cli(["sample", "--seed", "-3", "-o", folder / "s.png"]),
            ARG.format("--seed") + "an integer >= 0"),
    refused("sample-truncation-inf", lambda folder: run_cli(["sample", "--truncation", INF, "-o", folder / "s.png"]),
            ARG.format("--truncation") + "a finite number"),
    refused("directions-learn-fraction-0",
            lambda folder: run_cli(["directions", "learn", "x", "--labeler", "brightness", "--fraction", "0"]),
            ARG.format("--fraction") + "a finite number > 0"),
    refused("directions-learn-samples-0",
            lambda folder: run_cli(["directions", "learn", "x", "--labeler", "brightness", "--samples", "0"]),
            ARG.format("--samples") + "an integer >= 8"),
    refused("prepare-stride-0", lambda folder: run_cli(["prepare", a_photo(folder), folder / "out", "--stride", "0"]),
            ARG.format("--stride") + "an integer >= 1"),
    refused("prepare-max-frames-0",
            lambda folder: run_cli(["prepare", a_photo(folder), folder / "out", "--max-frames", "0"]),
            ARG.format("--max-frames") + "an integer >= 1"),
    # the app's entry points (the session behind the page)
    refused("app-view-yaw-nan", studio(lambda s: s.render(view(yaw=math.nan), quality="preview")), YAW + ".*got nan"),
    refused("app-slider-edit-inf", studio(lambda s: s.render(view(edits={"x": math.inf}), quality="preview")),
            r"the strength of edit 'x' must be a finite number"),
    refused("app-orbit-views-0",
            studio(lambda s: s.export_orbit(view(), path="orbit", n_views=0, quality="preview")),
            r"the number of views in a camera path must be an integer >= 1"),
    refused("app-fit-max-frames-negative", studio(lambda s: s.fit("preview", max_frames=-3)),
            r"max_frames must be an integer >= 1, or none, got -3"),
    refused("app-fit-effort-nan", studio(lambda s: s.fit("preview", effort=math.nan)),
            r"the effort factor must be a finite number > 0.*got nan"),
    # the ends of the documented ranges are accepted
    Case("numbers/render-range-ends-ok", "ok", valid_extremes),
]  # fmt: skip
