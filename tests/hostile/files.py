"""Robustness cases: hostile or broken files given to the project's loaders (see tests/hostile/cases.py).

Generator pickles and converted weights, direction files, StyleCLIP mappers and scene files: size bombs (a
few MB that declare gigabytes), nesting bombs, truncated and garbled copies, absurd or missing settings,
NaN weights, a pickle in a read-only folder. Each must be refused with a message naming the file and the
problem, or recovered from (a damaged converted copy is made again), never end in a traceback, never
exhaust memory (the size bombs run in a fresh process whose peak memory is bounded by
``MEMORY_BOUND_MB``) and never be used silently. The files are made at run time from a "micro" generator
of a few thousand weights (``micro_config``), so every case takes a second or two.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import pickle
import shutil
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from innout.bench.processes import peak_rss_mb
from innout.errors import UserError

from .cases import Case, CaseFailed, CaseSkipped, run_cli
from .official_format import PERSISTENT_GLOBAL, generator_pickle

MEMORY_BOUND_MB = 1000  # importing torch and the project alone takes 300-400 MB
BOMB_BYTES = 2 << 30  # what the size bombs declare: 2 GB


class FileRefusedError(UserError):
    """The loader, run in a fresh process, refused the file with this message."""


# --- a micro generator and its files -----------------------------------------------------------------------
def micro_config():
    """EG3D's architecture at its smallest that an official pickle can describe (the pickle does not name
    the tri-planes' size: 256 x 256 x 32 as EG3D's): four channels, 8x8 renders, 32x32 images."""
    from innout.eg3d import GeneratorConfig, RenderingConfig

    return GeneratorConfig(
        z_dim=4, w_dim=8, img_resolution=32, channel_base=1024, channel_max=4, mapping_layers=1, sr_num_fp16_res=0,
        superresolution_module="SuperresolutionBilinear", neural_rendering_resolution=8,
        rendering=RenderingConfig(depth_resolution=4, depth_resolution_importance=4),
    )  # fmt: skip


def micro_generator(seed: int = 0):
    import torch

    from innout.eg3d import TriPlaneGenerator

    torch.manual_seed(seed)
    return TriPlaneGenerator(micro_config()).eval().requires_grad_(False)


def deep_module_pickle(depth: int) -> bytes:
    """A generator pickle whose module tree is ``depth`` persistent objects nested in one another, written
    opcode by opcode (pickling such a chain would itself overflow the stack)."""

    def text(s: str) -> bytes:
        data = s.encode()
        return b"X" + struct.pack("<I", len(data)) + data

    head = b"}(" + text("type") + text("class") + text("version") + b"K\x06" + text("class_name")
    head += text("TriPlaneGenerator") + text("module_src") + text("") + b"u"
    opening = PERSISTENT_GLOBAL + head + text("state") + b"}" + text("_modules") + b"}" + text("child")
    leaf = PERSISTENT_GLOBAL + head + text("state") + b"}s\x85R"
    closing = b"sss\x85R"
    return b"\x80\x02}" + text("G_ema") + opening * depth + leaf + closing * depth + b"s."


def _zip(records: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip archive of (name, data as stored, method, declared size) records, written by hand so that a
    record may declare what its data inflates to (CRCs are left zero: the size is the attack)."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, data, method, size in records:
        offset = out.tell()
        encoded = name.encode()
        fields = (20, 0, method, 0, 0x21, 0, len(data), size, len(encoded))
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + encoded + data)
        central.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, 0, offset) + encoded)
    start, directory = out.tell(), central.getvalue()
    out.write(
        directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(records), len(records), len(directory), start, 0)
    )
    return out.getvalue()


def _deflated_zeros(size: int) -> bytes:
    """A raw deflate stream of ``size`` zero bytes (about a thousandth of that), made from one compressed
    block repeated: after a full flush the compressor starts afresh, so equal input gives equal output."""
    block = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return first + repeat * (size // block - 1) + compressor.flush()


def zip_bomb_pt(inflated: int = BOMB_BYTES, obj=None) -> bytes:
    """A torch ``.pt`` (zip format) of ``obj`` whose first storage record is ``inflated`` deflated zeros."""
    import torch

    buf = io.BytesIO()
    torch.save(obj if obj is not None else {"w": torch.zeros(4)}, buf)
    records = []
    with zipfile.ZipFile(buf) as archive:
        for info in archive.infolist():
            data = archive.read(info)
            if info.filename.endswith("/data/0"):
                records.append((info.filename, _deflated_zeros(inflated), zipfile.ZIP_DEFLATED, inflated))
            else:
                records.append((info.filename, data, zipfile.ZIP_STORED, len(data)))
    return _zip(records)


class _Blob:
    """Pickles as ``torch.storage._load_from_bytes(data)``, the way a tensor's storage is embedded."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __reduce__(self):
        import torch

        return torch.storage._load_from_bytes, (self.data,)


