"""``python -m innout.bench studio``: the studio under load and over time, through its public API.

Starts ``python app.py --demo-generator faces`` in its own folders, then drives it with ``gradio_client`` clients,
each a page of its own (its own session), opening the pre-fitted example (``/open_example``) and rendering views
(``/render``) drawn at random per client (frame, yaw, pitch, one edit, sometimes the removal). One line per figure:

- ``studio/alone``: one client, ``--renders`` renders: latency median and p95 (the anchor of the burst);
- ``studio/burst``: ``--pages`` clients at once, ``--renders`` each: latency median / p95, p95 over the alone
  median, errors, the server's resident memory before, at its peak and after;
- ``studio/soak`` (``--minutes T``): ``--pages`` clients rendering for T minutes; memory every 100 renders, its
  growth after the warm-up (the soak's first tenth) and the lowest memory of each minute;
- ``studio/pages``: ``--open-close K`` pages opened (example + one render) and closed, ``--pages`` at a time: memory
  and the pages' folders before and after;
- ``studio/abandoned`` (``--abandoned V``): V pages that open the example and are never used nor closed; after the
  server's ``--idle-minutes`` the memory and folders they held;
- ``studio/vanished``: a client that sends a render and disconnects at once, while another renders: the other's
  latency.

The server's memory is its resident set (VmRSS of the app's process), sampled twice a second; "after" figures are
taken ``SETTLE_S`` after the work, once the app has handed freed memory back (it does every 5 s).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime import process_memory_mb
from .processes import REPO, MeasurementError

SETTLE_S = 8.0  # more than the app's TRIM_EVERY_S: freed memory is handed back every 5 s


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` now, in MB (VmRSS)."""
    mb = process_memory_mb("VmRSS", pid)
    if mb is None:
        raise MeasurementError(f"no VmRSS for process {pid}")
    return mb


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of process ``pid`` so far (None: this process, the clients)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MemorySampler:
    """The server's resident memory, sampled in a thread: ``mark()`` returns now's figure, ``peak_since(t)``."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(MeasurementError):
                self.samples.append((time.monotonic(), rss_mb(self.pid)))
            self._stop.wait(self.every_s)

    def mark(self) -> float:
        return rss_mb(self.pid)

    def peak_since(self, start: float) -> float:
        return max((mb for t, mb in self.samples if t >= start), default=self.mark())

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Server:
    proc: subprocess.Popen
    url: str
    home: Path
    log: Path

    def session_folders(self) -> list[Path]:
        return sorted(p for p in self.home.glob("tmp/innout-app-*/sessions/*") if p.is_dir())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def studio_server(home: Path, extra: list[str], timeout_s: float = 300):
    """``python app.py --demo-generator faces`` with its own caches and temporary folder; stopped after."""
    port, log = free_port(), home / "app.log"
    env = dict(os.environ, INNOUT_CACHE_DIR=str(home / "cache"), GRADIO_ANALYTICS_ENABLED="False")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py", "--demo-generator", "faces", "--port", str(port), "--tmp-dir",
             str(home / "tmp"), *extra],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout_s
        while "serving the studio on" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise MeasurementError(f"the app did not start: {log.read_text()[-800:]}")
            time.sleep(0.5)
        yield Server(proc, f"http://127.0.0.1:{port}/", home, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


DIRECTIONS = sorted(p.stem for p in (REPO / "assets" / "world_directions").glob("*.safetensors"))


def random_views(seed: int, count: int, n_frames: int) -> list[dict]:
    """``count`` views a person might ask for: any frame, an orbit within +-30 deg yaw / +-15 deg pitch, one edit
    in -3..3, and the removal one time in five."""
    rng = random.Random(seed)
    views = []
    for _ in range(count):
        edit = {rng.choice(DIRECTIONS): round(rng.uniform(-3, 3), 2)} if DIRECTIONS else {}
        views.append({
            "frame": rng.randrange(n_frames), "yaw": round(rng.uniform(-30, 30), 1),
            "pitch": round(rng.uniform(-15, 15), 1), "edits": edit, "remove": rng.random() < 0.2,
        })  # fmt: skip
    return views


@dataclass
class Page:
    """One client: a session of its own on the server."""

    url: str
    downloads: Path
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        from gradio_client import Client

        self.client = Client(self.url, verbose=False, download_files=str(self.downloads), analytics_enabled=False)

    def call(self, api_name: str, **kwargs) -> object | None:
        start = time.perf_counter()
        try:
            result = self.client.predict(api_name=api_name, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure a client sees is a figure of the benchmark
            self.errors.append(f"{api_name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            return None
        if api_name == "/render":
            self.latencies.append(time.perf_counter() - start)
            with contextlib.suppress(OSError):
                Path(str(result)).unlink()  # the client's copy: a long soak would fill the disk with them
        return result

    def open_example(self) -> int:
        message = self.call("/open_example")
        found = re.search(r"(\d+) frames", str(message or ""))
        return int(found.group(1)) if found else 1

    def render(self, views: list[dict], until: float | None = None, on_render=None) -> None:
        for view in views if until is None else itertools.cycle(views):  # with ``until``: round and round
            if until is not None and time.monotonic() >= until:
                return
            self.call("/render", **view)
            if on_render is not None:
                on_render()

    def close(self) -> None:
        self.client.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def at_once(work, count: int) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_for(condition, timeout_s: float, every_s: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every_s)
    return condition()


def alone(server: Server, renders: int, downloads: Path) -> dict:
    page = Page(server.url, downloads)
    n_frames = page.open_example()
    page.render(random_views(0, 3, n_frames))  # warm-up: the first renders build caches
    page.latencies.clear()
    page.render(random_views(1, renders, n_frames))
    page.close()
    return {"renders": renders, "median_s": statistics.median(page.latencies) if page.latencies else None,
            "p95_s": percentile(page.latencies, 0.95), "errors": page.errors, "n_frames": n_frames}  # fmt: skip


def burst(server: Server, memory: MemorySampler, pages: int, renders: int, n_frames: int, downloads: Path) -> dict:
    before, start = memory.mark(), time.monotonic()
    clients = [Page(server.url, downloads) for _ in range(pages)]
    cpu = cpu_seconds(server.proc.pid), cpu_seconds()

    def work(i: int) -> None:
        clients[i].open_example()
        clients[i].render(random_views(100 + i, renders, n_frames))

    at_once(work, pages)
    latencies = [s for c in clients for s in c.latencies]
    seconds, at_end = time.monotonic() - start, memory.mark()
    server_cpu, clients_cpu = cpu_seconds(server.proc.pid) - cpu[0], cpu_seconds() - cpu[1]
    time.sleep(SETTLE_S)  # the pages still open: what they hold once the server has handed freed memory back
    peak, after = memory.peak_since(start), memory.mark()
    for c in clients:
        c.close()
    return {
        "pages": pages, "renders_each": renders, "renders": len(latencies), "seconds": seconds, "rss_at_end_mb": at_end,
        "server_cpu_s": server_cpu, "clients_cpu_s": clients_cpu,
        "median_s": statistics.median(latencies) if latencies else None, "p95_s": percentile(latencies, 0.95),
        "errors": [e for c in clients for e in c.errors], "rss_before_mb": before, "rss_peak_mb": peak,
        "rss_after_mb": after, "rss_growth_mb": after - before,
    }  # fmt: skip


def soak(server: Server, memory: MemorySampler, pages: int, minutes: float, n_frames: int, downloads: Path) -> dict:
    clients = [Page(server.url, downloads) for _ in range(pages)]
    for c in clients:
        c.open_example()
    count, lock, per_100 = [0], threading.Lock(), []
    started, until = time.monotonic(), time.monotonic() + minutes * 60

    def counted() -> None:
        with lock:
            count[0] += 1
            if count[0] % 100 == 0:
                per_100.append({"renders": count[0], "minutes": (time.monotonic() - started) / 60,
                                "rss_mb": memory.mark()})  # fmt: skip

    def work(i: int) -> None:
        clients[i].render(random_views(200 + i, 500, n_frames), until=until, on_render=counted)

    at_once(work, pages)
    for c in clients:
        c.close()
    floors = floors_by_minute(memory.samples, started)
    return {
        "pages": pages, "minutes": minutes, "renders": count[0], "rss_every_100": per_100,
        **growth_after_warmup([m["minutes"] for m in per_100], [m["rss_mb"] for m in per_100]),
        "floor_by_minute_mb": floors,
        "errors": [e for c in clients for e in c.errors],
    }  # fmt: skip


def growth_after_warmup(minutes: list[float], rss: list[float]) -> dict:
    """The memory's drift over a soak after its warm-up (its first tenth: the pages' plane caches fill over minutes,
    not over the first renders): the mean of the last tenth of the samples minus that of the first tenth, and the
    least-squares trend over the span. One sample against another would measure the render buffers alive at that
    moment (a standard deviation of about 65 MB on the faces demo), not a drift."""
    if len(minutes) < 4:
        return {"growth_after_warmup_mb": None, "trend_after_warmup_mb": None}
    after = [(t, mb) for t, mb in zip(minutes, rss, strict=True) if t >= minutes[-1] / 10]
    x, y = [t for t, _ in after], [mb for _, mb in after]
    k = max(1, len(y) // 10)
    mx, my = sum(x) / len(x), sum(y) / len(y)
    spread = sum((a - mx) ** 2 for a in x)
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / spread if spread else 0.0
    return {"growth_after_warmup_mb": sum(y[-k:]) / k - sum(y[:k]) / k, "trend_after_warmup_mb": slope * (x[-1] - x[0])}


def floors_by_minute(samples: list[tuple[float, float]], start: float) -> list[float]:
    """The lowest resident memory of each minute since ``start`` (the sampler's readings, twice a second): what the
    server keeps between renders, without the buffers of the renders running at that moment."""
    floors: dict[int, float] = {}
    for t, mb in samples:
        if t >= start:
            minute = int((t - start) // 60)
            floors[minute] = min(mb, floors.get(minute, mb))
    return [floors[m] for m in sorted(floors)]


def settled(server: Server) -> int:
    """The session folders once the pages closed before are gone (a closed client is seen within a heartbeat, 15 s)."""
    wait_for(lambda: not server.session_folders(), 60)
    return len(server.session_folders())


def open_close(server: Server, memory: MemorySampler, total: int, at_a_time: int, downloads: Path) -> dict:
    folders_before = settled(server)
    before = memory.mark()
    errors: list[str] = []
    for wave in range(0, total, at_a_time):
        size = min(at_a_time, total - wave)
        clients = [Page(server.url, downloads) for _ in range(size)]

        def work(i: int, clients=clients, first=wave) -> None:
            n = clients[i].open_example()
            clients[i].render(random_views(1000 + first + i, 1, n))
            clients[i].close()

        at_once(work, size)
        errors += [e for c in clients for e in c.errors]
    wait_for(lambda: len(server.session_folders()) <= folders_before, 60)
    time.sleep(SETTLE_S)
    after = memory.mark()
    folders_after = len(server.session_folders())
    return {"pages": total, "rss_before_mb": before, "rss_after_mb": after, "rss_growth_mb": after - before,
            "folders_before": folders_before, "folders_after": folders_after, "errors": errors}  # fmt: skip


def abandoned(server: Server, memory: MemorySampler, count: int, idle_minutes: float, downloads: Path) -> dict:
    folders_before = settled(server)
    before = memory.mark()
    clients = [Page(server.url, downloads) for _ in range(count)]
    for c in clients:
        n = c.open_example()
        c.render(random_views(5000, 1, n))
    holding, folders_holding = memory.mark(), len(server.session_folders())
    wait_for(lambda: len(server.session_folders()) <= folders_before, idle_minutes * 60 + 120, every_s=5)
    time.sleep(SETTLE_S)
    after = memory.mark()
    late = clients[0].call("/render")  # an abandoned page that comes back: told to reopen, nothing crashes
    told = clients[0].errors[-1] if late is None and clients[0].errors else ""
    for c in clients:
        c.close()
    return {"pages": count, "idle_minutes": idle_minutes, "rss_before_mb": before, "rss_holding_mb": holding,
            "rss_after_mb": after, "folders_holding": folders_holding - folders_before,
            "folders_after": len(server.session_folders()) - folders_before, "comes_back": told}  # fmt: skip


def vanished(server: Server, renders: int, n_frames: int, downloads: Path) -> dict:
    """A client that queues a render and goes away, beside one that keeps rendering: the second's latency."""
    steady, gone = Page(server.url, downloads), Page(server.url, downloads)
    steady.open_example()
    gone.open_example()
    gone.client.submit(api_name="/render", frame=0, yaw=10)  # sent, then the client vanishes
    gone.close()
    steady.render(random_views(7, renders, n_frames))
    steady.close()
    return {"renders": renders, "median_s": statistics.median(steady.latencies) if steady.latencies else None,
            "p95_s": percentile(steady.latencies, 0.95), "errors": steady.errors}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m innout.bench studio", description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", type=int, default=6, help="clients at once (default 6)")
    p.add_argument("--renders", type=int, default=30, help="renders per client in the burst (default 30)")
    p.add_argument("--minutes", type=float, default=0.0, help="a soak of T minutes after the burst (default: none)")
    p.add_argument("--open-close", type=int, default=50, help="pages opened and closed (default 50; 0: none)")
    p.add_argument("--abandoned", type=int, default=0, help="pages left open and idle until released (default 0)")
    p.add_argument("--idle-minutes", type=float, help="the server's --idle-minutes (default: the app's)")
    p.add_argument("--server-args", default="", help="more options for app.py, e.g. '--max-scenes 4'")
    p.add_argument("--json", help="write every figure here")
    args = p.parse_args(argv)
    extra = args.server_args.split()
    if args.idle_minutes is not None:
        extra += ["--idle-minutes", str(args.idle_minutes)]
    report: dict = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                    "date": time.strftime("%Y-%m-%d"), "config": vars(args)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="innout-bench-studio-") as tmp:
        home = Path(tmp)
        downloads = home / "client"
        with studio_server(home, extra) as server:
            memory = MemorySampler(server.proc.pid)
            report["rss_start_mb"] = memory.mark()
            one = report["alone"] = alone(server, args.renders, downloads)
            print(f"studio/alone renders={args.renders} median={one['median_s']:.3f}s p95={one['p95_s']:.3f}s "
                  f"errors={len(one['errors'])}", flush=True)  # fmt: skip
            n_frames = one["n_frames"]
            b = report["burst"] = burst(server, memory, args.pages, args.renders, n_frames, downloads)
            ratio = b["p95_s"] / one["median_s"] if one["median_s"] else float("nan")
            n = max(b["renders"], 1)
            b["p95_over_alone_median"] = ratio
            print(f"studio/burst pages={args.pages} renders={b['renders']} median={b['median_s']:.3f}s "
                  f"p95={b['p95_s']:.3f}s p95/alone-median={ratio:.2f} errors={len(b['errors'])} "
                  f"rss {b['rss_before_mb']:.0f}->{b['rss_peak_mb']:.0f} (peak)->{b['rss_after_mb']:.0f} MB "
                  f"growth={b['rss_growth_mb']:+.0f} MB; cpu per render: server {b['server_cpu_s'] / n:.3f}s, "
                  f"clients {b['clients_cpu_s'] / n:.3f}s", flush=True)  # fmt: skip
            v = report["vanished"] = vanished(server, 10, n_frames, downloads)
            print(f"studio/vanished renders=10 median={v['median_s']:.3f}s p95={v['p95_s']:.3f}s "
                  f"errors={len(v['errors'])}", flush=True)  # fmt: skip
            if args.minutes > 0:
                s = report["soak"] = soak(server, memory, args.pages, args.minutes, n_frames, downloads)
                print(f"studio/soak pages={args.pages} minutes={args.minutes:g} renders={s['renders']} "
                      f"growth-after-warmup={s['growth_after_warmup_mb']:+.0f} MB (trend "
                      f"{s['trend_after_warmup_mb']:+.0f} MB; floor per minute "
                      f"{' '.join(f'{mb:.0f}' for mb in s['floor_by_minute_mb'])} MB) errors={len(s['errors'])}",
                      flush=True)  # fmt: skip
            if args.open_close > 0:
                o = report["pages"] = open_close(server, memory, args.open_close, args.pages, downloads)
                print(f"studio/pages opened-closed={args.open_close} rss {o['rss_before_mb']:.0f}->"
                      f"{o['rss_after_mb']:.0f} MB ({o['rss_growth_mb']:+.0f}) folders {o['folders_before']}->"
                      f"{o['folders_after']} errors={len(o['errors'])}", flush=True)  # fmt: skip
            if args.abandoned > 0:
                idle = args.idle_minutes if args.idle_minutes is not None else 30.0
                a = report["abandoned"] = abandoned(server, memory, args.abandoned, idle, downloads)
                print(f"studio/abandoned pages={args.abandoned} idle-minutes={idle:g} rss {a['rss_before_mb']:.0f}->"
                      f"{a['rss_holding_mb']:.0f} (held)->{a['rss_after_mb']:.0f} MB folders held "
                      f"{a['folders_holding']} -> {a['folders_after']}; coming back: {a['comes_back']!r}", flush=True)
            memory.stop()
            report["rss_end_mb"] = memory.mark()
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0
