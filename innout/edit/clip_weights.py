"""The CLIP weights of the zero-shot labellers (age, glasses, ...): found locally or fetched from the Hub.

On first need, ``openai/clip-vit-base-patch32`` is fetched from the Hugging Face Hub with
``huggingface_hub`` (installed with Gradio) at a pinned commit, with a progress bar, into
``pretrained/clip/clip-vit-base-patch32/`` (the Hugging Face folder layout ``innout.edit.clip`` reads).
The weights are checked by size and SHA-256 against pinned values, then read as a CLIP model, before
they are used; a failed check deletes them. A local folder can always be given instead
(``--clip-weights FOLDER`` or ``INNOUT_CLIP_WEIGHTS``), and without a network the error says how.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UserError
from ..places import pretrained_dir
from ..storage import sha256_file
from ..weights import IntegrityError

CLIP_REPO = "openai/clip-vit-base-patch32"
CLIP_REVISION = "c7244be81152024ce0e99ac8d2e373a8953d9f9a"
CLIP_FILES = ("config.json", "vocab.json", "merges.txt", "preprocessor_config.json", "model.safetensors")
# model.safetensors at that commit: 605,157,884 bytes; the small files are checked by reading the model
CLIP_WEIGHTS_SHA256 = "99d28a652e6ec46629ab7047a0ac82c69b1fe11e0ce672c43af65d3a9a3fc05d"
CLIP_WEIGHTS_SIZE = 605_157_884
ENV_VAR = "INNOUT_CLIP_WEIGHTS"


class CLIPUnavailableError(UserError, RuntimeError):
    """No CLIP weights on disk and none could be fetched; the message says how to supply a folder."""


def default_clip_dir() -> Path:
    return pretrained_dir() / "clip" / CLIP_REPO.split("/")[1]


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in CLIP_FILES)


def _how_to_supply(reason: str) -> str:
    return (
        f"Could not fetch the CLIP weights ({reason}).\n"
        f"Download the files {', '.join(CLIP_FILES)} of https://huggingface.co/{CLIP_REPO} (revision "
        f"{CLIP_REVISION[:12]}) into one folder, then pass --clip-weights FOLDER or set {ENV_VAR}=FOLDER "
        f"(or put them in {default_clip_dir()})."
    )


def resolve_clip_weights(
    explicit: str | os.PathLike | None = None,
    *,
    download: bool = True,
    endpoint: str | None = None,
    expected_sha256: str | None = CLIP_WEIGHTS_SHA256,
    progress: bool = True,
) -> Path:
    """The CLIP folder: ``explicit``, then ``INNOUT_CLIP_WEIGHTS``, then pretrained/clip/..., then a fetch
    from the Hub (``endpoint``: another Hub, e.g. a mirror or a test server)."""
    from .clip import load_clip

    for given, what in ((explicit, "--clip-weights"), (os.environ.get(ENV_VAR), ENV_VAR)):
        if given:
            folder = Path(given).expanduser()
            if not folder.is_dir():
                raise CLIPUnavailableError(f"{what} {folder}: no such folder")
            return folder
    folder = default_clip_dir()
    if _complete(folder):
        return folder
    if not download:
        raise CLIPUnavailableError(_how_to_supply("not downloaded yet"))
    _fetch(folder, endpoint=endpoint, progress=progress)
    weights = folder / "model.safetensors"
    try:
        if expected_sha256 is not None:
            actual = sha256_file(weights)
            if actual != expected_sha256:
                raise IntegrityError(f"model.safetensors: SHA-256 {actual} is not the pinned {expected_sha256}")
        load_clip(folder)
    except Exception as exc:
        weights.unlink(missing_ok=True)  # fetched again next time
        if isinstance(exc, IntegrityError):
            raise IntegrityError(f"the fetched CLIP weights failed their check and were deleted: {exc}") from exc
        raise IntegrityError(f"the fetched CLIP weights cannot be read as CLIP and were deleted ({exc})") from exc
    return folder


def _reachable(endpoint: str | None, timeout: float = 10.0) -> None:
    """Fail at once when the Hub cannot be reached (huggingface_hub would retry for about 25 s first)."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise CLIPUnavailableError(_how_to_supply("HF_HUB_OFFLINE is set"))
    url = urlparse(endpoint or constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise CLIPUnavailableError(_how_to_supply(f"no connection to {url.hostname}: {exc}")) from exc


def _fetch(folder: Path, *, endpoint: str | None, progress: bool) -> None:
    """Every file of the pinned revision into ``folder`` (``huggingface_hub`` resumes a cut download)."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars
    except ImportError as exc:
        raise CLIPUnavailableError(_how_to_supply("the huggingface_hub package is not installed")) from exc
    _reachable(endpoint)
    folder.mkdir(parents=True, exist_ok=True)
    if not progress:
        disable_progress_bars()
    try:
        for name in CLIP_FILES:
            if not (folder / name).is_file():
                hf_hub_download(CLIP_REPO, name, revision=CLIP_REVISION, local_dir=folder, endpoint=endpoint)
    except Exception as exc:  # noqa: BLE001 - offline, HTTP errors, a missing revision: all mean "supply it"
        raise CLIPUnavailableError(_how_to_supply(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")) from exc
    finally:
        if not progress:
            enable_progress_bars()
