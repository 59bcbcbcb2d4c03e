"""From a fitted scene to files: videos pasted back into the footage, novel-view videos, meshes."""

from .mesh import MeshError, extract_mesh, write_glb, write_ply
from .paths import CAMERA_PATHS, camera_path
from .video import EXPORT_DEFAULTS, export_camera_path, export_video

__all__ = [
    "CAMERA_PATHS",
    "EXPORT_DEFAULTS",
    "MeshError",
    "camera_path",
    "export_camera_path",
    "export_video",
    "extract_mesh",
    "write_glb",
    "write_ply",
]
