"""The out-of-distribution (OOD) radiance field of In-N-Out (docs/method.md).

One tri-plane T_O [1, 3, 32, R, R] (N(0, 1) at start) shared by all frames, a code phi_t in R^32 per
frame, and the tri-plane MLP with the code as extra input and a blend weight b in (0, 1) as extra output
(``TriPlaneDecoder(32, code_dim=32, blend=True)``): how much of each point belongs to the OOD object
rather than to the face. Same box, plane axes and sampling as EG3D's tri-planes, so both fields can be
evaluated at the same points.

With ``motion`` (beyond the paper) each frame also has a translation d_t in R^3 (zero at start): frame t's field
at x is the shared field at x - d_t, so an object that moves against the head (a hand, a card) is one object in
the tri-plane rather than one copy per position that the codes must switch on and off.
"""

from __future__ import annotations

import torch
from torch import nn

from ..eg3d.renderer import TriPlaneDecoder, mean_plane_features
from ..render import FieldSamples


class OODField(nn.Module):
    def __init__(
        self,
        n_frames: int,
        *,
        resolution: int = 256,
        channels: int = 32,
        code_dim: int = 32,
        hidden: int = 64,
        box_warp: float = 1.0,
        motion: bool = False,
    ) -> None:
        super().__init__()
        self.resolution, self.channels, self.box_warp = resolution, channels, box_warp
        self.triplanes = nn.Parameter(torch.randn(1, 3, channels, resolution, resolution))
        self.codes = nn.Parameter(torch.randn(n_frames, code_dim))
        self.decoder = TriPlaneDecoder(channels, hidden, 32, code_dim=code_dim, blend=True)
        self.offsets = nn.Parameter(torch.zeros(n_frames, 3)) if motion else None

    @property
    def motion(self) -> bool:
        return self.offsets is not None

    @property
    def n_frames(self) -> int:
        return self.codes.shape[0]

    @property
    def code_dim(self) -> int:
        return self.codes.shape[1]

    def forward(
        self, points: torch.Tensor, frames: torch.Tensor, codes: torch.Tensor | None = None,
        offsets: torch.Tensor | None = None,
    ) -> FieldSamples:  # fmt: skip
        """points [N, M, 3], frame indices [N] (or explicit ``codes`` [N, code_dim] and ``offsets`` [N, 3]) ->
        samples for N*M points."""
        n, m, _ = points.shape
        shift = self.frame_offsets(frames) if offsets is None else offsets
        if shift is not None:
            points = points - shift.unsqueeze(1)
        features = mean_plane_features(self.triplanes, points.reshape(1, n * m, 3), self.box_warp)
        code = self.codes[frames] if codes is None else codes
        return self.decoder(features, code.unsqueeze(1).expand(n, m, -1).reshape(n * m, -1))

    def frame_offsets(self, frames: torch.Tensor) -> torch.Tensor | None:
        """The translations d_t [N, 3] of ``frames`` [N] (None without motion). Picked by a one-hot product:
        indexing with repeated frames back-propagates through scattered adds, whose order (and so the last bits)
        varies between runs on a CPU, and a resumed fit must equal a straight one."""
        if self.offsets is None:
            return None
        return torch.nn.functional.one_hot(frames, self.n_frames).to(self.offsets.dtype) @ self.offsets

    def field(self, frames: torch.Tensor, codes: torch.Tensor | None = None, offsets: torch.Tensor | None = None):
        """This field for ``frames`` [N] (or explicit per-frame ``codes`` [N, code_dim] and ``offsets`` [N, 3],
        e.g. smoothed or interpolated) as a function of points [N, M, 3], the form the marcher takes."""
        return lambda points: self(points, frames, codes, offsets)
