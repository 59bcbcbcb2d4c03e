"""The CLIP labeller on a tiny stand-in model, checked against the Hugging Face implementation."""

from __future__ import annotations

import json

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
