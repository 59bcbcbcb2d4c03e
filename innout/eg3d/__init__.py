"""EG3D (Chan et al., CVPR 2022) in pure PyTorch: the frozen 3D face prior of In-N-Out."""

from .building import CheckpointError, UnsafeCheckpointError
from .cameras import FFHQ_FOCAL, INO_FOCAL, frontal_label, orbit_label
from .checkpoint import load_generator
from .config import GeneratorConfig, RenderingConfig
from .generator import TriPlaneGenerator
from .weights_file import save_generator

__all__ = [
    "FFHQ_FOCAL",
    "INO_FOCAL",
    "CheckpointError",
    "GeneratorConfig",
    "RenderingConfig",
    "TriPlaneGenerator",
    "UnsafeCheckpointError",
    "frontal_label",
    "load_generator",
    "orbit_label",
    "save_generator",
]
