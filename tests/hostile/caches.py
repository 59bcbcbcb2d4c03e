"""Robustness cases: damaged, orphaned and contended cache entries; unwritable cache folders.

A damaged entry must be detected, reported and recomputed ('recovered': the case checks that the result is
the one an undamaged run gives); two processes on the same work must compute it once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from .cases import Case, CaseFailed, CaseSkipped

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "assets" / "examples" / "lp_d19_eyeglasses_talking.mp4"


# -- damaging files -----------------------------------------------------------------------------------


def truncate(path: Path) -> str:
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    return f"truncated {path.name} from {size} to {size // 2} bytes"


def garble(path: Path) -> str:
    """Flip bytes near the end (inside the data, past any header): same size, still parses."""
    data = bytearray(path.read_bytes())
    for i in range(1, 9):
        data[-i * 97] ^= 0x5A
    path.write_bytes(bytes(data))
    return f"garbled 8 bytes of {path.name} (same size)"


# -- a tiny fit stage ---------------------------------------------------------------------------------


def _tiny_pipeline(workdir: Path, log: Callable[[str], None] | None = None):
    from innout.eg3d import GeneratorConfig
    from innout.eg3d.random import synthetic_generator
    from innout.fit.config import FitConfig, InitConfig
    from innout.fit.pipeline import FitPipeline
    from innout.world.band import make_synthetic_video
    G = synthetic_generator(GeneratorConfig.tiny(), seed=3, contrast=1.0, grey=False)
    data = make_synthetic_video(G, 2).fit_data()
    config = FitConfig(name="robustness", seed=1)
    config.init = InitConfig(samples=4, batch=2, compare="raw", lpips_net="alex")
    return FitPipeline(G, data, config, workdir, log=log)


def _stage_recovers(damage: Callable[[Path], str]) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        reference, _ = _tiny_pipeline(folder / "fit").initialise()
        (result,) = (folder / "fit").glob("init-*/result.safetensors")
        what = damage(result)
        log: list[str] = []
        again, _ = _tiny_pipeline(folder / "fit", log.append).initialise()
        if not any("damaged" in m for m in log):
            raise CaseFailed(f"{what}: the damage was not reported ({log})")
        if any(not torch.equal(again[k], reference[k]) for k in reference):
            raise CaseFailed(f"{what}: the recomputed stage differs from the original")
        return f"{what}: reported and recomputed, identical result"

    return run


def _checkpoint_recovers(folder: Path) -> str:
    from innout.fit.loop import latest_checkpoint, run_loop

    def train(checkpoint: Path | None, stop_at: int | None = None) -> torch.Tensor:
        x = torch.nn.Parameter(torch.zeros(4))
        optimizer = torch.optim.Adam([x], lr=0.1)

        def step(i: int) -> dict[str, float]:
            if i == stop_at:
                raise KeyboardInterrupt
            loss = (x - torch.randn(4)).square().sum()
            loss.backward()
            return {"loss": float(loss.detach())}

        run_loop("t", 8, step, {"x": x}, optimizer, seed=2, checkpoint=checkpoint, every=3)
        return x.detach().clone()

    reference = train(None)
    with contextlib.suppress(KeyboardInterrupt):
        train(folder / "checkpoint.pt", stop_at=7)
    saved = latest_checkpoint(folder / "checkpoint.pt")
    if saved is None:
        raise CaseFailed("no checkpoint was written")
    what = garble(saved)
    resumed = train(folder / "checkpoint.pt")
    if not torch.equal(resumed, reference):
        raise CaseFailed(f"{what}: the run after the damaged checkpoint differs from a straight run")
    return f"{what}: skipped (started over), identical result"


# -- the preprocessing cache --------------------------------------------------------------------------


def _prepare(cache: Path):
    from innout.preprocess import PrepareOptions, prepare

    if not CLIP.is_file():
        raise CaseSkipped(f"needs the example clip {CLIP}")
    return prepare(CLIP, PrepareOptions(max_frames=2), cache_dir=cache, progress=False)


def _prepare_recovers(file: str, damage: Callable[[Path], str]) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        first = _prepare(folder / "cache")
        crops = np.array(first.crops)
        what = damage(Path(first.cache_dir) / file)
        again = _prepare(folder / "cache")
        if not np.array_equal(np.asarray(again.crops), crops):
            raise CaseFailed(f"{what}: the prepared frames differ after the damage")
        if again.content_digest != first.content_digest:
            raise CaseFailed(f"{what}: the recomputed entry has another content key")
        return f"{what}: recomputed, identical frames"

    return run


def _orphan_removed(folder: Path) -> str:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = folder / "cache" / f"0123456789abcdef01234567.tmp-{dead.stdout.strip()}"
    orphan.mkdir(parents=True)
    (orphan / "crops.npy").write_bytes(b"\0" * 4096)
    long_ago = time.time() - 600  # killed ten minutes ago
    for path in (orphan / "crops.npy", orphan):
        os.utime(path, (long_ago, long_ago))
    with contextlib.suppress(CaseSkipped):
        _prepare(folder / "cache")
        if orphan.exists():
            raise CaseFailed(f"{orphan.name} was left in the cache")
        return f"{orphan.name} (left by a killed prepare) removed by the next prepare"
    raise CaseSkipped(f"needs the example clip {CLIP}")


def _fit_key_is_content(folder: Path) -> str:
    """The same frames cached under two entries (two names for one input) give one fit key."""
    import shutil

    from innout.preprocess import PreparedVideo

    first = _prepare(folder / "cache")
    copy = Path(first.cache_dir).with_name("another-entry")
    shutil.copytree(first.cache_dir, copy)
    second = PreparedVideo.load(copy)
    if first.content_digest != second.content_digest or not first.content_digest:
        raise CaseFailed("the content key depends on the entry's folder name")
    changed = dataclasses.replace(first, cameras=first.cameras + 1e-3).save(folder / "cache" / "changed")
    if changed.content_digest == first.content_digest:
        raise CaseFailed("other cameras gave the same content key")
    return "same frames in two entries: one key; other cameras: another key"


# -- two processes, one stage -------------------------------------------------------------------------

_CONTENDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import innout.fit.pipeline as pipeline
    from tests.hostile.caches import _tiny_pipeline
    hold = float(sys.argv[2])
    original = pipeline.nearest_neighbour_init

    def slow_init(*args, **kwargs):
        print("COMPUTING", flush=True)
        time.sleep(hold)  # long enough for the other process to arrive
        return original(*args, **kwargs)

    pipeline.nearest_neighbour_init = slow_init
    log = []
    _tiny_pipeline(Path(sys.argv[1]), log.append).initialise()
    print("LOG", repr(log), flush=True)
    """
)


