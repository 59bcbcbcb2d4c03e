"""The CLIP labeller on a tiny stand-in model, checked against the Hugging Face implementation."""

from __future__ import annotations

import hashlib
import http.server
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from innout.edit.clip import END, START, CLIPLabeler, CLIPTokenizer, CLIPWeightsError, byte_to_unicode, load_clip

MERGES = [("s", "m"), ("sm", "i"), ("l", "i"), ("n", "g</w>"), ("li", "ng</w>"), ("f", "a"), ("c", "e</w>"),
          ("fa", "ce</w>"), ("o", "f</w>"), ("p", "o"), ("r", "t"), ("a", "i"), ("po", "rt")]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A random CLIP with CLIP's vocabulary layout (bytes, bytes + </w>, merges, specials) and a few merges,
    saved by transformers in its own folder format."""
    transformers = pytest.importorskip("transformers", reason="the parity test needs transformers (dev requirement)")
    folder = tmp_path_factory.mktemp("clip")
    chars = list(byte_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in MERGES] + [START, END]
    vocab = {t: i for i, t in enumerate(tokens)}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in MERGES) + "\n")
    text = dict(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, bos_token_id=vocab[START], eos_token_id=vocab[END], pad_token_id=vocab[END],
    )  # fmt: skip
    vision = dict(hidden_size=48, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2, image_size=32,
                  patch_size=8)  # fmt: skip
    torch.manual_seed(0)
    model = transformers.CLIPModel(transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    with torch.no_grad():
        for p in model.parameters():  # random LayerNorm parameters and biases too, so every term matters
            p.add_(0.1 * torch.randn_like(p))
    model.eval().save_pretrained(folder, safe_serialization=True)
    return folder, model, vocab


def test_tokenizer_applies_the_merges_in_rank_order(tiny_clip):
    folder, _, vocab = tiny_clip
    tokenizer = CLIPTokenizer.from_folder(folder)
    ids = tokenizer("A  Smiling face!")
    names = {i: t for t, i in vocab.items()}
    assert [names[i] for i in ids] == [START, "a</w>", "smi", "ling</w>", "face</w>", "!</w>", END]
    transformers = pytest.importorskip("transformers")
    reference = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    for text in ["A portrait of a smiling face", "a face, 3 faces", "portrait's"]:
        assert tokenizer(text) == reference(text)["input_ids"], text


def test_embeddings_match_transformers(tiny_clip):
    folder, reference, _ = tiny_clip
    model, tokenizer, preprocess = load_clip(folder)
    ids = tokenizer("A portrait of a smiling face")
    with torch.no_grad():
        expected = reference.get_text_features(input_ids=torch.tensor([ids]))
        expected = getattr(expected, "pooler_output", expected)
    expected_text = torch.nn.functional.normalize(expected[0], dim=-1)
    torch.testing.assert_close(model.encode_text(ids, tokenizer.end), expected_text, rtol=1e-4, atol=1e-5)
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference.get_image_features(pixel_values=pixels)
        expected = getattr(expected, "pooler_output", expected)
    torch.testing.assert_close(model.encode_images(pixels), torch.nn.functional.normalize(expected, dim=-1),
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    assert preprocess["size"] == 32


def test_labeller_scores_images(tiny_clip, tmp_path):
    folder, _, _ = tiny_clip
    labeler = CLIPLabeler(folder, "smiling")
    assert labeler.prompt == "A portrait of a smiling face"
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (40, 60, 3), dtype=np.uint8) for _ in range(3)]
    scores = labeler(images)
    assert scores.shape == (3,) and np.isfinite(scores).all() and np.abs(scores).max() <= 1
    np.testing.assert_allclose(labeler(images[:1]), scores[:1], rtol=1e-5)
    assert len(set(np.round(scores, 6))) == 3
    with pytest.raises(CLIPWeightsError, match="missing"):
        load_clip(tmp_path)


# --- the labellers' CLIP from the Hub: a local server in the Hub's place ------------------------------
class _HubHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``/{repo}/resolve/{revision}/{file}`` from a folder, with the headers huggingface_hub reads."""

    folder: Path
    lfs_pointer: bool = False

    def _body(self) -> bytes | None:
        from innout.edit.clip_weights import CLIP_REPO, CLIP_REVISION

        prefix = f"/{CLIP_REPO}/resolve/{CLIP_REVISION}/"
        path = self.path.split("?")[0]
        if not path.startswith(prefix) or not (self.folder / path[len(prefix) :]).is_file():
            return None
        return (self.folder / path[len(prefix) :]).read_bytes()

    def _reply(self, body: bytes | None, send_body: bool) -> None:
        if body is None:
            self.send_error(404)
            return
        from innout.edit.clip_weights import CLIP_REVISION

        self.send_response(200)
        self.send_header("X-Repo-Commit", CLIP_REVISION)
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802 (http.server API)
        self._reply(self._body(), False)

    def do_GET(self):  # noqa: N802
        self._reply(self._body(), True)

    def log_message(self, *args):
        pass