def legacy_storage_bomb(nbytes: int = BOMB_BYTES) -> bytes:
    """A legacy storage blob (what pickling a tensor embeds) declaring ``nbytes`` and holding 16."""
    import torch

    buf = io.BytesIO()
    torch.save(torch.zeros(4).untyped_storage(), buf, _use_new_zipfile_serialization=False)
    declared = b"\x8a\x08" + nbytes.to_bytes(8, "little", signed=True)  # LONG1: the record's size
    blob = buf.getvalue().replace(b"K\x10N", declared + b"N")
    return blob.replace(struct.pack("<q", 16), struct.pack("<q", nbytes))


class _TensorOn:
    """Pickles as ``torch._utils._rebuild_tensor_v2(storage, 0, shape, stride)`` (what pickling a tensor
    writes), with the storage given as a legacy blob of our making."""

    def __init__(self, blob: bytes, shape: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.blob, self.shape, self.stride = blob, shape, stride

    def __reduce__(self):
        import collections

        import torch

        return torch._utils._rebuild_tensor_v2, (_Blob(self.blob), 0, self.shape, self.stride, False,
                                                 collections.OrderedDict())  # fmt: skip


def declaring_storage(tensor, declared: int) -> _TensorOn:
    """``tensor`` pickled on a legacy storage blob that holds its numbers but declares ``declared`` elements
    (in the storage record and in the count before the bytes): the tensor fits the storage it declares and
    the bytes it holds, so only the check of the declared size against the blob can refuse it."""
    import warnings

    t = tensor.detach().contiguous()
    with warnings.catch_warnings():  # TypedStorage is deprecated, yet what pickling a tensor still writes
        warnings.simplefilter("ignore")
        storage = t.__reduce_ex__(2)[1][0]
        blob = storage.__reduce__()[1][0]
    count = pickle.dumps(t.numel(), protocol=2)[2:-1]  # the record's element count: after PROTO, before STOP
    if blob.count(count + b"N") != 1:
        raise CaseFailed("could not find the storage record's element count in the blob")
    declared_count = b"\x8a\x08" + declared.to_bytes(8, "little", signed=True)  # LONG1
    blob = blob.replace(count + b"N", declared_count + b"N")
    data = t.numel() * t.element_size()
    blob = blob[: len(blob) - data - 8] + struct.pack("<q", declared) + blob[len(blob) - data :]
    return _TensorOn(blob, tuple(t.shape), tuple(t.stride()))


def micro_scene(folder: Path, name: str = "scene.safetensors", n_frames: int = 2, ood_resolution: int = 4) -> Path:
    """A valid scene of the micro generator with a small OOD field (about 60 KB)."""
    import torch

    from innout.eg3d.cameras import frontal_label
    from innout.scene import OODField, SceneData, SceneSource, save_scene

    G = micro_generator()
    torch.manual_seed(1)
    ws = G.mapping(torch.randn(n_frames, G.z_dim), frontal_label().expand(n_frames, -1))
    ood = OODField(n_frames, resolution=ood_resolution, code_dim=4).requires_grad_(False)
    data = SceneData(G, ws, frontal_label().expand(n_frames, -1).clone(), ood, SceneSource.synthetic(n_frames))
    return save_scene(data, folder / name)


def rewrite_safetensors(path: Path, out: Path, *, tensors=None, metadata=None, drop=(), drop_meta=()) -> Path:
    """A copy of a safetensors file with tensors / metadata entries replaced, added or dropped (no hash:
    the file as another tool, or an older version, would have written it)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from innout.storage import DIGEST_KEY

    with safe_open(str(path), framework="pt") as f:
        data = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (a safetensors handle)
        meta = dict(f.metadata() or {})
    data.update(tensors or {})
    meta.update(metadata or {})
    for key in drop:
        data.pop(key)
    for key in (*drop_meta, DIGEST_KEY):
        meta.pop(key, None)
    save_file({k: v.contiguous() for k, v in data.items()}, str(out), metadata=meta)
    return out


def truncated(path: Path, out: Path) -> Path:
    data = path.read_bytes()
    out.write_bytes(data[: len(data) * 2 // 3])
    return out


def garbled(path: Path, out: Path) -> Path:
    """The same size, with 64 bytes in the middle of the tensor data replaced by 0xFF (NaN as float32)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    out.write_bytes(bytes(data))
    return out


# --- read-only folders -------------------------------------------------------------------------------------
def _writable(folder: Path) -> bool:
    probe = folder / ".innout-probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


@contextlib.contextmanager
def read_only(*folders: Path) -> Iterator[bool]:
    """Make ``folders`` read-only while inside (permissions; for root, which they do not stop, the immutable
    attribute); yields whether that worked here. Restored on the way out."""
    done: list[tuple[Path, str]] = []
    try:
        for folder in folders:
            folder.chmod(0o555)
            done.append((folder, "chmod"))
            if _writable(folder) and shutil.which("chattr"):
                subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
                done.append((folder, "chattr"))
        yield all(not _writable(folder) for folder in folders)
    finally:
        for folder, how in reversed(done):
            if how == "chattr":
                subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)
            else:
                folder.chmod(0o755)


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def captured_warnings(logger: str) -> Iterator[list[str]]:
    """The warnings logged by ``logger`` while inside."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                records.append(record.getMessage())

    handler, target = Collect(), logging.getLogger(logger)
    target.addHandler(handler)
    try:
        yield records
    finally:
        target.removeHandler(handler)


# --- running a loader in a fresh process with a memory bound ---------------------------------------------
_OUTCOME = "__outcome__"
_PRELUDE = f"""
import contextlib, io, json, sys
from innout.errors import UserError
def report(status, message):
    print("{_OUTCOME}", json.dumps([status, message]), file=sys.stderr)