def _two_processes_compute_once(folder: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def start(hold: float) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, str(folder / "fit"), str(hold)], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip

    first = start(6.0)
    for line in first.stdout:  # wait until the first process is computing the stage
        if line.startswith("COMPUTING"):
            break
    else:
        raise CaseFailed(f"the first process ended before computing: status {first.wait()}")
    second = start(0.0)
    out_first, out_second = first.communicate(timeout=300)[0], second.communicate(timeout=300)[0]
    if first.returncode or second.returncode:
        raise CaseFailed(f"a process failed: {out_first[-300:]} {out_second[-300:]}")
    if "COMPUTING" in out_second:
        raise CaseFailed("both processes computed the stage")
    if "waiting for another process" not in out_second or "init: cached" not in out_second:
        raise CaseFailed(f"the second process did not wait and then use the result: {out_second[-300:]}")
    return "the second process waited for the lock, then used the first one's result (computed once)"


# -- unwritable folders -------------------------------------------------------------------------------


@contextlib.contextmanager
def unwritable_folder(folder: Path, kind: str) -> Iterator[Path]:
    """A folder where writing fails: ``kind`` 'read-only' or 'full'. Made with a small tmpfs mount when
    this process may mount (root in a container), with permissions when not root; skipped otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "read-only" and os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield folder
        finally:
            folder.chmod(0o700)
        return
    options = "ro,size=64k" if kind == "read-only" else "size=64k"
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        raise CaseSkipped(f"cannot make a {kind} folder here (no permission to mount a small tmpfs)")
    try:
        if kind == "full":
            with open(folder / "filler", "wb") as f, contextlib.suppress(OSError):
                f.write(b"\0" * (1 << 20))
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def _prepare_into(kind: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        from .cases import run_cli

        if not CLIP.is_file():
            raise CaseSkipped(f"needs the example clip {CLIP}")
        with unwritable_folder(folder / "cache", kind) as cache:
            return run_cli(["prepare", CLIP, folder / "out", "--max-frames", "2", "--cache-dir", cache / "prepare"])

    return run


def _stage_into(kind: str) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        with unwritable_folder(folder / "fit", kind) as workdir:
            _tiny_pipeline(workdir).initialise()
        return "the stage was written"

    return run


def _render_into(kind: str, target: str) -> Callable[[Path], str]:
    """``render`` of a tiny scene (an image or an orbit video) into a read-only or full output folder."""

    def run(folder: Path) -> str:
        from .cases import run_cli
        from .numbers import tiny_scene

        scene = tiny_scene(folder)
        extra = ["--orbit", "--views", "2"] if target.endswith(".mp4") else []
        with unwritable_folder(folder / "out", kind) as out:
            return run_cli(["render", scene, "-o", out / target, *extra])

    return run


def _scene_into(kind: str) -> Callable[[Path], str]:
    """A fitted scene written into a read-only or full folder (what ``fit --output`` does last)."""

    def run(folder: Path) -> str:
        from innout.scene.file import load_scene, save_scene

        from .numbers import tiny_scene

        scene = load_scene(tiny_scene(folder))
        with unwritable_folder(folder / "out", kind) as out:
            save_scene(scene, out / "scene.safetensors")
        return "the scene was written"

    return run


CASES: list[Case] = [
    Case("caches/stage-result-truncated", "recovered", _stage_recovers(truncate)),
    Case("caches/stage-result-garbled", "recovered", _stage_recovers(garble)),
    Case("caches/checkpoint-garbled", "recovered", _checkpoint_recovers),
    Case("caches/prepare-crops-truncated", "recovered", _prepare_recovers("crops.npy", truncate)),
    Case("caches/prepare-crops-garbled", "recovered", _prepare_recovers("crops.npy", garble)),
    Case("caches/prepare-arrays-garbled", "recovered", _prepare_recovers("arrays.npz", garble)),
    Case("caches/prepare-orphaned-temp-folder", "recovered", _orphan_removed),
    Case("caches/fit-key-is-frames-content", "ok", _fit_key_is_content),
    Case("caches/two-processes-one-stage", "recovered", _two_processes_compute_once, slow=True),
    Case("caches/prepare-read-only-cache", "refused", _prepare_into("read-only"), match="not writable"),
    Case("caches/prepare-full-cache", "refused", _prepare_into("full"), match="disk is full"),
    Case("caches/fit-stage-read-only-workdir", "refused", _stage_into("read-only"), match="not writable"),
    Case("caches/fit-stage-full-workdir", "refused", _stage_into("full"), match="disk is full"),
    Case("caches/render-png-into-read-only", "refused", _render_into("read-only", "a.png"), match="not writable"),
    Case("caches/render-png-into-full", "refused", _render_into("full", "a.png"), match="disk is full"),
    Case("caches/render-mp4-into-read-only", "refused", _render_into("read-only", "a.mp4"), match="not writable"),
    Case("caches/render-mp4-into-full", "refused", _render_into("full", "a.mp4"), match="disk is full"),
    Case("caches/scene-into-read-only-folder", "refused", _scene_into("read-only"), match="not writable"),
    Case("caches/scene-into-full-folder", "refused", _scene_into("full"), match="disk is full"),
]
