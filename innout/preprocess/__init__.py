"""Preprocessing: raw face video or photo -> aligned EG3D crops, cameras and paste-back transforms."""

from .media import InputError, load_media, open_media
from .pasteback import face_mask, paste_back
from .pipeline import prepare
from .prepared import AlignedFace, NoFaceError, PreparedVideo, PrepareOptionError, PrepareOptions
from .tracking import align_image

__all__ = [
    "AlignedFace",
    "InputError",
    "NoFaceError",
    "PrepareOptionError",
    "PrepareOptions",
    "PreparedVideo",
    "align_image",
    "face_mask",
    "load_media",
    "open_media",
    "paste_back",
    "prepare",
]
