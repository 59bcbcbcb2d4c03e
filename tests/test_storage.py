"""Claims about innout.storage: verified files, content-addressed checkpoints, orphan cleaning and the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from innout import storage
from innout.errors import UserError


def _tensors() -> dict[str, torch.Tensor]:
    return {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}


def test_saved_tensors_read_back_exactly_with_their_metadata(tmp_path):
    path = storage.save_tensors(_tensors(), tmp_path / "r.safetensors", {"history": "[]"})
    tensors, meta = storage.load_tensors(path)
    assert set(tensors) == {"a", "b"} and torch.equal(tensors["a"], _tensors()["a"])
    assert meta["history"] == "[]" and meta[storage.DIGEST_KEY] == storage.tensors_digest(_tensors())
    assert not list(tmp_path.glob("*.tmp-*"))


def test_a_truncated_file_is_a_corrupt_entry(tmp_path):
    path = storage.save_tensors(_tensors(), tmp_path / "r.safetensors")
    data = path.read_bytes()
    for size in (0, 5, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:size])
        with pytest.raises(storage.CorruptEntryError):
            storage.load_tensors(path)


def test_a_garbled_file_of_the_same_size_is_a_corrupt_entry(tmp_path):
    path = storage.save_tensors(_tensors(), tmp_path / "r.safetensors")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # inside the tensor bytes: the header still parses
    path.write_bytes(bytes(data))
    with pytest.raises(storage.CorruptEntryError, match="does not match its hash"):
        storage.load_tensors(path)


def test_a_file_without_hash_or_with_non_finite_values_is_refused(tmp_path):
    from safetensors.torch import save_file

    save_file(_tensors(), str(tmp_path / "nohash.safetensors"))
    with pytest.raises(storage.CorruptEntryError, match="no content hash"):
        storage.load_tensors(tmp_path / "nohash.safetensors")
    assert storage.load_tensors(tmp_path / "nohash.safetensors", require_digest=False)[0]["b"].tolist() == [1, 2]
    storage.save_tensors({"x": torch.tensor([1.0, float("nan")])}, tmp_path / "nan.safetensors")
    with pytest.raises(storage.CorruptEntryError, match="NaN or infinite"):
        storage.load_tensors(tmp_path / "nan.safetensors")


def test_the_digest_covers_names_dtypes_shapes_and_bytes():
    base = storage.tensors_digest(_tensors())
    assert storage.tensors_digest({"a": _tensors()["a"], "c": _tensors()["b"]}) != base
    assert storage.tensors_digest({**_tensors(), "a": _tensors()["a"].double()}) != base
    assert storage.tensors_digest({**_tensors(), "a": _tensors()["a"].reshape(3, 2)}) != base
    assert storage.tensors_digest({**_tensors(), "a": _tensors()["a"] + 1}) != base
    assert storage.tensors_digest(dict(reversed(list(_tensors().items())))) == base


def test_checkpoints_carry_their_hash_in_their_name_and_a_damaged_one_is_skipped(tmp_path):
    first = storage.save_checkpoint({"step": 1}, tmp_path)
    time.sleep(0.01)
    second = storage.save_checkpoint({"step": 2}, tmp_path)
    assert not first.exists() and storage.latest_checkpoint(tmp_path) == second  # older ones are removed
    assert storage.load_checkpoint(second)["step"] == 2
    data = bytearray(second.read_bytes())
    data[len(data) // 2] ^= 0xFF
    second.write_bytes(bytes(data))
    assert storage.latest_checkpoint(tmp_path) is None and not second.exists()


def test_orphaned_temporaries_are_removed_and_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = dead.stdout.strip()
    orphan = tmp_path / f"entry.tmp-{pid}"
    orphan.mkdir()
    (orphan / "crops.npy").write_bytes(b"x" * 100)
    orphan_file = tmp_path / f"result.safetensors.tmp-{pid}"
    orphan_file.write_bytes(b"x")
    live = tmp_path / f"other.tmp-{os.getppid()}"  # a running process (this test's parent)
    live.mkdir()
    recent = tmp_path / f"recent.tmp-{pid}"  # a writer gone, but its file changed a moment ago
    recent.write_bytes(b"x")
    foreign = tmp_path / f"users-file.tmp-{pid}"  # not a name the caller writes
    foreign.write_bytes(b"x")
    long_ago = time.time() - 120
    for path in (orphan, orphan / "crops.npy", orphan_file, live, foreign):
        os.utime(path, (long_ago, long_ago))
    removed = storage.remove_orphans(tmp_path, r"entry|result\.safetensors|other|recent")
    assert sorted(removed) == sorted([orphan, orphan_file])
    assert live.exists() and recent.exists() and foreign.exists()
    (tmp_path / "x.tmp-99999999999999999999").write_bytes(b"x")  # not a pid: left alone, no error
    assert storage.remove_orphans(tmp_path, r"x") == []


def test_the_lock_makes_a_second_holder_wait_and_says_so(tmp_path):
    order: list[str] = []
    messages: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with storage.exclusive(tmp_path / ".lock", "the work"):
            inside.set()
            time.sleep(0.5)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(5)
    with storage.exclusive(tmp_path / ".lock", "the work", messages.append):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]
    assert len(messages) == 1 and "waiting for another process computing the work" in messages[0]


def test_write_failures_become_user_errors_naming_the_path(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(UserError, match="not writable"):
            storage.save_tensors(_tensors(), folder / "r.safetensors")
    finally:
        folder.chmod(0o700)


def test_a_full_disk_is_reported_as_such(tmp_path):
    with pytest.raises(storage.StorageError, match="disk is full"), storage.writing("a result", tmp_path / "x"):
        raise OSError(28, "No space left on device")
