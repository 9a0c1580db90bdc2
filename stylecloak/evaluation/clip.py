"""A CLIP zero-shot style classifier (for users who have CLIP weights; docs/full-models.md).

Each label becomes a prompt ("a painting in the style of ukiyo-e"); an image's probabilities are the softmax of
CLIP's scaled cosine similarities between its embedding and the prompts'. Nothing is trained, so ``fit`` only
checks its input. The same object is a :class:`~stylecloak.descriptors.StyleDescriptor` (``describe`` gives the
unit-length image embedding), so CLIP can also serve target choice.

transformers is imported only when a model is loaded, and only from a local folder or the local Hugging Face
cache (no download is attempted when ``HF_HUB_OFFLINE=1``). Images are preprocessed in torch, as CLIP's image
processor does (shortest side to the model's size, bicubic; centre crop; CLIP's mean and std), so that no
PIL round trip quantises them and gradients could flow through later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import first_line
from .classifier import check_images, check_training_set

DEFAULT_PROMPT = "a painting in the style of {}"
# OpenAI CLIP's normalisation, used when the model folder has no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class CLIPUnavailableError(RuntimeError):
    """transformers is missing or the model cannot be loaded. The message is one line."""


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise CLIPUnavailableError(
            "the CLIP classifier needs the transformers package: pip install transformers"
        ) from None
    return transformers


def _embedding(output: Any) -> torch.Tensor:
    """transformers 4 returns the projected embedding; transformers 5 returns an output whose pooler_output is."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class CLIPZeroShotClassifier:
    """Zero-shot :class:`~stylecloak.evaluation.classifier.StyleClassifier` on a local CLIP model."""

    name = "clip"

    def __init__(
        self,
        model_path_or_name: str | os.PathLike[str],
        labels: Sequence[str],
        prompt_template: str = DEFAULT_PROMPT,
        device: str | torch.device = "cpu",
    ) -> None:
        if not labels:
            raise ValueError("the CLIP classifier needs at least one label")
        if len(set(labels)) != len(labels):
            raise ValueError("labels must be distinct")
        if "{}" not in prompt_template:
            raise ValueError(f"prompt template must contain {{}} for the label, got {prompt_template!r}")
        transformers = _import_transformers()
        source = str(model_path_or_name)
        try:
            self.model = transformers.CLIPModel.from_pretrained(source).eval().to(device)
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(source)
        except (OSError, ValueError) as exc:
            first = first_line(exc)
            raise CLIPUnavailableError(f"cannot load CLIP model {source!r}: {first}") from None
        self.model.requires_grad_(False)
        self.device = torch.device(device)
        self.prompt_template = prompt_template
        self.labels = list(labels)
        self._image_size, mean, std = self._preprocessing(source)
        self._mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self._text = self._encode_prompts(self.labels)

    def _preprocessing(self, source: str) -> tuple[int, Sequence[float], Sequence[float]]:
        size = int(self.model.config.vision_config.image_size)
        config_file = Path(source) / "preprocessor_config.json"
        if config_file.is_file():
            try:
                config = json.loads(config_file.read_text(encoding="utf-8"))
                return size, config.get("image_mean", CLIP_MEAN), config.get("image_std", CLIP_STD)
            except (OSError, ValueError):
                pass  # a broken preprocessor file: OpenAI's constants are what almost every CLIP uses
        return size, CLIP_MEAN, CLIP_STD

    @torch.no_grad()
    def _encode_prompts(self, labels: Sequence[str]) -> torch.Tensor:
        prompts = [self.prompt_template.format(label) for label in labels]
        tokens = self.tokenizer(prompts, padding=True, truncation=True, return_tensors="pt").to(self.device)
        text = _embedding(
            self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        )
        return F.normalize(text.float(), dim=-1)

    def preprocess(self, image: torch.Tensor) -> torch.Tensor:
        """1x3xHxW in [0, 1] -> CLIP's normalised 1x3xSxS input."""
        size = self._image_size
        image = image.to(self.device, torch.float32).clamp(0, 1)
        height, width = image.shape[-2:]
        scale = size / min(height, width)
        resized = (max(size, round(height * scale)), max(size, round(width * scale)))
        image = F.interpolate(image, size=resized, mode="bicubic", antialias=scale < 1, align_corners=False).clamp(0, 1)
        top, left = (resized[0] - size) // 2, (resized[1] - size) // 2
        return (image[..., top : top + size, left : left + size] - self._mean) / self._std

    @torch.no_grad()
    def embed(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        """N x E unit-length image embeddings."""
        check_images(images)
        if not images:
            return torch.zeros(0, self._text.shape[1])
        pixels = torch.cat([self.preprocess(image) for image in images])
        return F.normalize(_embedding(self.model.get_image_features(pixel_values=pixels)).float(), dim=-1)

    def describe(self, image: torch.Tensor) -> torch.Tensor:
        """StyleDescriptor: the unit-length CLIP embedding of one 1x3xHxW image, on the CPU."""
        return self.embed([image])[0].cpu()

    def fit(self, images: Sequence[torch.Tensor], labels: Sequence[str]) -> CLIPZeroShotClassifier:
        """Zero-shot: nothing to learn. Checks the input, and that every label is one of the prompts."""
        check_training_set(images, labels)
        unknown = sorted(set(labels) - set(self.labels))
        if unknown:
            raise ValueError(
                f"label(s) {', '.join(unknown)} have no prompt; the classifier knows {', '.join(self.labels)}"
            )
        return self

    @torch.no_grad()
    def predict_proba(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        scale = float(self.model.logit_scale.exp().clamp(max=100.0))  # CLIP clamps its temperature the same way
        logits = scale * self.embed(images) @ self._text.T
        return torch.softmax(logits, dim=1).cpu()

    def predict(self, images: Sequence[torch.Tensor]) -> list[str]:
        return [self.labels[k] for k in self.predict_proba(images).argmax(dim=1).tolist()]


def clip_descriptor(
    model_path_or_name: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> CLIPZeroShotClassifier:
    """A CLIP model as a :class:`~stylecloak.descriptors.StyleDescriptor` (``--descriptor clip:PATH``): its
    ``describe`` is the unit-length image embedding. The one prompt it is built with is never used."""
    return CLIPZeroShotClassifier(model_path_or_name, ["artwork"], device=device)


class CLIPFeatureExtractor:
    """CLIP image embeddings as the features of :class:`~stylecloak.evaluation.classifier.FeatureStyleClassifier`'s
    heads (a linear probe on CLIP: ``stylecloak mimic --judge clip:PATH``). Training adds a mirrored view."""

    def __init__(self, clip: CLIPZeroShotClassifier) -> None:
        self.clip = clip
        self.block_sizes = [int(clip.model.config.projection_dim)]

    def features(self, image: torch.Tensor) -> torch.Tensor:
        return self.clip.embed([image])[0].cpu()

    def training_features(self, image: torch.Tensor) -> torch.Tensor:
        return self.clip.embed([image, image.flip(-1)]).cpu()
