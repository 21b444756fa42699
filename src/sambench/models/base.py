"""The adapter protocol every promptable model implements.

Encode once (``embed``), prompt many (``predict``): the engine calls ``embed`` once per image and
reuses the returned :class:`Embedding` for every object, strategy, shift repeat and interactive round.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from sambench.prompts.types import ConceptPrompt, Prompts


@dataclass
class Embedding:
    """An image embedding plus what is needed to map prompts and masks to and from it.

    - ``features``: 1xCxhxw float tensor (SAM family: 1x256x64x64), on the model's device.
    - ``original_size``: (H, W) of the image given to ``embed``.
    - ``input_size``: (h, w) of the resized image inside the model input, before padding.
    - ``extras``: further named feature maps of the image (SAM 2: ``high_res_feats_0``
      1x32x256x256 and ``high_res_feats_1`` 1x64x128x128); empty for the SAM family. The cache
      stores and restores every one of them by name.
    """

    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Prediction:
    """Masks for a batch of B prompt sets, K candidates each.

    - ``masks``: BxKxHxW bool, at the original image size.
    - ``scores``: BxK float32, the model's predicted IoU of each candidate.
    - ``low_res_logits``: BxKxhxw float32 (h = w = 256 for the SAM family), usable as the
      ``mask_logits`` prompt of the next interactive round.
    """

    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray


@runtime_checkable
class PromptableModel(Protocol):
    """What the engine needs from a model."""

    name: str

    def embed(self, image: np.ndarray) -> Embedding:
        """Encode one image: HxW or HxWx3 uint8 (gray is replicated to 3 channels)."""
        ...

    def predict(
        self,
        embedding: Embedding,
        prompts: Sequence[Prompts],
        multimask_output: bool | None = None,
    ) -> Prediction:
        """Decode B prompt sets against one embedding; ``None`` uses the model's default."""
        ...


@dataclass
class Instances:
    """What a concept prompt returns: zero or more instances of the concept.

    - ``masks``: NxHxW bool, at the original image size (N may be 0).
    - ``scores``: N float32, the model's confidence of each instance (SAM 3: the query's
      score times the image-level presence score).
    - ``boxes``: Nx4 float32 XYXY in original pixels.
    """

    masks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray

    @property
    def union(self) -> np.ndarray:
        """HxW bool: the union of the instance masks (all False when N = 0)."""
        return np.asarray(np.asarray(self.masks, bool).any(axis=0))


@runtime_checkable
class ConceptModel(Protocol):
    """A model that segments every instance of a concept (text and/or exemplar boxes)."""

    name: str

    def segment_concepts(
        self, embedding: Embedding, prompts: Sequence[ConceptPrompt]
    ) -> list[Instances]:
        """One :class:`Instances` per prompt, from the image's one embedding."""
        ...
