"""In-N-Out studio: the Gradio app. ``python app.py --help`` lists every option.

It finds the EG3D weights (``--checkpoint``, ``INNOUT_EG3D_CHECKPOINT``, ``pretrained/``), downloads
them on first run when it can, and otherwise still starts, with a setup panel that says what is missing.
``--demo-generator faces`` runs the whole flow on the synthetic world's small trained prior (cartoon heads with
smile and age sliders); ``--demo-generator tiny`` on a small untrained generator (noise, for tests).
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys

from innout.numbers import Range

PORT = Range(1, 65535, integer=True)
MAX_SECONDS = Range(0, 3600, lo_open=True, unit="seconds")
QUEUE_SIZE = Range(1, 10_000, integer=True)
CONCURRENCY = Range(1, 64, integer=True)
UPLOAD_MB = Range(1, 100_000, integer=True, unit="MB")
IDLE_MINUTES = Range(0, 7 * 24 * 60, lo_open=True, unit="minutes")
MAX_SCENES = Range(1, 1000, integer=True)


def build_parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(
        prog="python app.py",
        description="In-N-Out studio: fit a face video with EG3D + an OOD radiance field, then edit it live.",
    )
    p.add_argument(
        "--host",
        default=env("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="address to listen on (default: 127.0.0.1; 0.0.0.0 for every interface, as on Spaces)",
    )
    p.add_argument(
        "--port",
        type=PORT.argtype(),
        default=int(env("GRADIO_SERVER_PORT", "7860")),
        help="port (default: 7860, or $GRADIO_SERVER_PORT)",
    )
    p.add_argument("--share", action="store_true", help="also open a temporary public gradio.live link")
    p.add_argument(
        "--checkpoint",
        help="EG3D generator .pkl or converted .safetensors "
        "(default: $INNOUT_EG3D_CHECKPOINT, then pretrained/, then a download)",
    )
    p.add_argument(
        "--no-download",
        action="store_true",
        help="never download the weights; show the setup panel when they are missing",
    )
    p.add_argument(
        "--demo-generator",
        choices=["faces", "tiny"],
        help="use a demo generator instead of EG3D: 'faces', the synthetic world's small trained prior (cartoon "
        "heads, with smile, age, ... sliders), or 'tiny', a small UNTRAINED one (noise, for tests)",
    )
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument(
        "--directions",
        nargs="*",
        metavar="PATH",
        help="direction files or folders to offer as sliders, in place of the default ones (pretrained/directions; "
        "for the faces demo its shipped directions). Directions learned from the page are always offered",
    )
    p.add_argument(
        "--max-seconds",
        type=MAX_SECONDS.argtype(),
        default=60.0,
        help="longest input clip accepted, above 0 up to 3600 seconds (default: 60)",
    )
    p.add_argument(
        "--queue-size",
        type=QUEUE_SIZE.argtype(),
        default=16,
        help="requests that may wait in the queue; more are turned away (default: 16)",
    )
    p.add_argument(
        "--concurrency",
        type=CONCURRENCY.argtype(),
        default=1,
        help="fits/exports that run at once (default: 1; each takes the whole CPU or GPU)",
    )
    p.add_argument(
        "--render-concurrency",
        type=CONCURRENCY.argtype(),
        default=2,
        help="renders that run at once, in a queue of their own (never behind a fit or an export; default: 2)",
    )
    p.add_argument(
        "--idle-minutes",
        type=IDLE_MINUTES.argtype(),
        default=30.0,
        help="a page without any action for this long lets go of its scene and files (default: 30)",
    )
    p.add_argument(
        "--max-scenes",
        type=MAX_SCENES.argtype(),
        default=8,
        help="scenes held in memory at once; one more lets go of the least recently used page's (default: 8)",
    )
    p.add_argument(
        "--page-disk-mb",
        type=UPLOAD_MB.argtype(),
        default=1000,
        help="the most one page's files (upload, fitted scenes, exports) may take, in MB (default: 1000)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=UPLOAD_MB.argtype(),
        default=500,
        help="largest upload accepted, in MB, 1 to 100000 (default: 500)",
    )
    p.add_argument(
        "--tmp-dir",
        help="where the app's temporary folder goes: sessions' files and Gradio's uploads and exports, removed "
        "when the app stops (default: the system temp folder)",
    )
    p.add_argument(
        "--allow-setup",
        action="store_true",
        help="offer the setup actions in the page when the EG3D weights are missing (load a local file by its "
        "path, retry the download); only with --host 127.0.0.1 or localhost and without --share",
    )
    return p


LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.allow_setup and (args.host not in LOCAL_HOSTS or args.share):
        parser.error(
            "--allow-setup lets the page open files and start downloads on this machine: it is only allowed "
            "with --host 127.0.0.1 (or localhost) and without --share"
        )
    return args


def launch_options(args: argparse.Namespace) -> dict[str, object]:
    """Gradio's server settings taken from the options: where it listens and the largest upload it accepts."""
    return {
        "server_name": args.host,
        "server_port": args.port,
        "share": args.share,
        "max_file_size": f"{args.max_upload_mb}mb",
    }


