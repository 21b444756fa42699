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
