"""An oracle-free 2D stand-in for the volumetric protocol tests (it sees only the slice)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.ndimage import label as cc_label

from sambench.models.base import Embedding, Prediction
from sambench.prompts.types import Prompts


class ThresholdModel:
    """An oracle-free 2D stand-in: bright pixels (> 128) of the slice inside the box (grown by
    2 px), plus the bright component under each positive point (a disc of radius 3 on a dark
    pixel), minus the predicted component under each negative point. One candidate, score 1."""

    name = "threshold"

    def embed(self, image: np.ndarray) -> Embedding:
        f = torch.from_numpy(np.asarray(image, np.float32))[None, None]
        return Embedding(features=f, original_size=image.shape[:2], input_size=image.shape[:2])

    def predict(
        self, embedding: Embedding, prompts: Sequence[Prompts], multimask_output: bool | None = None
    ) -> Prediction:
        img = embedding.features[0, 0].numpy()
        h, w = img.shape
        bright = img > 128
        comps, _ = cc_label(bright)
        yy, xx = np.mgrid[:h, :w]
        out = []
        for p in prompts:
            m = np.zeros((h, w), bool)
            if p.box is not None:
                x0, y0, x1, y1 = (round(v) for v in p.box)
                m[max(0, y0 - 2) : y1 + 3, max(0, x0 - 2) : x1 + 3] = True
                m &= bright
            if p.points is not None and p.labels is not None:
                for (x, y), lab in zip(p.points, p.labels, strict=True):
                    r, c = round(y), round(x)
                    disc = (xx - x) ** 2 + (yy - y) ** 2 <= 9
                    if lab == 1:
                        m |= comps == comps[r, c] if comps[r, c] > 0 else disc
                    else:
                        mc, _ = cc_label(m)
                        m &= ~(mc == mc[r, c]) if mc[r, c] > 0 else ~disc
            out.append(m)
        masks = np.stack(out)[:, None]
        return Prediction(
            masks=masks,
            scores=np.ones((len(prompts), 1), np.float32),
            low_res_logits=np.zeros((len(prompts), 1, 8, 8), np.float32),
        )