@pytest.fixture
def hub(tiny_clip, tmp_path):
    folder = tmp_path / "hub"
    shutil.copytree(tiny_clip[0], folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    handler = type("Hub", (_HubHandler,), {"folder": folder})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_clip_is_fetched_once_checked_and_offline_says_how_to_supply_it(hub, tmp_path, monkeypatch):
    from innout.edit.clip_weights import CLIPUnavailableError, default_clip_dir, resolve_clip_weights
    from innout.weights import IntegrityError

    served, url = hub
    monkeypatch.setenv("INNOUT_PRETRAINED_DIR", str(tmp_path / "pretrained"))
    monkeypatch.delenv("INNOUT_CLIP_WEIGHTS", raising=False)
    with pytest.raises(CLIPUnavailableError, match=r"(?s)not downloaded yet.*--clip-weights FOLDER"):
        resolve_clip_weights(download=False)
    # offline (nothing listens there): the error says how to supply a folder, and nothing half-made is kept
    with pytest.raises(CLIPUnavailableError, match=r"(?s)Could not fetch the CLIP weights.*--clip-weights FOLDER"):
        resolve_clip_weights(endpoint="http://127.0.0.1:9", progress=False)
    assert not (default_clip_dir() / "model.safetensors").exists()
    # a file that is not the pinned one is deleted after the fetch
    with pytest.raises(IntegrityError, match="SHA-256"):
        resolve_clip_weights(endpoint=url, expected_sha256="0" * 64, progress=False)
    assert not (default_clip_dir() / "model.safetensors").exists()
    # the right one: fetched, checked, read as CLIP; then found on disk without the server
    sha = hashlib.sha256((served / "model.safetensors").read_bytes()).hexdigest()
    folder = resolve_clip_weights(endpoint=url, expected_sha256=sha, progress=False)
    assert folder == default_clip_dir() and (folder / "model.safetensors").read_bytes() == (
        served / "model.safetensors").read_bytes()  # fmt: skip
    assert resolve_clip_weights(download=False) == folder
    # a local folder always wins, by option or by environment
    assert resolve_clip_weights(served) == served
    monkeypatch.setenv("INNOUT_CLIP_WEIGHTS", str(served))
    assert resolve_clip_weights() == served
    with pytest.raises(CLIPUnavailableError, match="no such folder"):
        resolve_clip_weights(tmp_path / "missing")


def test_clip_contrast_labellers_score_the_difference_of_two_prompts(tiny_clip):
    from innout.edit.standard import CLIPContrastLabellers

    folder = tiny_clip[0]
    labels = CLIPContrastLabellers(folder, {"smiling": ("smiling", "face"), "plain": ("face", "smiling")})
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 255, (40, 40, 3), dtype=np.uint8) for _ in range(3)]
    scores = labels(images)
    assert scores.shape == (3, 2) and labels.names == ("smiling", "plain")
    np.testing.assert_allclose(scores[:, 0], -scores[:, 1], atol=1e-6)
    expected = CLIPLabeler(folder, "A portrait of smiling")(images) - CLIPLabeler(folder, "A portrait of face")(images)
    np.testing.assert_allclose(scores[:, 0], expected, rtol=1e-4, atol=1e-6)
