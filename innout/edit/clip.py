"""CLIP in plain PyTorch, from user-supplied weights, as a labeller for learning edit directions.

No package here ships CLIP weights, and ``open_clip`` needs torchvision, so this reads a CLIP model in
Hugging Face's folder layout (``config.json``, ``model.safetensors``, ``vocab.json``, ``merges.txt``,
optionally ``preprocessor_config.json``; e.g. a download of ``openai/clip-vit-base-patch32``) into a
small implementation of the two transformers (pre-norm blocks, quick-GELU, causal text attention,
the text pooled at the end-of-text token) and CLIP's byte-level BPE tokenizer.

The labeller scores an image by the cosine similarity of its embedding with a prompt's. A prompt
without spaces is used as the "X" of the supplementary's template "A portrait of a X face".
"""

from __future__ import annotations

import html
import json
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

PROMPT_TEMPLATE = "A portrait of a {} face"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
START, END = "<|startoftext|>", "<|endoftext|>"
TOKEN_PATTERN = re.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+", re.IGNORECASE
)


class CLIPWeightsError(UserError, ValueError):
    """The CLIP folder is missing a file or holds something else; the message says what."""


@lru_cache(maxsize=1)
def byte_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte-level alphabet: printable bytes map to themselves, the rest to code points from 256."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


class CLIPTokenizer:
    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], context_length: int = 77) -> None:
        self.vocab, self.context_length = vocab, context_length
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.start, self.end = vocab[START], vocab[END]

    @classmethod
    def from_folder(cls, folder: Path, context_length: int = 77) -> CLIPTokenizer:
        vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
        lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
        merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
        return cls(vocab, [m for m in merges if len(m) == 2], context_length)

    def bpe(self, word: str) -> list[str]:
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            adjacent = zip(parts[:-1], parts[1:], strict=True)
            pairs = [(self.ranks.get(pair, float("inf")), i) for i, pair in enumerate(adjacent)]
            rank, _ = min(pairs)
            if rank == float("inf"):
                break
            first, second = next((parts[i], parts[i + 1]) for r, i in pairs if r == rank)
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def __call__(self, text: str) -> list[int]:
        text = " ".join(html.unescape(html.unescape(text)).split()).lower()
        ids = [self.start]
        table = byte_to_unicode()
        for token in TOKEN_PATTERN.findall(text):
            word = "".join(table[b] for b in token.encode("utf-8"))
            ids += [self.vocab[piece] for piece in self.bpe(word) if piece in self.vocab]
        return ids[: self.context_length - 1] + [self.end]


class EncoderLayer(nn.Module):
    """A pre-norm transformer block; submodule names follow Hugging Face's, so their keys load as they are."""

    def __init__(self, dim: int, heads: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        projections = ("q_proj", "k_proj", "v_proj", "out_proj")
        self.self_attn = nn.ModuleDict({name: nn.Linear(dim, dim) for name in projections})
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(dim, eps=eps), nn.LayerNorm(dim, eps=eps)
        self.mlp = nn.ModuleDict({"fc1": nn.Linear(dim, hidden), "fc2": nn.Linear(hidden, dim)})

    def forward(self, x: torch.Tensor, causal: bool) -> torch.Tensor:
        n, t, d = x.shape
        h = self.layer_norm1(x)
        attn = self.self_attn

        def heads(name: str) -> torch.Tensor:
            return attn[name](h).reshape(n, t, self.heads, d // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(heads("q_proj"), heads("k_proj"), heads("v_proj"), is_causal=causal)
        x = x + attn["out_proj"](out.transpose(1, 2).reshape(n, t, d))
        h = self.mlp["fc1"](self.layer_norm2(x))
        return x + self.mlp["fc2"](h * torch.sigmoid(1.702 * h))  # quick GELU


class Transformer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, layers: int, eps: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, hidden, eps) for _ in range(layers))

    def forward(self, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, causal)
        return x


