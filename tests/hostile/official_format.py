"""Write EG3D's official network-pickle format from one of our generators: for the tests without ../shared and
for the hostile pickles of the robustness cases (files.py), which start from these and break them.

The official file is ``pickle.dump(dict(G=..., D=..., G_ema=..., training_set_kwargs=...))`` where each
network is a ``torch_utils.persistence`` object reduced to ``_reconstruct_persistent_obj(meta)`` with
``meta = dict(type='class', version=6, module_src=<source>, class_name=..., state=<__dict__>)``
(facts A2). We register stand-in ``torch_utils``/``dnnlib`` modules only while pickling, so that
pickle records the same global names, and put code in ``module_src`` that would leave a trace if
anyone executed it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import pickle
import sys
import types
from collections import OrderedDict
from collections.abc import Callable

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


PERSISTENT_GLOBAL = b"ctorch_utils.persistence\n_reconstruct_persistent_obj\n"  # as a protocol-2/3 GLOBAL opcode


def persistent_meta(
    module: nn.Module,
    class_name: str,
    module_src: str = "",
    extra: dict | None = None,
    tensor: Callable | None = None,
) -> _Persistent:
    """The persistent object of ``module`` and its children; ``tensor`` maps each weight to what is pickled (a
    hostile case swaps one weight for a storage bomb)."""
    tensor = tensor or (lambda t: t)
    state = {
        "training": False,
        "_parameters": OrderedDict((n, tensor(p)) for n, p in module._parameters.items() if p is not None),
        "_buffers": OrderedDict((n, tensor(b)) for n, b in module._buffers.items() if b is not None),
        "_modules": OrderedDict(
            (name, persistent_meta(child, type(child).__name__, module_src, tensor=tensor))
            for name, child in module._modules.items()
        ),
        **(extra or {}),
    }
    return _Persistent(dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state))


def _dump(data: dict, protocol: int, reconstruct: Callable) -> bytes:
    class OfficialPickler(pickle.Pickler):
        def reducer_override(self, obj):
            return (reconstruct, (obj.meta,)) if isinstance(obj, _Persistent) else NotImplemented

    buf = io.BytesIO()
    OfficialPickler(buf, protocol=protocol).dump(data)
    return buf.getvalue()


def network_pickle(data: dict, protocol: int = 3) -> bytes:
    """``data`` pickled as NVIDIA's network pickles are: each ``_Persistent`` becomes
    ``torch_utils.persistence._reconstruct_persistent_obj(meta)``."""
    with _official_modules() as (reconstruct, _):
        return _dump(data, protocol, reconstruct)


def official_pickle_bytes(G: TriPlaneGenerator, module_src: str = "# source omitted\n") -> bytes:
    """Bytes of an official-format network pickle holding ``G`` as G and G_ema, with EG3D's init kwargs in
    ``dnnlib.util.EasyDict``s, as a training run writes them."""
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
        net = persistent_meta(G, "TriPlaneGenerator", module_src, extra)
        data = {"G": net, "D": None, "G_ema": net, "training_set_kwargs": easydict(resolution=cfg.img_resolution)}
        return _dump(data, 4, reconstruct)


def generator_pickle(G: TriPlaneGenerator, tensor: Callable | None = None) -> bytes:
    """An official-format network pickle of ``G`` (as G_ema alone), with EG3D's init kwargs as plain dicts."""
    cfg = G.config
    rendering = {**dataclasses.asdict(cfg.rendering), "superresolution_module": f"x.{cfg.superresolution_module}"}
    names = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "channel_base", "channel_max")
    kwargs = {name: getattr(cfg, name) for name in (*names, "num_fp16_res", "conv_clamp", "sr_num_fp16_res")}
    extra = {
        "_init_kwargs": {**kwargs, "rendering_kwargs": rendering},
        "neural_rendering_resolution": cfg.neural_rendering_resolution,
    }
    return network_pickle({"G_ema": persistent_meta(G, "TriPlaneGenerator", extra=extra, tensor=tensor), "D": None})
