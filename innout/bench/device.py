"""The GPU check: every figure of the speed issue in ONE command, for a borrowed GPU machine.

    python -m innout.bench device [--out DIR] [--budget 450] [--sections env,generator,...] [--dry-run]
    python -m innout.bench device --pack .device      # here, before: what has to travel with the tree

A borrowed GPU machine is bare, offline and lent for minutes, so this command installs nothing and
runs each section (``innout.bench.device_cases``, plus the test suites) in its own process under its
own timeout, inside one overall budget: a crash or a hang costs one section, never the figures of the
others. After every section it rewrites ``device.json`` (every row, with its configuration),
``device.md`` (a readable table) and ``device.log`` (what each section printed) in ``--out``, so even a
run cut short leaves what it measured. It ends by printing the table.

What the machine lacks travels in the carry folder that ``--pack`` writes: the LPIPS weights, stored
in fp16 to fit the transfer limit (the LPIPS values they give differ from fp32 weights by the figure
``--pack`` prints; both sides of every comparison use the same weights). ``--carry DIR`` (default
``.device`` when it exists) makes them available to the sections.

``--dry-run`` runs the same sections at the tiny fixture size and only collects the tests: CI runs it
on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

from ..runtime import pick_device

ORDER = ("env", "generator", "render", "iterations", "fit", "tests")
TIMEOUTS = {"env": 60, "generator": 100, "render": 80, "iterations": 120, "fit": 200, "tests": 240}  # seconds
LPIPS_NETS = ("alex", "vgg")


# --- the carry folder ----------------------------------------------------------------------------
def pack(folder: Path) -> dict:
    """Write what the device machine lacks into ``folder``: the converted LPIPS weights in fp16."""
    from .. import storage
    from ..metrics.perceptual import LPIPS, cached_weights

    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"lpips": {}}
    torch.manual_seed(0)
    a, b = torch.rand(4, 3, 128, 128) * 2 - 1, torch.rand(4, 3, 128, 128) * 2 - 1
    for net in LPIPS_NETS:
        state = cached_weights(net)
        half = {k: v.half().contiguous() for k, v in state.items()}
        storage.save_tensors(half, folder / f"lpips_v0.1_{net}.fp16.safetensors")
        with torch.no_grad():
            exact = LPIPS(net, state_dict=state)(a, b)
            rounded = LPIPS(net, state_dict={k: v.float() for k, v in half.items()})(a, b)
        manifest["lpips"][net] = {"max_relative_change": float(((rounded - exact) / exact).abs().max())}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def unpack(folder: Path, pretrained: Path) -> None:
    """The carried fp16 LPIPS weights as the fp32 files ``innout.metrics`` reads from ``pretrained``."""
    from .. import storage

    pretrained.mkdir(parents=True, exist_ok=True)
    for net in LPIPS_NETS:
        src = folder / f"lpips_v0.1_{net}.fp16.safetensors"
        if src.is_file():
            state = {k: v.float() for k, v in storage.load_tensors(src)[0].items()}
            storage.save_tensors(state, pretrained / f"lpips_v0.1_{net}.safetensors")


# --- the test suites ------------------------------------------------------------------------------
def _junit_summary(path: Path) -> dict:
    if not path.is_file():
        return {"error": "pytest wrote no report"}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    failed = []
    for case in suite.iter("testcase"):
        for bad in [*case.findall("failure"), *case.findall("error")]:
            message = (bad.get("message") or bad.text or "").strip().splitlines()
            failed.append(f"{case.get('classname')}::{case.get('name')}: {(message or [''])[0][:200]}")
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return {**counts, "failed": failed[:40]}


def test_runs(device: str, dry_run: bool) -> list[tuple[str, list[str], dict]]:
    """(name, pytest arguments, extra environment) of each test run: the GPU-marked tests, the tests
    that take the ``device`` fixture on this device, and the whole default suite on this machine's CPU
    (which checks the installed numpy / torch / Python, not the GPU)."""
    xdist = ["-n", "8"] if _has("xdist") and not dry_run else []
    on_device = {"INNOUT_TEST_DEVICE": device}
    return [
        ("pytest -m gpu", ["-m", "gpu"], on_device),
        (f"pytest on {device} (tests taking the device fixture)", ["-m", "device and not slow"], on_device),
        ("pytest default suite on this machine's CPU", [*xdist], {}),
    ]


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run_tests(device: str, dry_run: bool, deadline: float, env: dict, log) -> list[dict]:
    rows = []
    for name, args, extra in test_runs(device, dry_run):
        left = deadline - time.monotonic()
        if left < 10:
            rows.append({"name": name, "value": None, "unit": "", "status": "skipped: budget spent"})
            continue
        with tempfile.TemporaryDirectory() as tmp:
            report = Path(tmp) / "junit.xml"
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                       "--continue-on-collection-errors", f"--junitxml={report}", *args]  # fmt: skip
            if dry_run:
                command.append("--collect-only")
            started = time.monotonic()
            status = _run(command, {**env, **extra}, left, log, name)
            summary = _junit_summary(report) if not dry_run else {}
        failed = summary.get("failures", 0) + summary.get("errors", 0)
        value = (
            f"{summary.get('passed')} passed, {failed} failed, {summary.get('skipped')} skipped" if summary else status
        )
        ok = status == "ok" if dry_run else summary.get("failures", 1) + summary.get("errors", 1) == 0
        rows.append({"name": name, "value": value, "unit": "", "ok": ok, "status": status,
                     "seconds": round(time.monotonic() - started, 1), **summary})  # fmt: skip
    return rows


# --- running sections ---------------------------------------------------------------------------------
def _run(command: list[str], env: dict, timeout: float, log, title: str) -> str:
    log.write(f"\n===== {title}: {' '.join(command)}\n")
    log.flush()
    try:
        proc = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                              text=True, errors="replace")  # fmt: skip
        log.write(proc.stdout[-20000:])
        return "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or ""
        log.write((out.decode(errors="replace") if isinstance(out, bytes) else out)[-20000:])
        return f"timeout after {timeout:.0f} s"
    finally:
        log.flush()


def run_section(name: str, device: str, dry_run: bool, timeout: float, env: dict, log, extra: list[str]) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "rows.json"
        command = [sys.executable, "-m", "innout.bench", "device", "--section", name, "--device", device,
                   "--result", str(result), *extra] + (["--dry-run"] if dry_run else [])  # fmt: skip
        status = _run(command, env, timeout, log, name)
        rows = json.loads(result.read_text()) if result.is_file() else []
    if status != "ok" or not rows:  # the rows measured before a crash or a timeout are kept
        rows.append({"name": f"{name} section", "value": None, "unit": "", "ok": False, "status": status})
    return rows


def section_main(name: str, device: str, dry_run: bool, result: Path, presets: str | None) -> int:
    """Inside the section's own process: measure and write the rows as JSON."""
    import dataclasses

    from .device_cases import SECTIONS, Scale

    scale = Scale.dry() if dry_run else Scale.full()
    if presets:
        scale = dataclasses.replace(scale, presets=tuple(presets.split(",")))
    rows = []
    started = time.monotonic()
    for r in SECTIONS[name](torch.device(device), scale):
        rows.append(r)
        result.write_text(json.dumps(rows, default=str))  # what is measured survives a timeout
        print(f"[{time.monotonic() - started:6.1f} s] {r['name']}: {_fmt(r.get('value'))} {r.get('unit', '')}",
              flush=True)  # fmt: skip
    return 0