NATIVE_NOISE = (  # lines MediaPipe's native code writes on every prepare; none says anything a user can act on
    "Created TensorFlow Lite XNNPACK delegate",
    "All log messages before absl::InitializeLog()",
    "inference_feedback_manager.cc",
    "landmark_projection_calculator.cc",
    "gl_context.cc",
)


def quiet_native_logs() -> None:
    """Leave MediaPipe's TFLite/absl lines out of the terminal. They are written by native code straight to file
    descriptor 2, past Python's logging, so the descriptor is routed through a filter that passes every other line."""
    import threading

    try:
        original = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
    except OSError:
        return  # no descriptor to route (an embedded interpreter): the lines stay, nothing else changes

    def forward() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as source:
            pending = b""
            while chunk := source.read(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if not any(noise.encode() in line for noise in NATIVE_NOISE):
                        os.write(original, line + b"\n")
            if pending:
                os.write(original, pending)

    thread = threading.Thread(target=forward, name="native-log-filter", daemon=True)
    thread.start()

    def drain() -> None:  # at exit: the descriptor back, the pipe closed, every line written so far forwarded
        sys.stderr.flush()
        os.dup2(original, 2)
        thread.join(timeout=2)

    atexit.register(drain)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quiet_native_logs()
    from innout.app.tempdirs import app_temp_root

    root = app_temp_root(args.tmp_dir)  # before Gradio is imported: its uploads go there too
    from innout.app.runtime import learn_demo_directions, load_runtime
    from innout.app.sessions import Limits
    from innout.app.ui import CSS, THEME, AppConfig, build_ui

    runtime = load_runtime(
        checkpoint=args.checkpoint, demo=args.demo_generator, device=args.device, download=not args.no_download,
        directions=args.directions, fallback_demo="faces",
    )  # fmt: skip
    if runtime.demo:
        learned = learn_demo_directions(runtime, progress=True)
        if learned:
            print(f"learned the demo directions {', '.join(learned)} (saved; later starts reuse them)")
    print(runtime.label if runtime.ready else f"no generator: {runtime.problem}")
    limits = Limits(idle_minutes=args.idle_minutes, max_scenes=args.max_scenes, page_disk_mb=args.page_disk_mb)
    config = AppConfig(max_seconds=args.max_seconds, tmp_root=str(root / "sessions"), allow_setup=args.allow_setup,
                       limits=limits, render_concurrency=args.render_concurrency)  # fmt: skip
    demo = build_ui(runtime, config)
    demo.queue(max_size=args.queue_size, default_concurrency_limit=args.concurrency)
    try:
        # Gradio's own start-up lines are replaced by ours: it would advise `share=True in launch()`, which here is
        # the --share flag
        demo.launch(**launch_options(args), css=CSS, theme=THEME, show_error=True, quiet=True,
                    prevent_thread_lock=True)  # fmt: skip
        print(f"serving the studio on {demo.local_url}", flush=True)
        if demo.share_url:
            print(f"public link (temporary, gradio.live): {demo.share_url}", flush=True)
        elif not args.share:
            print("(python app.py --share adds a temporary public link; --help lists every option)", flush=True)
        demo.block_thread()
    finally:
        demo.studio_sessions.close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
