"""The app's charts (plotly): the per-frame camera trajectory, the fit's losses, OOD opacity over frames."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go


def camera_trajectory(cameras: np.ndarray, frame_indices: list[int] | None = None) -> go.Figure:
    """Camera centres of EG3D's 25-d labels around the head (world origin), coloured by frame, with
    each camera's viewing direction."""
    cameras = np.asarray(cameras, dtype=np.float64)
    c2w = cameras[:, :16].reshape(-1, 4, 4)
    centres, forward = c2w[:, :3, 3], c2w[:, :3, 2]  # OpenCV cam2world: +z looks forward
    frames = list(frame_indices) if frame_indices is not None else list(range(len(cameras)))
    fig = go.Figure()
    fig.add_trace(
        go.Scatter3d(
            x=centres[:, 0], y=centres[:, 2], z=centres[:, 1], mode="lines+markers", name="camera",
            marker={"size": 3, "color": frames, "colorscale": "Viridis",  # the colour bar on the left, the legend
                    "colorbar": {"title": "frame", "x": -0.02, "xanchor": "right", "len": 0.6}},  # on the right
            line={"color": "#888", "width": 2}, text=[f"frame {f}" for f in frames],
        )
    )  # fmt: skip
    tips = centres + 0.4 * forward
    xs, ys, zs = [], [], []
    for a, b in zip(centres[:: max(1, len(centres) // 20)], tips[:: max(1, len(centres) // 20)], strict=True):
        xs += [a[0], b[0], None]
        ys += [a[2], b[2], None]
        zs += [a[1], b[1], None]
    fig.add_trace(go.Scatter3d(x=xs, y=ys, z=zs, mode="lines", name="view direction", line={"color": "#e4572e"}))
    fig.add_trace(
        go.Scatter3d(x=[0], y=[0], z=[0], mode="markers", name="head", marker={"size": 8, "color": "#f4a261"})
    )
    fig.update_layout(
        scene={"xaxis_title": "x", "yaxis_title": "z (towards camera)", "zaxis_title": "y", "aspectmode": "data"},
        margin={"l": 0, "r": 0, "t": 30, "b": 0}, height=380,
        legend={"x": 1.0, "xanchor": "right", "y": 1.0, "bgcolor": "rgba(255,255,255,0.6)"},
        title="Camera per frame (EG3D world: orbit radius 2.7 around the head)",
    )  # fmt: skip
    return fig


def loss_chart(history: dict[str, list[dict[str, float]]]) -> go.Figure:
    """Each stage's total loss (or its first term) over its steps, stages one after another."""
    fig = go.Figure()
    offset = 0
    for stage, steps in history.items():
        if not steps:
            continue
        key = "loss" if "loss" in steps[0] else next(iter(steps[0]))
        ys = [s.get(key, np.nan) for s in steps]
        xs = list(range(offset, offset + len(ys)))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"{stage} ({key})"))
        offset += len(ys)
    fig.update_layout(
        title="Fit losses", xaxis_title="step (stages in order)", yaxis_title="loss", height=300,
        margin={"l": 40, "r": 10, "t": 40, "b": 40},
    )  # fmt: skip
    return fig


def ood_chart(series: np.ndarray, frame_indices: list[int]) -> go.Figure:
    """Mean OOD opacity per fitted frame, in percent, each bar labelled with its value; the axis fits the
    values (at least 0-5 %), so small shares stay readable."""
    values = 100 * np.asarray(series, dtype=float)
    top = max(5.0, float(values.max(initial=0)) * 1.25)
    fig = go.Figure(
        go.Bar(x=[str(f) for f in frame_indices], y=list(values), name="OOD opacity",
               text=[f"{v:.1f} %" for v in values], textposition="outside")  # fmt: skip
    )
    fig.update_layout(
        title="Share of each frame explained by the OOD field", xaxis_title="source frame", xaxis_type="category",
        yaxis_title="mean OOD opacity (%)", yaxis_range=[0, min(top, 100)], height=300,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
    )  # fmt: skip
    return fig


def blend_map(opacity: np.ndarray | None, size: int = 256) -> np.ndarray | None:
    """The OOD opacity as an RGB heat map (dark = face, yellow = OOD object), upsampled for display."""
    if opacity is None:
        return None
    a = np.clip(np.asarray(opacity, dtype=np.float32), 0, 1)
    repeat = max(1, size // a.shape[0])
    a = np.kron(a, np.ones((repeat, repeat), dtype=np.float32))
    colours = np.array([[20, 20, 60], [120, 40, 130], [230, 90, 60], [250, 230, 80]], dtype=np.float32)
    pos = a * (len(colours) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(colours) - 2)
    t = (pos - lo)[..., None]
    return ((1 - t) * colours[lo] + t * colours[lo + 1]).astype(np.uint8)


def blend_map_with_scale(opacity: np.ndarray | None, size: int = 512) -> np.ndarray | None:
    """``blend_map`` at the render's size with its colour scale under it: a 0-1 bar labelled face / OOD."""
    import cv2

    heat = blend_map(opacity, size)
    if heat is None:
        return None
    width = heat.shape[1]
    bar = blend_map(np.tile(np.linspace(0, 1, width, dtype=np.float32), (12, 1)), size=1)
    strip = np.full((44, width, 3), 255, np.uint8)
    strip[4:16] = bar
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.45
    for text, x in (("0: face", 2), ("0.5", width // 2 - 12), ("1: OOD object", width - 110)):
        cv2.putText(strip, text, (max(x, 0), 36), font, scale, (30, 30, 30), 1, cv2.LINE_AA)
    return np.concatenate([heat, strip], axis=0)


def thumbnail(path: str, size: int = 160) -> np.ndarray | None:
    """The first frame of a video or image, ``size`` pixels high (None when it cannot be read)."""
    import cv2

    from ..frames import FramesError, iter_frames

    try:
        frame = next(iter(iter_frames(path)))
    except (FramesError, OSError, StopIteration):
        return None
    h, w = frame.shape[:2]
    return cv2.resize(np.ascontiguousarray(frame), (max(1, round(w * size / h)), size), interpolation=cv2.INTER_AREA)


def crops_with_landmarks(prepared, count: int = 8, size: int = 192) -> list[tuple[np.ndarray, str]]:
    """Evenly spaced aligned crops, shrunk, with the face-mesh landmarks drawn: (image, caption)."""
    import cv2

    n = len(prepared.crops)
    picks = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))
    out = []
    for i in picks:
        crop = np.ascontiguousarray(prepared.crops[i])
        scale = size / crop.shape[0]
        image = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        for x, y in (np.asarray(prepared.landmarks[i])[::3] * scale if prepared.landmarks is not None else []):
            cv2.circle(image, (int(round(x)), int(round(y))), 1, (80, 255, 120), -1, lineType=cv2.LINE_AA)
        out.append((image, f"frame {prepared.frame_indices[i]} ({prepared.status[i]})"))
    return out
