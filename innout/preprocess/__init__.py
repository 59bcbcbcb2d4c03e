"""Preprocessing: raw face video or photo -> aligned EG3D crops, cameras and paste-back transforms."""

from .media import InputError, load_media
from .pasteback import face_mask, paste_back
from .pipeline import AlignedFace, NoFaceError, PreparedVideo, PrepareOptions, align_image, prepare

__all__ = [
    "AlignedFace",
    "InputError",
    "NoFaceError",
    "PrepareOptions",
    "PreparedVideo",
    "align_image",
    "face_mask",
    "load_media",
    "paste_back",
    "prepare",
]
