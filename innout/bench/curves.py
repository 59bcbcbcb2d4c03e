"""Curves of world benchmark reports: how the split forms along the joint stage, one run beside another.

    python -m innout.bench curves REPORT.json [REPORT.json ...] [--labels a,b,...] [--figure FILE.png]
        [--methods innout,innout-mask] [--markdown]

Each report is a ``python -m innout.bench world --curve ... --json`` output. Prints one line per object, method and
report with the IoU and the in-object PSNR at every curve point, then the acceptance figures at the last point
(in-object PSNR over W+'s, the removal inside the object over the input's); ``--figure`` draws IoU and in-object
PSNR against the joint iterations, a column per object, a line per report and method (matplotlib).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CURVE_METHODS = ("innout", "innout-mask")


def read_report(path: str | Path) -> dict:
    report = json.loads(Path(path).read_text())
    if not isinstance(report, dict) or "objects" not in report:
        raise ValueError(f"{path}: not a world benchmark report (no 'objects')")
    return report


def curve_of(row: dict) -> list[dict]:
    """The row's curve points, or its final figures as the one point when the run had no curve."""
    return row.get("curve") or [{"iterations": None, **row}]


def _num(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rows(reports: dict[str, dict], methods: tuple[str, ...]):
    """(object, method, label, curve points, in-object PSNR over W+'s, removal over the input inside the object)
    for every object, method and report that has that row."""
    objects = sorted({name for report in reports.values() for name in report["objects"]})
    for name in objects:
        for method in methods:
            for label, report in reports.items():
                rows = report["objects"].get(name, {})
                row = rows.get(method)
                if row is None:
                    continue
                w_plus = (rows.get("w+") or {}).get("psnr_ood")
                over_w = None if w_plus is None or row.get("psnr_ood") is None else row["psnr_ood"] - w_plus
                removal, given = row.get("removal_psnr_ood"), row.get("input_vs_clean_psnr_ood")
                over_input = None if removal is None or given is None else removal - given
                yield name, method, label, curve_of(row), over_w, over_input


def summary_lines(reports: dict[str, dict], methods: tuple[str, ...] = CURVE_METHODS) -> list[str]:
    """One line per object, method and report: IoU and in-object PSNR at each curve point, then the last point's
    margins over W+ (in-object PSNR) and over the input (removal inside the object)."""
    lines = []
    for name, method, label, points, over_w, over_input in _rows(reports, methods):
        shown = " ".join(f"{p['iterations']}:{_num(p.get('iou'))}/{_num(p.get('psnr_ood'), 1)}" for p in points)
        lines.append(
            f"{name:14s} {method:12s} {label:14s} iou/psnr_ood at {shown}  "
            f"in-object - W+ {_num(over_w, 1)} dB  removal - input (in object) {_num(over_input, 1)} dB"
        )
    return lines


def markdown_table(reports: dict[str, dict], methods: tuple[str, ...] = CURVE_METHODS) -> list[str]:
    """The summary as a Markdown table (for docs/results.md)."""
    lines = ["| object | method | run | IoU along the stage | in-object PSNR (dB) | in-object - W+ (dB) | "
             "removal - input, in the object (dB) |", "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for name, method, label, points, over_w, over_input in _rows(reports, methods):
        ious = " / ".join(_num(p.get("iou")) for p in points)
        psnrs = " / ".join(_num(p.get("psnr_ood"), 1) for p in points)
        lines.append(f"| {name} | {method} | {label} | {ious} | {psnrs} | {_num(over_w, 1)} | {_num(over_input, 1)} |")
    return lines


def draw(reports: dict[str, dict], path: str | Path, methods: tuple[str, ...] = CURVE_METHODS) -> None:
    """IoU (top) and in-object PSNR (bottom) against the joint iterations, a column per object."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # matplotlib comes with mediapipe on CPU installs, not on every machine
        raise SystemExit(f"error: --figure needs matplotlib ({exc}); pip install matplotlib") from exc
    objects = sorted({name for report in reports.values() for name in report["objects"]})
    fig, axes = plt.subplots(2, len(objects), figsize=(3.2 * len(objects), 5.6), squeeze=False, sharex=True)
    styles = {"innout": "-", "innout-mask": "--"}
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for column, name in enumerate(objects):
        for index, (label, report) in enumerate(reports.items()):
            for method in methods:
                row = report["objects"].get(name, {}).get(method)
                if row is None or not row.get("curve"):
                    continue
                xs = [p["iterations"] for p in row["curve"]]
                style = dict(linestyle=styles.get(method, ":"), color=colours[index % len(colours)], marker="o")
                axes[0, column].plot(xs, [p.get("iou") or 0.0 for p in row["curve"]], label=f"{label} {method}",
                                     **style)  # fmt: skip
                axes[1, column].plot(xs, [p.get("psnr_ood") for p in row["curve"]], **style)
        axes[0, column].set_title(name)
        axes[0, column].set_ylim(0, 1)
        axes[1, column].set_xlabel("joint iterations")
    axes[0, 0].set_ylabel("IoU of the OOD opacity")
    axes[1, 0].set_ylabel("PSNR inside the object (dB)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, max(1, len(labels))), fontsize="small")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m innout.bench curves", description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", help="world benchmark JSON reports")
    parser.add_argument("--labels", help="comma-separated names of the reports (default: their file names)")
    parser.add_argument("--figure", help="write the curves as a PNG here")
    parser.add_argument("--methods", default=",".join(CURVE_METHODS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table instead of lines")
    args = parser.parse_args(argv)
    labels = args.labels.split(",") if args.labels else [Path(p).stem for p in args.reports]
    if len(labels) != len(args.reports):
        parser.error(f"{len(labels)} labels for {len(args.reports)} reports")
    try:
        reports = {label: read_report(path) for label, path in zip(labels, args.reports, strict=True)}
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    methods = tuple(m for m in args.methods.split(",") if m)
    print("\n".join(markdown_table(reports, methods) if args.markdown else summary_lines(reports, methods)))
    if args.figure:
        draw(reports, args.figure, methods)
    return 0
