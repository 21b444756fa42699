"""The prompt record handed to model adapters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prompts:
    """Prompts for one object, in pixel coordinates of the original (standardized) image.

    - ``points``: Nx2 float array, (X, Y) order, or None.
    - ``labels``: N int array, 1 = positive (foreground), 0 = negative (background), or None.
    - ``box``: length-4 float array, XYXY, inclusive pixel coordinates, or None.
    - ``mask_logits``: 1xhxw float32 low-resolution logits from a previous round (the adapter's
      own ``low_res_logits`` output), or None.

    Converting to the model's input resolution is the adapter's job.
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask_logits: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.points is None) != (self.labels is None):
            raise ValueError("Prompts: points and labels must be given together")
        if self.points is not None and self.labels is not None:
            if self.points.ndim != 2 or self.points.shape[1] != 2:
                raise ValueError(
                    f"Prompts.points must be Nx2 (X, Y), got shape {self.points.shape}"
                )
            if self.labels.shape != (self.points.shape[0],):
                raise ValueError(
                    f"Prompts.labels must have shape ({self.points.shape[0]},), got {self.labels.shape}"
                )
        if self.box is not None and self.box.shape != (4,):
            raise ValueError(f"Prompts.box must be XYXY of shape (4,), got {self.box.shape}")
        if self.points is None and self.box is None and self.mask_logits is None:
            raise ValueError("Prompts: give at least one of points, box, mask_logits")

    @property
    def signature(self) -> tuple[int, bool, bool]:
        """(number of points, has box, has mask): prompts with equal signatures batch together."""
        n = 0 if self.points is None else int(self.points.shape[0])
        return (n, self.box is not None, self.mask_logits is not None)


@dataclass(frozen=True)
class ConceptPrompt:
    """A concept prompt (SAM 3's "promptable concept segmentation"): find every instance of a
    concept named by a noun phrase, shown by exemplar boxes, or both.

    - ``text``: the noun phrase ("left ventricle"), or None for exemplars alone.
    - ``boxes``: Mx4 float XYXY exemplar boxes in original pixels (inclusive), or None.
    - ``box_labels``: M int, 1 = an instance of the concept (positive), 0 = not (negative);
      None with boxes means all positive.
    """

    text: str | None = None
    boxes: np.ndarray | None = None
    box_labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.text is None and self.boxes is None:
            raise ValueError("ConceptPrompt: give a text, exemplar boxes, or both")
        if self.text is not None and not self.text.strip():
            raise ValueError("ConceptPrompt.text: empty phrase")
        if self.boxes is not None:
            b = np.asarray(self.boxes)
            if b.ndim != 2 or b.shape[1] != 4 or b.shape[0] == 0:
                raise ValueError(f"ConceptPrompt.boxes must be Mx4 XYXY, got shape {b.shape}")
            if self.box_labels is not None and np.asarray(self.box_labels).shape != (b.shape[0],):
                raise ValueError(
                    f"ConceptPrompt.box_labels must have shape ({b.shape[0]},), "
                    f"got {np.asarray(self.box_labels).shape}"
                )
        elif self.box_labels is not None:
            raise ValueError("ConceptPrompt: box_labels without boxes")