# --- the report -----------------------------------------------------------------------------------
def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| section | figure | value | unit | target | ok | peak GiB |", "|" + " --- |" * 7]
    for section, rows in results.items():
        for r in rows:
            ok = {True: "yes", False: "NO", None: ""}[r.get("ok")]
            value = r.get("value") if r.get("value") is not None else r.get("status", r.get("error", ""))
            lines.append(f"| {section} | {r['name']} | {_fmt(value)} | {r.get('unit', '')} | {r.get('target', '')} "
                         f"| {ok} | {_fmt(r.get('peak_gib'))} |")  # fmt: skip
    return "\n".join(lines)


def write_report(out: Path, header: dict, results: dict[str, list[dict]]) -> None:
    (out / "device.json").write_text(json.dumps({**header, "sections": results}, indent=1, default=str))
    title = f"# Device check {header['started']} on {header['device_name']} ({header['mode']})\n\n"
    (out / "device.md").write_text(title + table(results) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench device", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=pick_device(), help="torch device (default: cuda if available)")
    parser.add_argument("--out", default="device-check", help="folder for device.json, device.md, device.log")
    parser.add_argument("--sections", default=",".join(ORDER), help=f"comma-separated, run in this order ({ORDER})")
    parser.add_argument("--timeouts", default="", help=f"seconds per section, e.g. fit=90,tests=60 ({TIMEOUTS})")
    parser.add_argument("--presets", help="presets whose step times the iterations section measures (paper,fast)")
    parser.add_argument("--budget", type=float, default=450, help="seconds for the whole check (default: 450)")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, tests collected only (runs on a CPU)")
    parser.add_argument("--carry", help="the folder --pack wrote (default: .device when it exists)")
    parser.add_argument("--pack", metavar="DIR", help="instead: write the carry folder for the device machine")
    parser.add_argument("--section", help=argparse.SUPPRESS)  # internal: run one section in this process
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pack:
        print(json.dumps(pack(Path(args.pack)), indent=1))
        return 0
    if args.section:
        return section_main(args.section, args.device, args.dry_run, Path(args.result), args.presets)
    sections = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(sections) - set(ORDER))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {ORDER}")

    timeouts = dict(TIMEOUTS)
    for item in filter(None, args.timeouts.split(",")):
        key, _, value = item.partition("=")
        if key not in TIMEOUTS or not value:
            parser.error(f"--timeouts: expected SECTION=SECONDS with a section from {ORDER}, got {item!r}")
        timeouts[key] = float(value)
    begin = time.monotonic()
    deadline = begin + args.budget
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    carry = Path(args.carry) if args.carry else Path(".device")
    workdir = Path(tempfile.mkdtemp(prefix="innout-device-"))
    try:  # the unpacked weights and caches (66 MB) are this run's only
        if carry.is_dir():
            unpack(carry, workdir / "pretrained")
            env["INNOUT_PRETRAINED_DIR"] = str(workdir / "pretrained")
        env.setdefault("INNOUT_CACHE_DIR", str(workdir / "cache"))
        header = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "device": args.device,
            "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
            "mode": "dry run" if args.dry_run else "full",
            "budget_s": args.budget,
            "carry": str(carry) if carry.is_dir() else None,
        }
        results: dict[str, list[dict]] = {}
        with open(out / "device.log", "w") as log:
            for name in sections:
                left = deadline - time.monotonic()
                if left < 15:
                    results[name] = [{"name": f"{name} section", "value": None, "status": "skipped: budget spent"}]
                    continue
                started = time.monotonic()
                if name == "tests":
                    results[name] = run_tests(args.device, args.dry_run, deadline, env, log)
                else:
                    limit = min(timeouts[name], left)
                    extra = ["--presets", args.presets] if args.presets else []
                    results[name] = run_section(name, args.device, args.dry_run, limit, env, log, extra)
                print(f"[{time.monotonic() - begin:6.1f} s] {name}: {time.monotonic() - started:.1f} s", flush=True)
                header["elapsed_s"] = round(time.monotonic() - begin, 1)
                write_report(out, header, results)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(table(results))
    failed = [r for rows in results.values() for r in rows if r.get("status", "ok") != "ok" or r.get("ok") is False]
    return 1 if any(r.get("status", "ok") != "ok" for r in failed) else 0
