"""Claims about reading pickles and torch files: nothing allocated from a declared size the file does not
hold, no compressed record inflated, no crafted numpy state handed to numpy."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
import torch

from innout.bench.processes import peak_rss_mb
from innout.errors import UserError
from innout.safe_pickle import (
    FileLimitError,
    UnsafePickleError,
    check_torch_archive,
    describe,
    load_numpy_pickle,
    load_torch_file,
)
from tests.hostile.files import BOMB_BYTES, MEMORY_BOUND_MB, numpy_pickle, zip_bomb_pt


def test_numpy_pickles_round_trip_plain_arrays(tmp_path):
    data = {
        "kernel": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "bias": [np.ones(3, dtype=">f8"), np.array(True), np.asfortranarray(np.eye(3, dtype=np.int16))],
    }
    for protocol in (3, 4):
        path = tmp_path / f"weights{protocol}.ckpt"
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        back, plain = load_numpy_pickle(path), pickle.loads(path.read_bytes())  # what numpy itself makes
        np.testing.assert_array_equal(back["kernel"], data["kernel"])
        for got, expected, numpy_own in zip(back["bias"], data["bias"], plain["bias"], strict=True):
            np.testing.assert_array_equal(got, expected)
            assert got.dtype == numpy_own.dtype


@pytest.mark.parametrize(
    ("state", "error", "message"),
    [
        ((1, (400_000_000,), np.dtype("f8"), False, bytes(8)), FileLimitError, "declares 3200000000 bytes but holds 8"),
        ((1, (400_000_000,), np.dtype("O"), False, [None]), UnsafePickleError, "only plain number types"),
        ((1, (2, -1), np.dtype("f4"), False, bytes(8)), UnsafePickleError, "shape"),
        ((1, (2,), np.dtype("f4")), UnsafePickleError, "malformed state"),
    ],
)
def test_crafted_array_states_are_refused_before_numpy_sees_them(tmp_path, state, error, message):
    path = numpy_pickle(tmp_path, state)
    with pytest.raises(error, match=message) as info:
        load_numpy_pickle(path)
    assert isinstance(info.value, UserError) and str(path) in str(info.value)


def test_array_placeholder_with_elements_is_refused(tmp_path):
    class Placeholder:
        def __reduce__(self):
            return np.core.multiarray._reconstruct, (np.ndarray, (400_000_000,), b"O")

    path = tmp_path / "bomb.ckpt"
    path.write_bytes(pickle.dumps(Placeholder(), protocol=3))
    with pytest.raises(FileLimitError, match=r"numpy writes \(0,\)"):
        load_numpy_pickle(path)


def test_numpy_pickle_size_bomb_stays_within_memory(tmp_path):
    path = numpy_pickle(tmp_path, (1, (400_000_000,), np.dtype("O"), False, [None]))  # numpy itself crashes here
    code = f"""
from innout.safe_pickle import load_numpy_pickle, UnsafePickleError
try:
    load_numpy_pickle({str(path)!r})
except UnsafePickleError as exc:
    print("refused", exc)
"""
    peak, last = peak_rss_mb(code)
    assert last.startswith("refused") and peak < MEMORY_BOUND_MB


def test_torch_zip_with_a_compressed_record_is_refused_from_its_directory(tmp_path):
    bomb = zip_bomb_pt()
    assert len(bomb) < BOMB_BYTES // 500  # 2 MB declaring 2 GB
    with pytest.raises(FileLimitError, match="is compressed"):
        check_torch_archive(bomb, "the bomb")
    path = tmp_path / "bomb.pt"
    path.write_bytes(bomb)
    with pytest.raises(FileLimitError, match="is compressed"):
        load_torch_file(path, "the bomb", max_bytes=1 << 30)
    with pytest.raises(FileLimitError, match="more than such a file can be"):
        load_torch_file(path, "the bomb", max_bytes=1000)


def test_torch_zip_records_larger_than_the_archive_are_refused():
    buf = io.BytesIO()
    torch.save({"w": torch.zeros(4)}, buf)
    with zipfile.ZipFile(buf) as archive:
        names = [i.filename for i in archive.infolist()]
    data = bytearray(buf.getvalue())
    # the central directory's size fields of the storage record: declare 1 GB
    entry = data.rfind(b"PK\x01\x02", 0, data.rfind(names[-1].encode()))
    assert entry > 0
    check_torch_archive(bytes(data), "the file")  # unchanged: fine
    data[entry + 20 : entry + 28] = (1 << 30).to_bytes(4, "little") * 2
    with pytest.raises(FileLimitError, match="declare"):
        check_torch_archive(bytes(data), "the file")


def test_plain_torch_files_load(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"w": torch.arange(5.0)}, path)
    assert torch.equal(load_torch_file(path, "state", max_bytes=1 << 20)["w"], torch.arange(5.0))


def test_describe_never_fails():
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    assert describe(10**5000) == "a number of about 5000 digits"
    assert describe(nested).startswith("[[")
    assert "..." in describe("x" * 1000) and len(describe("x" * 1000)) < 50