"""


def cli_code(argv: list) -> str:
    """Python code that runs the command line and reports its exit status and last message."""
    return (
        _PRELUDE
        + f"""
from innout.cli import main
err = io.StringIO()
with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
    try:
        status = main({[str(a) for a in argv]!r})
    except SystemExit as exc:
        status = exc.code
lines = [line for line in err.getvalue().splitlines() if line.strip()]
report(status, lines[-1] if lines else "")
"""
    )


def loader_code(statement: str) -> str:
    """Python code that runs ``statement`` (a loader call) and reports a refusal (2) or success (0)."""
    return (
        _PRELUDE
        + f"""
try:
    {statement}
    report(0, "loaded")
except UserError as exc:
    report(2, str(exc))
"""
    )


def in_fresh_process(code: str, bound_mb: float = MEMORY_BOUND_MB) -> str:
    """Run ``code`` (``cli_code`` / ``loader_code``) in a fresh process: a refusal raises ``FileRefusedError``,
    a crash or a peak memory over ``bound_mb`` fails the case."""
    peak, last = peak_rss_mb(code, timeout=120)
    if not last.startswith(_OUTCOME):
        raise CaseFailed(f"the process crashed (peak {peak:.0f} MB): {last}")
    status, message = json.loads(last[len(_OUTCOME) :])
    if peak > bound_mb:
        raise CaseFailed(f"peak memory {peak:.0f} MB is over {bound_mb} MB (status {status}: {message})")
    if status == 2:
        raise FileRefusedError(f"{message} [peak memory {peak:.0f} MB]")
    if status != 0:
        raise CaseFailed(f"exit status {status}: {message}")
    return f"{message} [peak memory {peak:.0f} MB]"


# --- the cases ---------------------------------------------------------------------------------------------
def isolated(run: Callable[[Path], str]) -> Callable[[Path], str]:
    """Run a case with ``pretrained/`` and the cache inside its folder, so it neither reads nor leaves files
    elsewhere."""

    def wrapped(folder: Path) -> str:
        with environment(INNOUT_PRETRAINED_DIR=str(folder / "pretrained"), INNOUT_CACHE_DIR=str(folder / "cache")):
            return run(folder)

    return wrapped


# --- generator pickles ---------------------------------------------------------------------------------------
def pickle_size_bomb() -> bytes:
    """2 MB whose tensor storage is a torch zip record inflating to 2 GB. Network pickles embed storages in
    torch's legacy format, so such a storage is refused as a zip archive before anything inflates; the zip
    bomb's own bound (``check_torch_archive``) is exercised by the mapper bomb, a real torch ``.pt``."""
    return pickle.dumps({"G_ema": _Blob(zip_bomb_pt())}, protocol=4)


