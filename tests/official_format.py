"""Write EG3D's official network-pickle format from one of our generators, for tests without ../shared.

The official file is ``pickle.dump(dict(G=..., D=..., G_ema=..., training_set_kwargs=...))`` where each
network is a ``torch_utils.persistence`` object reduced to ``_reconstruct_persistent_obj(meta)`` with
``meta = dict(type='class', version=6, module_src=<source>, class_name=..., state=<__dict__>)``
(facts A2). We register stand-in ``torch_utils``/``dnnlib`` modules only while pickling, so that
pickle records the same global names, and put code in ``module_src`` that would leave a trace if
anyone executed it.
"""

from __future__ import annotations

import contextlib
import io
import pickle
import sys
import types
from collections import OrderedDict

from torch import nn

from innout.eg3d import TriPlaneGenerator


class _Persistent:
    def __init__(self, meta: dict) -> None:
        self.meta = meta


@contextlib.contextmanager
def _official_modules():
    def _reconstruct_persistent_obj(meta):  # never called by a safe loader
        raise AssertionError("the reconstruct hook must not be called")

    persistence = types.ModuleType("torch_utils.persistence")
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    easydict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    util = types.ModuleType("dnnlib.util")
    util.EasyDict = easydict
    saved = {k: sys.modules.get(k) for k in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util")}
    sys.modules.update(
        {
            "torch_utils": types.ModuleType("torch_utils"),
            "torch_utils.persistence": persistence,
            "dnnlib": types.ModuleType("dnnlib"),
            "dnnlib.util": util,
        }
    )
    try:
        yield _reconstruct_persistent_obj, easydict
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value


def _module_meta(module: nn.Module, class_name: str, module_src: str, extra: dict | None = None) -> _Persistent:
    state = {
        "training": False,
        "_parameters": OrderedDict(module._parameters),
        "_buffers": OrderedDict(module._buffers),
        "_modules": OrderedDict(
            (name, _module_meta(child, type(child).__name__, module_src)) for name, child in module._modules.items()
        ),
    }
    state.update(extra or {})
    return _Persistent(dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state))


def official_pickle_bytes(G: TriPlaneGenerator, module_src: str = "# source omitted\n") -> bytes:
    """Bytes of an official-format network pickle holding ``G`` as G and G_ema."""
    cfg = G.config
    with _official_modules() as (reconstruct, easydict):
        init_kwargs = {
            "z_dim": cfg.z_dim,
            "c_dim": cfg.c_dim,
            "w_dim": cfg.w_dim,
            "img_resolution": cfg.img_resolution,
            "img_channels": cfg.img_channels,
            "sr_num_fp16_res": cfg.sr_num_fp16_res,
            "mapping_kwargs": easydict(num_layers=cfg.mapping_layers),
            "rendering_kwargs": cfg.official_rendering_kwargs(),
            "sr_kwargs": easydict(channel_base=cfg.channel_base, channel_max=cfg.channel_max),
            "channel_base": cfg.channel_base,
            "channel_max": cfg.channel_max,
            "num_fp16_res": cfg.num_fp16_res,
            "conv_clamp": cfg.conv_clamp,
        }
        extra = {
            "_init_args": (),
            "_init_kwargs": init_kwargs,
            "rendering_kwargs": init_kwargs["rendering_kwargs"],
            "neural_rendering_resolution": cfg.neural_rendering_resolution,
        }
        net = _module_meta(G, "TriPlaneGenerator", module_src, extra)

        class OfficialPickler(pickle.Pickler):
            def reducer_override(self, obj):
                if isinstance(obj, _Persistent):
                    return reconstruct, (obj.meta,)
                return NotImplemented

        buf = io.BytesIO()
        data = {"G": net, "D": None, "G_ema": net, "training_set_kwargs": easydict(resolution=cfg.img_resolution)}
        OfficialPickler(buf, protocol=4).dump(data)
    return buf.getvalue()
