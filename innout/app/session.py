"""One user's studio session: the input, its preparation, the fit, the loaded scene and the exports.

Each session owns a temporary folder (removed when the session ends), so concurrent users never see
each other's files. The fit's stage caches are shared on purpose (keyed by input content, generator
and settings): the same clip with the same settings returns at once, for anyone, and a fit cut off by
a crash or a restart resumes from its last checkpoint. Every user-facing failure is a ``StudioError``
with a message for the page.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..edit.directions import DirectionError
from ..errors import UserError
from ..export import camera_path, export_camera_path, export_video, extract_mesh, write_glb
from ..export.dense import every_source_frame
from ..export.mesh import Mesh
from ..export.video import frame_spacing
from ..fit import CACHED, RESUMING, FitConfig, fit_video, get_preset, planned_steps, scaled
from ..frames import IMAGE_SUFFIXES
from ..images import save_image
from ..preprocess import InputError, PreparedVideo, PrepareOptions, prepare
from ..preprocess.media import probe_video
from ..preprocess.prepared import display_name
from ..scene import RenderRequest, Scene, SceneRender
from .cores import RENDER_CORES
from .fit_times import StagePace, estimate_text, record_fit
from .runtime import Runtime

VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".gif", ".avi", ".m4v"}

StageProgress = Callable[[str, int, int, dict[str, float]], None]


class StudioError(UserError):
    """A problem the page shows as a message; the app stays usable."""


class FitCancelledError(StudioError):
    """The user pressed Cancel."""


@dataclass
class View:
    """Everything a render of the edit screen depends on."""

    frame: int = 0
    yaw: float = 0.0  # radians, offset from the frame's own view when follow_frame, else from frontal
    pitch: float = 0.0
    edits: dict[str, float] | None = None
    remove_ood: bool = False
    follow_frame: bool = True  # orbit around the frame's own camera (yaw = pitch = 0 is the input view)
    blend: float = 1.0  # the OOD object's blend as a weight: 1 as fitted, 0.5 faded (removal takes precedence)

    def camera(self, scene: Scene):
        if self.follow_frame:
            if self.yaw == 0 and self.pitch == 0:
                return None
            yaw, pitch = scene.frame_angles(self.frame)
            return yaw + self.yaw, pitch + self.pitch
        return self.yaw, self.pitch


def check_input(path: str | Path | None, *, max_seconds: float) -> Path:
    """Cheap checks before any decoding: a file, a known kind, readable, not too long."""
    if not path:
        raise StudioError("No input: upload a video or a photo, or pick the example clip.")
    path = Path(path)
    if (path / "dataset.json").is_file():
        return path  # an aligned clip with its cameras (EG3D's dataset layout), taken as it is
    if not path.is_file():
        raise StudioError(f"{path.name}: the upload did not arrive; try again.")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return path
    if suffix not in VIDEO_SUFFIXES:
        kinds = ", ".join(sorted(VIDEO_SUFFIXES | IMAGE_SUFFIXES))
        raise StudioError(f"{path.name}: not a video or photo this app reads ({kinds}).")
    try:
        meta = probe_video(path)
    except InputError as exc:
        detail = str(exc).replace(str(path), path.name)  # the page never shows the server's folders
        message = f"{path.name} cannot be read as a video: it is damaged or not a video at all. ({detail})"
        raise StudioError(message) from exc
    duration = float(meta.get("duration") or 0)
    if duration > max_seconds:
        raise StudioError(
            f"{path.name} is {duration / 60:.1f} minutes long; this app takes clips up to {max_seconds:.0f} s. "
            "Trim it (e.g. `ffmpeg -i IN -t 10 OUT.mp4`) and upload again."
        )
    return path


class ResumeNote:
    """What a fit found of an earlier one (stages in the cache, a stage's checkpoint), from the fit's own log lines
    ("joint: cached (...)", "joint: resuming from the checkpoint in ...") and the first step reported after them."""

    def __init__(self) -> None:
        self.cached: list[str] = []
        self.resumed: list[str] = []
        self._resuming: str | None = None

    def line(self, text: str, *_) -> None:
        name, _, rest = str(text).partition(": ")
        if rest.startswith(CACHED):
            self.cached.append(name)
        elif rest.startswith(RESUMING):
            self._resuming = name

    def step(self, done: int, total: int) -> None:
        if self._resuming is not None:
            self.resumed.append(f"{self._resuming} from its checkpoint at step {done - 1} of {total}")
            self._resuming = None

    def text(self) -> str:
        parts = ([f"{', '.join(self.cached)} from the cache"] if self.cached else []) + self.resumed
        return f"Resumed: {'; '.join(parts)}." if parts else ""


def fit_config(preset: str, max_frames: int | None, effort: float) -> FitConfig:
    """The settings of a fit from the page's choices: the preset, its frame count and its effort."""
    config = get_preset(preset)
    if max_frames:
        config.max_frames = max_frames
    return scaled(config, effort) if effort != 1.0 else config


CLOSED = "This page was closed on the server: reload it to start again."


def folder_mb(folder: Path) -> float:
    """The size of the files under ``folder``, in MB (0 for a folder that is gone)."""
    total = 0
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            total += path.stat().st_size if path.is_file() else 0
    return total / 2**20


class StudioSession:
    """One page's work. Its ``runtime`` (the generator) is its own: setting up weights from another page
    never changes it.

    What a page holds is bounded (``innout.app.sessions``): its scene can be let go (``release``) when the page
    is idle or other pages need the memory, and its files are held to ``disk_quota_mb``. A page whose scene was
    let go while its file is still here gets it back on its next use; otherwise it is told what to do."""

    def __init__(
        self, runtime: Runtime, *, tmp_root: str | Path | None = None, disk_quota_mb: float | None = None,
        on_scene: Callable[[StudioSession], None] | None = None,
    ) -> None:  # fmt: skip
        self.runtime = runtime
        self.id = uuid.uuid4().hex[:12]
        root = Path(tmp_root or Path(tempfile.gettempdir()) / "innout-app")
        root.mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(prefix=f"session-{self.id}-", dir=root))
        self.disk_quota_mb = disk_quota_mb  # the most this page's files may take (None: no limit)
        self.on_scene = on_scene  # told when a scene is opened (the registry's cap on live scenes)
        self.last_used = time.monotonic()
        self.busy = 0  # long work running (a fit, an export, learning): never released under it
        self.let_go: str | None = None  # why the scene was let go, said when the page asks for it
        self.closed = False
        self._rendering = threading.RLock()
        self.checked: Path | None = None  # an input that passed the cheap checks, waiting to be prepared
        self.input: Path | None = None
        self.prepared: PreparedVideo | None = None
        self.scene: Scene | None = None
        self.scene_path: Path | None = None
        self.scene_prepared: PreparedVideo | None = None  # the clip the scene was fitted on, when fitted here
        self.ood_series: np.ndarray | None = None
        self.cancel = threading.Event()
        self.fit_requested = False  # a fit is queued or running (what Cancel stops)
        self.fit_config: FitConfig | None = None  # the settings of the fit running or last run
        self.fit_resumed = ""  # what the last fit took from an earlier one ("Resumed: ..."), or ""
        self.timings: dict[str, float] = {}
        self.shown_edits: list[str] = []  # the edit sliders' names, in slot order, as the page shows them
        self.shown: tuple[View, str] | None = None  # the view on the edit screen and whether it is a drag preview

    def close(self) -> None:
        """Let go of everything and remove the session's files (when the page is closed, when the server stops).
        Gradio keeps a closed page's state for an hour: what it holds must not be the scene."""
        self.closed = True
        self.cancel.set()  # a fit of a closed page stops at its next step (its checkpoints stay for a later resume)
        self.release(CLOSED, files=True)

    def touch(self) -> None:
        """The page did something: it is not idle. A closed page is told to reload."""
        if self.closed:
            raise StudioError(CLOSED)
        self.last_used = time.monotonic()

    @contextlib.contextmanager
    def working(self) -> Iterator[None]:
        """Long work on this page (a fit, an export): its scene and files stay while it runs."""
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            self.last_used = time.monotonic()

    def release(self, reason: str, *, files: bool) -> None:
        """Let go of the scene's memory (its planes and caches go with it); with ``files``, also of the
        prepared clip and of every file of the page (its scenes and exports). ``reason`` is what the page is
        told when it next asks for the scene and it cannot be reopened."""
        self.scene = self.ood_series = None
        self.shown = None
        self.let_go = reason
        if files:
            self.forget_input()
            self.scene_prepared = None
            self.scene_path = None
            shutil.rmtree(self.folder, ignore_errors=True)

    def disk_used_mb(self) -> float:
        """This page's files: its folder (fitted scenes, exports) and its upload."""
        upload = 0.0
        for path in {self.input, self.checked} - {None}:
            with contextlib.suppress(OSError):
                upload += path.stat().st_size / 2**20 if path.is_file() and self.folder not in path.parents else 0
        return folder_mb(self.folder) + upload

    def check_disk(self) -> None:
        """Refuse new files once this page's files reach its quota (``app.py --page-disk-mb``)."""
        if self.disk_quota_mb is None:
            return
        used = self.disk_used_mb()
        if used >= self.disk_quota_mb:
            raise StudioError(
                f"This page keeps {used:.0f} MB of files here (its upload, fitted scenes and exports), the most a "
                f"page may keep is {self.disk_quota_mb:.0f} MB. Download what you need, then reload the page to start "
                "afresh (its files are removed)."
            )

    def output_folder(self) -> Path:
        """The page's folder, made again if an idle release removed it; refused when the quota is reached."""
        self.check_disk()
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder

    @property
    def device_key(self) -> str:
        """What a fit time depends on: the device and the generator (a demo one is far smaller than EG3D)."""
        return f"{self.runtime.device}, {self.runtime.demo or 'EG3D'} generator"

    def use_runtime(self, runtime: Runtime) -> None:
        """Switch this session to another generator; its scene (fitted with the old one) is let go."""
        self.runtime = runtime
        self.scene = self.scene_path = self.ood_series = self.scene_prepared = None

    # --- input and preprocessing -------------------------------------------------------------------
    def check(self, path: str | Path | None, *, max_seconds: float) -> Path:
        """The cheap checks (``check_input``) before the queue for the compute: a refused input also
        forgets the previous one, so that nothing stale can be fitted."""
        self.forget_input()
        try:
            self.checked = check_input(path, max_seconds=max_seconds)
            self.check_disk()
        except StudioError:
            self.forget_input()
            raise
        return self.checked

    def forget_input(self) -> None:
        """Retire the prepared clip (on any change of input): nothing stale can be fitted."""
        self.input = self.prepared = self.checked = None

    @property
    def input_name(self) -> str:
        """The input as the person knows it (an aligned clip's folder name, not its ``frames/``)."""
        return display_name(self.input)

    def answer_is_current(self, view: View, quality: str) -> bool:
        """Whether an answer for ``view`` at ``quality`` should be shown: a drag preview never replaces a
        sharper render of the same view (a late preview, sent after the release, must not overwrite it)."""
        return not (quality == "drag" and self.shown is not None and self.shown == (view, "sharper"))

    def showing(self, view: View, quality: str) -> None:
        """What the edit screen shows now (the last answer written)."""
        self.shown = (view, "drag" if quality == "drag" else "sharper")

    def prepare(self, path: str | Path, *, max_seconds: float, options: PrepareOptions | None = None) -> PreparedVideo:
        """Check and prepare ``path``; on any failure the session has no prepared input (not the old one)."""
        self.input = self.prepared = None
        source = check_input(path, max_seconds=max_seconds)
        prepared = prepare(source, options, progress=True)
        if prepared.landmarks is not None:  # a cache hit names the file it was first prepared from
            prepared.source = str(source)
        else:  # an aligned clip: its frames (the crops themselves) are what exports paste into
            source = Path(prepared.source)
        self.input, self.prepared = source, prepared
        self.scene = self.scene_path = self.ood_series = None
        return prepared

    # --- fitting -----------------------------------------------------------------------------------
    def request_fit(self) -> Path:
        """Arm a fit of the prepared input (before it waits in the queue): a Cancel from now on stops it,
        even before it starts. Returns the input's path."""
        if self.input is None or self.prepared is None:
            idle = self.let_go if self.let_go and self.scene_path is None else None  # released with its files
            raise StudioError(idle or "Prepare an input first (step 1).")
        self.cancel.clear()
        self.fit_requested = True
        return self.input

    def request_cancel(self) -> bool:
        """Stop the requested fit at its next step (or before it starts); False when none is requested."""
        if not self.fit_requested:
            return False
        self.cancel.set()
        return True

    def fit(
        self,
        preset: str,
        *,
        max_frames: int | None = None,
        effort: float = 1.0,
        mask: np.ndarray | None = None,
        progress: StageProgress | None = None,
        workdir: str | Path | None = None,
    ) -> Scene:
        """Fit the prepared input; ``request_cancel()`` (or ``cancel.set()``) from another thread stops it at
        the next step (the finished stages and the last checkpoint stay cached, so fitting again resumes)."""
        try:
            with self.working():
                return self._fit(preset, max_frames=max_frames, effort=effort, mask=mask, progress=progress,
                                 workdir=workdir)  # fmt: skip
        finally:
            self.fit_requested = False
            self.cancel.clear()

    def _fit(self, preset, *, max_frames, effort, mask, progress, workdir) -> Scene:
        if self.input is None or self.prepared is None:
            raise StudioError("Prepare an input first (step 1).")
        if not self.runtime.ready:
            raise StudioError("No generator: see the setup panel at the top.")
        config = fit_config(preset, max_frames, effort)  # the settings check their own ranges: refused before work
        if mask is not None:  # the editor's drawing on the first crop: any painted pixel (or alpha) is OOD
            mask = np.asarray(mask)
            if mask.ndim == 3:
                mask = mask[..., 3] if mask.shape[2] == 4 else mask.max(axis=2)
            mask = mask > 0

        worked: set[str] = set()  # stages that reported a step short of their end ran (a cached one reports 1/1)
        pace = StagePace()  # seconds per step of each stage that ran: what the next fit's estimate is made of
        found = ResumeNote()  # what an earlier fit of the same clip and settings left: said when this one ends

        def report(stage: str, done: int, total: int, losses: dict[str, float]) -> None:
            found.step(done, total)
            if done < total:
                worked.add(stage)
            pace.report(stage, done, total)
            if self.cancel.is_set():
                raise FitCancelledError("Fit cancelled. Finished stages are cached: press Fit again to resume.")
            if progress is not None:
                progress(stage, done, total, losses)

        prepared, self.fit_config = self.prepared, config
        if self.cancel.is_set():  # pressed while the fit waited in the queue
            raise FitCancelledError("Fit cancelled before it started.")
        output = self.output_folder() / f"scene-{uuid.uuid4().hex[:6]}.safetensors"
        started = time.perf_counter()
        try:
            path = fit_video(
                self.prepared, self.runtime.generator, config, mask=mask, output=output, workdir=workdir,
                progress=report, log=found.line, device=self.runtime.device,
            )  # fmt: skip
        finally:
            self.fit_resumed = found.text()  # also for a fit cut short (a slice): what its start found
        scene = self.load_scene(path)
        self.scene_prepared = prepared
        if worked:
            steps = planned_steps(config, scene.n_frames)
            record_fit(preset, scene.n_frames, time.perf_counter() - started, self.device_key, effort=effort,
                       step_seconds=pace.seconds_per_step(steps))  # fmt: skip
        return scene

    def fit_estimate(self, preset: str, *, max_frames: int | None = None, effort: float = 1.0) -> str | None:
        """'about 1.6 min here for 8 frames' for a fit of the prepared clip with these settings, from the seconds
        per step of each stage measured in an earlier fit of this preset on this device (None: none measured)."""
        try:
            config = fit_config(preset, max_frames, effort)
        except UserError:
            return None
        counts = [n for n in (len(self.prepared) if self.prepared is not None else None, config.max_frames) if n]
        return estimate_text(preset, config, min(counts, default=1), self.device_key)

    def load_scene(self, path: str | Path) -> Scene:
        """Open a scene file; a file that is not one is refused by its own name (never the server's folder)."""
        path = Path(path)
        try:
            scene = Scene.load(path, self.runtime.device)
        except UserError as exc:
            reason = str(exc).replace(f"{path}: ", "").replace(str(path), path.name).replace(str(path.parent), "")
            raise StudioError(f"{path.name} could not be opened as an In-N-Out scene: {reason}") from exc
        previous = self.scene_path
        self.scene, self.scene_path, self.ood_series, self.scene_prepared = scene, path, None, None
        self.shown, self.let_go = None, None
        if previous is not None and previous != path and self.folder in previous.parents:
            previous.unlink(missing_ok=True)  # an earlier fit's scene: the page shows one scene at a time
        self.sync_directions()
        if self.on_scene is not None:
            self.on_scene(self)
        return scene

    def sync_directions(self) -> list[str]:
        """Give the scene every direction the runtime has now (learned or installed since it was opened);
        returns the names the sliders can offer: the runtime's directions the scene accepts (all of them
        while there is no scene)."""
        if self.scene is None:
            return sorted(self.runtime.directions)
        for name, direction in self.runtime.directions.items():
            if self.scene.edits.directions.get(name) is direction:
                continue
            try:
                self.scene.add_direction(direction)
            except (DirectionError, UserError):
                continue  # learned for another generator: the runtime's notes say so
        return sorted(n for n in self.runtime.directions if n in self.scene.edits.directions)

    def learn_directions(self, *, progress: Callable[[int, int], None] | None = None, samples: int | None = None):
        """Learn the standard directions of this generator (``innout.edit.plan``), save them where the
        runtime looks, and give them to the scene. Without CLIP weights (offline), the face-mesh edits are
        learned and the message says how to add CLIP. Returns (names learned, a note for the page)."""
        from ..edit.clip_weights import CLIPUnavailableError
        from ..edit.plan import default_samples, record_learn_time, standard_plan
        from ..edit.standard import learn_standard

        G, runtime = self.runtime.generator, self.runtime
        if G is None:
            raise StudioError("No generator: see the setup panel at the top.")
        note = ""
        try:
            plan = standard_plan(G, demo=runtime.demo)
        except CLIPUnavailableError as exc:
            plan = standard_plan(G, demo=runtime.demo, use_clip=False)
            note = f" The CLIP edits (age, glasses, ...) were not learned: {str(exc).splitlines()[0]}"
        count = samples or default_samples(runtime.device)
        with self.working():
            result = learn_standard(plan.source, plan.labellers, plan.edits, samples=count, out_dir=plan.folder,
                                    progress=progress)  # fmt: skip
        record_learn_time(plan.key, runtime.device, result.seconds_per_sample)
        runtime.refresh_directions()
        self.sync_directions()
        return list(result.directions), note

    def open_example(self, scene_path: str | Path, clip: str | Path) -> Scene:
        """A pre-fitted scene of a bundled clip, with that clip prepared (cached) for the input beside the
        render and for every-frame exports."""
        prepared = prepare(clip, None, progress=False)
        scene = self.load_scene(scene_path)
        self.input, self.prepared, self.scene_prepared = Path(prepared.source), prepared, prepared
        return scene

    def require_scene(self) -> Scene:
        """The page's scene; one let go for memory is opened again from its file (the page's edits and view
        are the page's controls: nothing else is lost)."""
        if self.scene is None and self.let_go and self.scene_path is not None and self.scene_path.is_file():
            prepared = self.scene_prepared
            self.load_scene(self.scene_path)
            self.scene_prepared = prepared
        if self.scene is None:
            raise StudioError(self.let_go or "No fitted scene yet: run a fit (step 2) first.")
        return self.scene

    def ood_opacity_series(self) -> np.ndarray:
        """Mean OOD opacity of each fitted frame (preview quality), for the chart; computed once."""
        scene = self.require_scene()
        if self.ood_series is None:
            values = []
            for f in range(scene.n_frames):
                blend = scene.render(RenderRequest(f, quality="preview", with_blend=True)).ood_opacity
                values.append(float(blend.mean()) if blend is not None else 0.0)
            self.ood_series = np.asarray(values)
        return self.ood_series

    # --- editing -----------------------------------------------------------------------------------
    def render(self, view: View, *, quality: str, drag: bool = False) -> SceneRender:
        """The edit screen's image: ``drag`` for a slider being dragged (interpolated edit planes,
        preview quality), else exact at ``quality``."""
        with self._rendering:  # one render of a page at a time (pages render side by side, sharing the cores)
            scene = self.require_scene()
            start = time.perf_counter()
            with RENDER_CORES.share():
                result = scene.render(self.request(view, "preview" if drag else quality, drag=drag))
            self.timings["drag" if drag else quality] = time.perf_counter() - start
        return result

    def input_crop(self, frame: int) -> np.ndarray | None:
        """The aligned input crop of fitted ``frame`` (the "before" beside the render), when this session
        prepared the clip the scene was fitted on; None for a scene opened from a file."""
        scene = self.require_scene()
        prepared = self.scene_prepared
        if prepared is None or not 0 <= frame < scene.n_frames:
            return None
        where = {source: i for i, source in enumerate(prepared.frame_indices)}
        index = where.get(scene.data.source.frames[frame])
        return None if index is None else np.asarray(prepared.crops[index])

    def warm_drag(self, frame: int) -> int:
        """Compute the knot planes that make slider drags on ``frame`` fast; returns backbone runs."""
        return self.require_scene().warm_edit_knots(frame, smoothing="causal")

    # --- output ------------------------------------------------------------------------------------
    def request(self, view: View, quality: str, *, drag: bool = False) -> RenderRequest:
        """The render request of a view (the edit screen and every export render with causal smoothing)."""
        return RenderRequest(
            view.frame, view.camera(self.require_scene()), dict(view.edits or {}), smoothing="causal",
            remove_ood=view.remove_ood, ood_weight=view.blend, quality=quality, approximate_edits=drag, with_blend=True,
        )  # fmt: skip

    def export_video(
        self, view: View, *, paste: bool, quality: str, every_frame: bool = True, progress: StageProgress | None = None
    ) -> Path:
        """The edited video; with ``every_frame`` (and the clip the scene was fitted on at hand) every source
        frame of the fitted span, the ones between fitted frames interpolated (``every_source_frame``)."""
        scene = self.require_scene()
        out = self.output_folder() / ("edited_video.mp4" if paste else "edited_crops.mp4")
        if every_frame and self.scene_prepared is not None:
            scene = every_source_frame(scene, self.scene_prepared)
        with self.working():
            return export_video(
                scene, out, self.request(view, quality), paste=paste, source=self.input, progress=progress
            )

    def video_note(self) -> str:
        """What a video export of this scene will hold, said before the export."""
        scene = self.require_scene()
        frames = scene.data.source.frames
        fps = float(scene.data.source.fps or 25.0)
        if len(frames) < 2:
            return "One fitted frame: the video is a single frame."
        spacing = frame_spacing(frames)
        span = frames[-1] - frames[0] + 1
        if spacing == 1:
            return f"Every source frame of the span was fitted: the video has its {span} frames at {fps:.3g} fps."
        seconds = len(frames) * spacing / fps
        dense = (
            f"With *every source frame* ticked the video has the {span} frames of the fitted span at {fps:.3g} fps, "
            "those between fitted frames interpolated."
            if self.scene_prepared is not None
            else "(Every source frame needs the clip this scene was fitted on: prepare and fit it in this page.)"
        )
        return (
            f"This scene fitted {len(frames)} frames, one source frame in {spacing}. {dense} Unticked, the "
            f"{len(frames)} fitted frames play at {fps / spacing:.3g} fps ({seconds:.1f} s, with the audio of "
            "the same span)."
        )

    def export_orbit(self, view: View, *, path: str, n_views: int, quality: str, progress=None) -> Path:
        scene = self.require_scene()
        out = self.output_folder() / f"orbit_frame{view.frame}.mp4"
        views = camera_path(path, n_views)  # the view count, frame and view's numbers: checked before any render
        with self.working():
            return export_camera_path(scene, out, view.frame, views, self.request(view, quality), progress=progress)

    def export_png(self, view: View) -> Path:
        result = self.render(view, quality="full")
        out = self.output_folder() / f"frame{view.frame}.png"
        save_image(result.image, out)
        return out

    def export_mesh(self, view: View, *, resolution: int = 128) -> tuple[Path, Mesh]:
        """The frame's geometry as .glb, at the density level read off the fitted density."""
        scene = self.require_scene()
        out = self.output_folder() / f"frame{view.frame}.glb"
        with self.working():
            mesh = extract_mesh(scene, view.frame, view.edits, resolution=resolution, remove_ood=view.remove_ood)
        if len(mesh.faces) == 0:
            raise StudioError("The density field has no surface at this level: nothing to export as a mesh.")
        return write_glb(mesh, out), mesh