def pickle_declared_storage_bomb() -> bytes:
    """The micro generator's pickle, one of whose weights lies on a storage declaring 2 GB (512 M float32)
    while its blob holds only that weight's numbers: the weight fits what the storage declares and what it
    holds, so the declared-size check of ``read_legacy_storage`` alone stands between it and a 2 GB read
    (without that check the file would load)."""
    G = micro_generator()
    target = G.decoder.net[0].weight
    return generator_pickle(G, tensor=lambda t: declaring_storage(t, BOMB_BYTES // 4) if t is target else t)


def pickle_stride_bomb() -> bytes:
    """A generator of 2048 channels (2 GB of weights) whose every weight is a zero-stride view of one
    number: 50 KB of pickle, which only copying the weights (as converting does) would blow up."""
    import torch

    from innout.eg3d import TriPlaneGenerator

    config = dataclasses.replace(micro_config(), channel_base=1 << 20, channel_max=2048)
    with torch.device("meta"):
        G = TriPlaneGenerator(config)
    return generator_pickle(G, tensor=lambda t: torch.zeros(()).expand(t.shape))


def pickle_with_config(**changes) -> Callable[[], bytes]:
    """The micro generator's pickle with init kwargs that say something else."""

    def make() -> bytes:
        G = micro_generator()
        object.__setattr__(G, "config", dataclasses.replace(G.config, **changes))
        return generator_pickle(G)

    return make


def convert_pickle(data: Callable[[], bytes], fresh_process: bool = False) -> Callable[[Path], str]:
    """``python -m innout convert`` of a pickle made by ``data``."""

    def run(folder: Path) -> str:
        pkl = folder / "network.pkl"
        pkl.write_bytes(data())
        argv = ["convert", pkl, "-o", folder / "out.safetensors"]
        return in_fresh_process(cli_code(argv)) if fresh_process else run_cli(argv)

    return run


def numpy_pickle(folder: Path, state: tuple) -> Path:
    """A numpy pickle (as LPIPS weights are) of one array whose state is ``state``."""
    import numpy as np

    class Array:
        def __reduce__(self):
            return np.core.multiarray._reconstruct, (np.ndarray, (0,), b"b"), state

    path = folder / "weights.ckpt"
    path.write_bytes(pickle.dumps({"Conv_0": Array()}, protocol=3))
    return path


def numpy_pickle_case(state: Callable[[], tuple]) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        path = numpy_pickle(folder, state())
        return in_fresh_process(
            loader_code(f"from innout.safe_pickle import load_numpy_pickle; load_numpy_pickle({str(path)!r})")
        )

    return run


def _object_array_state() -> tuple:
    import numpy as np

    return (1, (400_000_000,), np.dtype("O"), False, [None])  # numpy itself crashes on this one


def _short_array_state() -> tuple:
    import numpy as np

    return (1, (400_000_000,), np.dtype("f8"), False, bytes(8))


def app_start(data: Callable[[], bytes]) -> Callable[[Path], str]:
    """The app starting with this generator pickle: it must start and show the problem."""

    def run(folder: Path) -> str:
        from innout.app.runtime import load_runtime

        pkl = folder / "network.pkl"
        pkl.write_bytes(data())
        runtime = load_runtime(checkpoint=str(pkl), download=False, directions=[])
        if runtime.problem:
            raise FileRefusedError(f"the app started and shows: {runtime.problem}")
        return "the app loaded it"

    return run


# --- converted copies and the project's own generator files ------------------------------------------------
def _converted_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.innout.safetensors") if p.is_file())


def _same_weights(G) -> None:
    import torch

    expected = micro_generator().state_dict()
    if any(not torch.equal(G.state_dict()[k], v) for k, v in expected.items()):
        raise CaseFailed("the generator loaded has other weights than the pickle's")


def read_only_pickle(*, nothing_writable: bool) -> Callable[[Path], str]:
    """A pickle in a read-only folder loads; its converted copy goes to ``pretrained/converted`` (or, when
    no folder is writable either, nowhere, with a warning) and is reused."""

    def run(folder: Path) -> str:
        from innout.eg3d.checkpoint import load_generator

        models, pretrained, cache = folder / "models", folder / "pretrained", folder / "cache"
        for f in (models, pretrained, cache):
            f.mkdir()
        (models / "network.pkl").write_bytes(generator_pickle(micro_generator()))
        locked = (models, pretrained, cache) if nothing_writable else (models,)
        with read_only(*locked) as done, captured_warnings("innout.eg3d.checkpoint") as warnings:
            if not done:
                raise CaseSkipped("a folder cannot be made read-only here (root without chattr?)")
            for _ in range(2):
                _same_weights(load_generator(models / "network.pkl"))
        converted = _converted_files(folder)
        if nothing_writable:
            if converted or len(warnings) != 2 or "could not keep" not in warnings[0]:
                raise CaseFailed(f"expected two warnings and no converted copy, got {warnings} / {converted}")
            return f"loaded twice from the pickle; warned: {warnings[0][:150]}"
        if warnings or [p.parent for p in converted] != [pretrained / "converted"]:
            raise CaseFailed(f"expected one converted copy in pretrained/converted, got {converted} ({warnings})")
        return f"loaded; converted copy kept in {converted[0].relative_to(folder)} and reused"

    return isolated(run)


def damaged_converted(damage: Callable[[Path, Path], Path]) -> Callable[[Path], str]:
    """A converted copy damaged after it was made: reported once, made again from the pickle."""

    def run(folder: Path) -> str:
        from innout.eg3d.checkpoint import load_generator
        from innout.eg3d.weights_file import load_safetensors_generator

        pkl = folder / "network.pkl"
        pkl.write_bytes(generator_pickle(micro_generator()))
        load_generator(pkl)
        (converted,) = _converted_files(folder)
        damage(converted, converted)
        with captured_warnings("innout.storage") as warnings:
            _same_weights(load_generator(pkl))
        if len(warnings) != 1:
            raise CaseFailed(f"expected the damage to be reported once, got {warnings}")
        _same_weights(load_safetensors_generator(converted, require_digest=True))
        return f"recovered: {warnings[0][:160]}"

    return isolated(run)


def generator_file(make: Callable[[Path], Path]) -> Callable[[Path], str]:
    """``python -m innout sample`` with a ``.safetensors`` generator made by ``make(folder)``."""

    def run(folder: Path) -> str:
        return run_cli(["sample", "--checkpoint", make(folder), "-o", folder / "sample.png", "--device", "cpu"])

    return isolated(run)


def saved_generator(folder: Path) -> Path:
    from innout.eg3d.weights_file import save_generator

    return save_generator(micro_generator(), folder / "generator.safetensors")


def generator_variant(**rewrite) -> Callable[[Path], Path]:
    """The micro generator's file rewritten (``rewrite_safetensors``; callables are called first), without a
    content hash."""

    def make(folder: Path) -> Path:
        values = {k: v() if callable(v) else v for k, v in rewrite.items()}
        return rewrite_safetensors(saved_generator(folder), folder / "variant.safetensors", **values)

    return make


def _config_text(**changes) -> str:
    data = micro_config().to_dict()
    data.update(changes)
    return json.dumps(data)


def _config_without(key: str) -> str:
    data = micro_config().to_dict()
    data.pop(key)
    return json.dumps(data)


def _nan_weight() -> dict:
    weight = micro_generator().state_dict()["decoder.net.0.weight"].clone()
    weight[0, 0] = float("nan")
    return {"decoder.net.0.weight": weight}


def _damaged(damage: Callable[[Path, Path], Path]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        return damage(saved_generator(folder), folder / "damaged.safetensors")

    return make


# --- directions and mappers --------------------------------------------------------------------------------
def direction_file(folder: Path, name: str = "smile", changes: dict | None = None) -> Path:
    """A valid direction file, or one with ``changes``: metadata values (JSON text), ``normal``, ``drop``."""
    import torch

    from innout.edit.directions import Direction, save_direction

    torch.manual_seed(0)
    path = save_direction(Direction(name, torch.randn(512), scale=2.0), folder / f"{name}.safetensors")
    if not changes:
        return path
    changes = {k: v() if callable(v) else v for k, v in changes.items()}
    normal, drop = changes.pop("normal", None), changes.pop("drop", ())
    return rewrite_safetensors(
        path, folder / f"{name}-changed.safetensors", tensors={"normal": normal} if normal is not None else None,
        metadata=changes, drop_meta=drop,
    )  # fmt: skip


def show_direction(changes: dict) -> Callable[[Path], str]:
    """``directions show`` of a direction file with ``changes`` (``direction_file``)."""

    def run(folder: Path) -> str:
        return run_cli(["directions", "show", direction_file(folder, changes=changes)])

    return run


def _filled(n: int, value: float):
    import torch

    return torch.full((n,), value)


def show_boundary(write: Callable[[Path], None]) -> Callable[[Path], str]:
    """``directions show`` of an InterfaceGAN ``.npy`` written by ``write``."""

    def run(folder: Path) -> str:
        path = folder / "boundary.npy"
        write(path)
        return run_cli(["directions", "show", path])

    return run


def _npy_zip(path: Path) -> None:
    import numpy as np

    with open(path, "wb") as f:
        np.savez(f, a=np.zeros(512, np.float32))


def _npy_huge_header(path: Path) -> None:
    """A valid header declaring 4e9 float32 (16 GB), then 2 KB of data."""
    import numpy as np

    header = {"descr": "<f4", "fortran_order": False, "shape": (4_000_000_000,)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(bytes(2048))


def folder_with_one_bad_direction(folder: Path) -> str:
    """``directions show`` of a folder holding two good directions and a damaged one: the good ones are
    listed and the bad one named."""
    import contextlib as ctx

    from innout.cli import main

    directions = folder / "directions"
    directions.mkdir()
    for name in ("smile", "age"):
        direction_file(directions, name)
    (directions / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    out, err = io.StringIO(), io.StringIO()
    with ctx.redirect_stdout(out), ctx.redirect_stderr(err):
        status = main(["directions", "show", str(directions)])
    listed = {line.split(":")[0] for line in out.getvalue().splitlines()}
    if status != 0 or listed != {"smile", "age"} or "broken.safetensors" not in err.getvalue():
        raise CaseFailed(f"status {status}, listed {listed}, noted {err.getvalue()[:200]!r}")
    return f"listed smile and age; {err.getvalue().strip()[:160]}"


def mapper_checkpoint(weight: Callable | None = None) -> dict:
    """An official StyleCLIP checkpoint layout with every weight made by ``weight(shape)``."""
    import torch

    make = weight or (lambda shape: torch.randn(shape) * 0.01)
    state = {}
    for level in ("course_mapping", "medium_mapping", "fine_mapping"):
        for i in range(1, 5):
            state[f"mapper.{level}.mapping.{i}.weight"] = make((512, 512))
            state[f"mapper.{level}.mapping.{i}.bias"] = make((512,))
    return {"state_dict": state, "opts": {}}


def load_mapper_file(make: Callable[[Path], Path], fresh_process: bool = False) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        path = make(folder)
        if fresh_process:
            return in_fresh_process(
                loader_code(f"from innout.edit.mapper import load_mapper; load_mapper({str(path)!r})")
            )
        from innout.edit.mapper import load_mapper

        load_mapper(path)
        return "loaded"

    return run


def _mapper_bomb(folder: Path) -> Path:
    import torch

    path = folder / "mapper.pt"
    path.write_bytes(zip_bomb_pt(obj={"state_dict": {"w": torch.zeros(4)}}))
    return path


def _mapper_saved(weight: Callable) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        import torch

        path = folder / "mapper.pt"
        torch.save(mapper_checkpoint(weight), path)
        return path

    return make


def _nan_filled(shape):
    import torch

    return torch.full(shape, float("nan"))


def _wrong_shape(shape):
    import torch

    return torch.zeros(shape[0], 3) if len(shape) == 2 else torch.zeros(shape)


def render_with_mapper(make: Callable[[Path], Path]) -> Callable[[Path], str]:
    """``python -m innout render --mapper`` with a mapper made by ``make``, on a valid micro scene."""

    def run(folder: Path) -> str:
        scene = micro_scene(folder)
        argv = ["render", scene, "--mapper", make(folder), "-o", folder / "out.png", "--quality", "preview"]
        return run_cli([*argv, "--device", "cpu"])

    return isolated(run)


# --- scenes ------------------------------------------------------------------------------------------------
def render_scene(make: Callable[[Path], Path], fresh_process: bool = False) -> Callable[[Path], str]:
    """``python -m innout render`` of a scene made by ``make(folder)`` to a preview PNG."""

    def run(folder: Path) -> str:
        out = folder / "out.png"
        argv = ["render", make(folder), "-o", out, "--quality", "preview", "--device", "cpu"]
        result = in_fresh_process(cli_code(argv)) if fresh_process else run_cli(argv)
        if not out.is_file():
            raise CaseFailed(f"exit 0 without writing {out.name}")
        return result

    return isolated(run)


def scene_variant(version: str | None = None, **rewrite) -> Callable[[Path], Path]:
    """The micro scene rewritten (``rewrite_safetensors``; callables are called first; ``version`` sets
    innout_scene_version)."""

    def make(folder: Path) -> Path:
        values = {k: v() if callable(v) else v for k, v in rewrite.items()}
        values["metadata"] = {**values.get("metadata", {}), **({"innout_scene_version": version} if version else {})}
        return rewrite_safetensors(micro_scene(folder), folder / "variant.safetensors", **values)

    return make


def _scene_damaged(damage: Callable[[Path, Path], Path]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        return damage(micro_scene(folder), folder / "damaged.safetensors")

    return make


def _nan_latents() -> dict:
    import torch

    ws = torch.zeros(2, 14, 8)
    ws[1, 3, 5] = float("nan")
    return {"ws": ws}


def _ws_of_width(width: int) -> Callable[[], dict]:
    def make() -> dict:
        import torch

        return {"ws": torch.zeros(2, 14, width)}

    return make


def mesh_resolution(resolution: int) -> Callable[[Path], str]:
    def run(folder: Path) -> str:
        out = folder / "mesh.glb"
        argv = ["mesh", micro_scene(folder), "-o", out, "--resolution", resolution, "--level", "0.5"]
        return run_cli([*argv, "--device", "cpu"])

    return isolated(run)


NOT_USABLE = r"the generator configuration is not usable: "  # check_config's refusal


def refused(name: str, run: Callable[[Path], str], match: str) -> Case:
    """``match``: a regular expression of the refusal's message that names the check the case is about."""
    return Case(f"files/{name}", "refused", run, match=match)


CASES: list[Case] = [
    # generator pickles
    refused("pickle-storage-is-a-zip-bomb", convert_pickle(pickle_size_bomb, fresh_process=True),
            r"a tensor storage in the checkpoint is a zip archive; network pickles embed torch's legacy format"),
    refused("pickle-declared-storage-bomb", convert_pickle(pickle_declared_storage_bomb, fresh_process=True),
            r"a tensor storage in the checkpoint declares 536870912 elements \(2147483648 bytes\) but holds \d+ bytes"),
    refused("pickle-stride-bomb", convert_pickle(pickle_stride_bomb, fresh_process=True),
            r"a tensor of shape \[\d+(, \d+)*\] does not fit in its storage of 1 elements"),
    refused("pickle-deep-nesting", convert_pickle(lambda: deep_module_pickle(3000)),
            r"network\.pkl: the module tree is nested more than \d+ levels deep"),
    refused("pickle-deep-nesting-at-app-start", app_start(lambda: deep_module_pickle(3000)),
            r"the app started and shows: .*the module tree is nested more than \d+ levels deep"),
    refused("pickle-absurd-config", convert_pickle(pickle_with_config(channel_max=1 << 40)),
            NOT_USABLE + r"channel_max = \d+ must be between \d+ and \d+"),
    refused("pickle-config-number-of-5000-digits", convert_pickle(pickle_with_config(z_dim=10**5000)),
            NOT_USABLE + r"z_dim = a number of about \d+ digits must be between"),
    refused("pickle-config-wrong-type", convert_pickle(pickle_with_config(c_dim=[25])),
            r"the generator's settings are not usable \(.*'list'"),
    refused("numpy-pickle-size-bomb", numpy_pickle_case(_short_array_state),
            r"an array of shape \(400000000,\) declares 3200000000 bytes but holds 8"),
    refused("numpy-pickle-object-array", numpy_pickle_case(_object_array_state),
            r"refusing the dtype '\|?O\d*': only plain number types are read"),
    Case("files/pickle-in-read-only-folder", "ok", read_only_pickle(nothing_writable=False)),
    Case("files/pickle-with-no-writable-folder", "ok", read_only_pickle(nothing_writable=True)),
    # converted copies and the project's own generator files
    Case("files/converted-generator-truncated", "recovered", damaged_converted(truncated)),
    Case("files/converted-generator-garbled", "recovered", damaged_converted(garbled)),
    refused("generator-truncated", generator_file(_damaged(truncated)),
            r"damaged\.safetensors: not a readable safetensors file"),
    refused("generator-garbled", generator_file(_damaged(garbled)),
            r"damaged\.safetensors: the content does not match its hash"),
    refused("generator-without-config", generator_file(generator_variant(drop_meta=("config",))),
            r"the file has no generator configuration \(metadata 'config'\)"),
    refused("generator-config-not-json", generator_file(generator_variant(metadata={"config": '{"z_dim": 4,'})),
            r"the generator configuration is not valid JSON"),
    refused("generator-config-missing-key",
            generator_file(generator_variant(metadata={"config": _config_without("w_dim")})),
            r"the generator configuration lacks \['w_dim'\]"),
    refused("generator-config-wrong-type",
            generator_file(generator_variant(metadata={"config": _config_text(w_dim="8")})),
            NOT_USABLE + r"w_dim = '8' must be a whole number"),
    refused("generator-config-absurd-size",
            generator_file(generator_variant(metadata={"config": _config_text(triplane_resolution=1 << 20)})),
            NOT_USABLE + r"triplane_resolution = \d+ must be between \d+ and \d+"),
    refused("generator-nan-weight-without-hash", generator_file(generator_variant(tensors=_nan_weight)),
            r"variant\.safetensors: \d+ tensors hold NaN or infinite values \(decoder\.net\.0\.weight\)"),
    Case("files/generator-without-hash", "ok", generator_file(generator_variant())),
    # directions
    refused("direction-layer-out-of-range", show_direction({"layers": "[100]"}),
            r"layers must be null \(all\) or distinct ws indices 0-\d+, got \[100\]"),
    refused("direction-without-name", show_direction({"drop": ("name",)}), r"the direction file lacks name"),
    refused("direction-empty-name", show_direction({"name": ""}), r"direction name '' is missing or empty"),
    refused("direction-of-7-numbers", show_direction({"normal": lambda: _filled(7, 1.0)}),
            r"the normal has shape \[7\]; a direction in W has 512 numbers"),
    refused("direction-nan-normal", show_direction({"normal": lambda: _filled(512, float("nan"))}),
            r"direction 'smile' has a zero or non-finite normal"),
    refused("direction-range-not-json", show_direction({"range": "[-3,"}), r"the direction's range is not valid JSON"),
    refused("direction-infinite-scale", show_direction({"scale": "1e999"}),
            r"direction 'smile': scale must be a finite number, got inf"),
    refused("boundary-npy-is-a-zip", show_boundary(_npy_zip), r"an archive of several arrays, not one boundary array"),
    refused("boundary-npy-empty", show_boundary(lambda p: p.write_bytes(b"")),
            r"boundary\.npy: not a plain numpy array file \(No data left in file\)"),
    refused("boundary-npy-header-claims-4e9-floats", show_boundary(_npy_huge_header),
            r"boundary\.npy: not a plain numpy array file \(mmap length is greater than file size\)"),
    Case("files/directions-folder-with-one-bad-file", "ok", folder_with_one_bad_direction),
    # StyleCLIP mappers
    refused("mapper-size-bomb", load_mapper_file(_mapper_bomb, fresh_process=True),
            r"the record 'archive/data/0' is compressed \(\d+ bytes inflating to 2147483648\)"),
    refused("mapper-nan-weights", render_with_mapper(_mapper_saved(_nan_filled)),
            r"mapper\.pt: mapper\.course_mapping\.mapping\.1\.weight holds NaN or infinite values"),
    refused("mapper-wrong-shapes", load_mapper_file(_mapper_saved(_wrong_shape)),
            r"mapper\.course_mapping\.mapping\.1\.weight has shape \[512, 3\], expected \[512, 512\]"),
    # scenes
    Case("files/scene-micro-valid", "ok", render_scene(micro_scene)),
    refused("scene-ood-size-bomb",
            render_scene(scene_variant(metadata={"ood": json.dumps({"resolution": 60000, "code_dim": 4})}),
                         fresh_process=True),
            r"the OOD field's resolution 60000 / code size 4 must be whole numbers from 1 to \d+"),
    refused("scene-ood-metadata-mismatch",
            render_scene(scene_variant(metadata={"ood": json.dumps({"resolution": 1024, "code_dim": 4})})),
            r"the OOD field's tensors do not match its metadata \(resolution 1024, code size 4\)"),
    refused("scene-without-generator-config", render_scene(scene_variant(drop_meta=("generator_config",))),
            r"the scene lacks its 'generator_config' metadata"),
    refused("scene-without-ood-metadata", render_scene(scene_variant(drop_meta=("ood",))),
            r"the scene lacks its 'ood' metadata"),
    refused("scene-v1-without-frame-indices", render_scene(scene_variant("1")),
            r"the version 1 scene lacks its frame_indices tensor"),
    refused("scene-nan-latents", render_scene(scene_variant(tensors=_nan_latents)),
            r"variant\.safetensors: \d+ tensors hold NaN or infinite values \(ws\)"),
    refused("scene-latents-of-wrong-width", render_scene(scene_variant(tensors=_ws_of_width(9))),
            r"the tensor ws has shape \[2, 14, 9\], expected \[2, 14, 8\]"),
    refused("scene-absurd-generator-config",
            render_scene(scene_variant(metadata={"generator_config": _config_text(img_resolution=1 << 30)})),
            NOT_USABLE + r"img_resolution = \d+ must be between \d+ and \d+ \(in the scene's generator_config\)"),
    refused("scene-truncated", render_scene(_scene_damaged(truncated)),
            r"damaged\.safetensors is not a readable safetensors scene file"),
    refused("scene-garbled", render_scene(_scene_damaged(garbled)),
            r"damaged\.safetensors: the content does not match its hash"),
    # meshes
    refused("mesh-resolution-4000", mesh_resolution(4000),
            r"argument --resolution: must be an integer >= 8 and <= 512, got '4000'"),
    refused("mesh-resolution-1", mesh_resolution(1),
            r"argument --resolution: must be an integer >= 8 and <= 512, got '1'"),
]  # fmt: skip