def _count_layers(state: dict[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"encoder\.layers\.(\d+)\.")
    return 1 + max((int(m.group(1)) for k in state if (m := pattern.match(k))), default=-1)


class CLIP(nn.Module):
    """Image and text encoders of a CLIP checkpoint in Hugging Face's layout."""

    def __init__(self, config: dict, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        text_cfg, vision_cfg = config.get("text_config") or {}, config.get("vision_config") or {}
        t_dim = state["text_model.embeddings.token_embedding.weight"].shape[1]
        v_dim, _, patch, _ = state["vision_model.embeddings.patch_embedding.weight"].shape
        self.patch = patch
        self.image_size = int(vision_cfg.get("image_size") or patch * round(
            (state["vision_model.embeddings.position_embedding.weight"].shape[0] - 1) ** 0.5))  # fmt: skip

        def block(prefix: str, cfg: dict, dim: int) -> Transformer:
            return Transformer(
                dim,
                int(cfg.get("num_attention_heads") or dim // 64),
                state[f"{prefix}encoder.layers.0.mlp.fc1.weight"].shape[0],
                _count_layers(state, prefix),
                float(cfg.get("layer_norm_eps", 1e-5)),
            )

        self.text = block("text_model.", text_cfg, t_dim)
        self.vision = block("vision_model.", vision_cfg, v_dim)
        self.load_hf_state(state)

    def load_hf_state(self, state: dict[str, torch.Tensor]) -> None:
        def get(key: str) -> torch.Tensor:
            if key not in state:
                raise CLIPWeightsError(f"the CLIP weights lack {key}")
            return state[key].float()

        for prefix, encoder in (("text_model.encoder.", self.text), ("vision_model.encoder.", self.vision)):
            encoder.load_state_dict({k: get(prefix + k) for k in encoder.state_dict()})
        self.token_embedding = get("text_model.embeddings.token_embedding.weight")
        self.text_positions = get("text_model.embeddings.position_embedding.weight")
        self.final_norm = (get("text_model.final_layer_norm.weight"), get("text_model.final_layer_norm.bias"))
        self.text_projection = get("text_projection.weight")
        self.class_embedding = get("vision_model.embeddings.class_embedding")
        self.patch_embedding = get("vision_model.embeddings.patch_embedding.weight")
        self.image_positions = get("vision_model.embeddings.position_embedding.weight")
        self.pre_norm = (get("vision_model.pre_layrnorm.weight"), get("vision_model.pre_layrnorm.bias"))
        self.post_norm = (get("vision_model.post_layernorm.weight"), get("vision_model.post_layernorm.bias"))
        self.visual_projection = get("visual_projection.weight")
        self.eps_text = self.text.layers[0].layer_norm1.eps
        self.eps_vision = self.vision.layers[0].layer_norm1.eps

    @torch.no_grad()
    def encode_text(self, ids: list[int], end_id: int) -> torch.Tensor:
        """Unit text embedding [D] of one token sequence."""
        tokens = torch.tensor(ids)
        x = self.token_embedding[tokens] + self.text_positions[: len(ids)]
        x = self.text(x[None], causal=True)[0]
        x = F.layer_norm(x, x.shape[-1:], *self.final_norm, eps=self.eps_text)
        pooled = x[ids.index(end_id)]
        return F.normalize(pooled @ self.text_projection.T, dim=-1)

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unit image embeddings [N, D] of normalised pixels [N, 3, S, S]."""
        x = F.conv2d(pixels, self.patch_embedding, stride=self.patch).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_embedding.expand(len(x), 1, -1), x], dim=1) + self.image_positions
        x = F.layer_norm(x, x.shape[-1:], *self.pre_norm, eps=self.eps_vision)
        x = self.vision(x)[:, 0]
        x = F.layer_norm(x, x.shape[-1:], *self.post_norm, eps=self.eps_vision)
        return F.normalize(x @ self.visual_projection.T, dim=-1)


def load_clip(folder: str | os.PathLike) -> tuple[CLIP, CLIPTokenizer, dict]:
    """(model, tokenizer, preprocessing settings) from a Hugging Face CLIP folder."""
    from safetensors.torch import load_file

    folder = Path(folder)
    needed = ["config.json", "model.safetensors", "vocab.json", "merges.txt"]
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise CLIPWeightsError(
            f"{folder} is not a CLIP folder in Hugging Face's layout: missing {', '.join(missing)} "
            "(e.g. download openai/clip-vit-base-patch32, safetensors weights)"
        )
    config = json.loads((folder / "config.json").read_text())
    model = CLIP(config, load_file(str(folder / "model.safetensors"))).eval()
    context = int((config.get("text_config") or {}).get("max_position_embeddings", model.text_positions.shape[0]))
    preprocess = {"mean": CLIP_MEAN, "std": CLIP_STD, "size": model.image_size}
    if (folder / "preprocessor_config.json").is_file():
        pre = json.loads((folder / "preprocessor_config.json").read_text())
        preprocess.update(mean=tuple(pre.get("image_mean", CLIP_MEAN)), std=tuple(pre.get("image_std", CLIP_STD)))
    return model, CLIPTokenizer.from_folder(folder, context), preprocess


def clip_pixels(images: list[np.ndarray], size: int, mean, std) -> torch.Tensor:
    """CLIP's preprocessing: shorter side to ``size`` (bicubic), centre crop, normalise."""
    import cv2

    out = []
    for image in images:
        h, w = image.shape[:2]
        scale = size / min(h, w)
        resized = cv2.resize(image, (max(size, round(w * scale)), max(size, round(h * scale))),
                             interpolation=cv2.INTER_CUBIC)  # fmt: skip
        top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
        out.append(resized[top : top + size, left : left + size])
    x = torch.from_numpy(np.stack(out)).float().permute(0, 3, 1, 2) / 255
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


class CLIPLabeler:
    """Score = cosine similarity between each image and the prompt (higher = more like the prompt)."""

    def __init__(self, weights: str | os.PathLike, prompt: str) -> None:
        if not prompt.strip():
            raise ValueError("the CLIP labeller needs a prompt: clip:smiling or 'clip:A portrait of a smiling face'")
        self.prompt = prompt if " " in prompt.strip() else PROMPT_TEMPLATE.format(prompt.strip())
        self.name = f"clip:{self.prompt}"
        self.model, self.tokenizer, self.preprocess = load_clip(weights)
        self.text = self.model.encode_text(self.tokenizer(self.prompt), self.tokenizer.end)

    def __call__(self, images) -> np.ndarray:
        pixels = clip_pixels(list(images), self.preprocess["size"], self.preprocess["mean"], self.preprocess["std"])
        return (self.model.encode_images(pixels) @ self.text).double().numpy()
