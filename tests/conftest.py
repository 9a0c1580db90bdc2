"""Shared fixtures: the real TAEF2 weights and paintings from ../shared, models loaded once per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAINTINGS = SHARED / "data" / "paintings"

# Tests read the real weights from ../shared/models unless the caller points elsewhere (CI sets the same value).
os.environ.setdefault("STYLECLOAK_MODELS", str(SHARED / "models"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Converted LPIPS weights go to a per-session cache, never the developer's home."""
    if "STYLECLOAK_CACHE" not in os.environ:
        os.environ["STYLECLOAK_CACHE"] = str(tmp_path_factory.mktemp("cache"))


def painting_path(name: str) -> Path:
    path = PAINTINGS / name
    if not path.is_file():
        pytest.skip(f"shared painting {name} not found at {path}")
    return path


def load_painting(name: str, long_side: int) -> np.ndarray:
    """A shared painting as float RGB in [0, 1], resized so that its long side is ``long_side``."""
    with Image.open(painting_path(name)) as im:
        im = im.convert("RGB")
        scale = long_side / max(im.size)
        im = im.resize((max(8, round(im.width * scale)), max(8, round(im.height * scale))), Image.LANCZOS)
        return np.asarray(im, dtype=np.float32) / 255.0


@pytest.fixture(scope="session")
def encoder():
    from stylecloak.models.encoders import load_encoder

    return load_encoder("taef2")


@pytest.fixture(scope="session")
def lpips_alex():
    from stylecloak.models.lpips import load_lpips

    return load_lpips("alex")


@pytest.fixture()
def small_painting_file(tmp_path: Path) -> Path:
    """A 192 px copy of a shared painting on disk (cloaking it takes seconds, not minutes)."""
    path = tmp_path / "wave.png"
    Image.fromarray((load_painting("hokusai_great_wave.png", 192) * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random CLIP with 16-wide towers and a character-level tokenizer, saved like a downloaded model."""
    import torch

    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny-clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in "abcdefghijklmnopqrstuvwxyz-":
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = transformers.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)
    tokenizer.save_pretrained(folder)
    towers = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, projection_dim=8)
    config = transformers.CLIPConfig(
        text_config=dict(
            towers, vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1
        ),
        vision_config=dict(towers, image_size=32, patch_size=8),
        projection_dim=8,
    )
    torch.manual_seed(0)
    transformers.CLIPModel(config).save_pretrained(folder)
    return folder
