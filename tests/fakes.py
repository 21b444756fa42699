"""Test doubles shared by engine tests: a fake adapter and a tiny prepared dataset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from sambench.data.records import DATASET_JSON_NAME, MANIFEST_NAME, ObjectRecord
from sambench.models.base import Embedding, Prediction
from sambench.prompts.types import Prompts


class FakeModel:
    """Deterministic stand-in for an adapter.

    Candidate 0 is the prompt's box filled (or a disc of radius ``r`` around each positive point
    minus discs around negative points); candidate 1 is candidate 0 shifted right by 3 px; candidate
    2 is empty. Predicted IoUs are (0.5, 0.9, 0.1), so ``score`` picks the shifted mask while
    ``oracle`` picks candidate 0. Counts ``embed`` calls per image.
    """

    name = "fake"
    device = "cpu"

    def __init__(self, r: int = 6) -> None:
        self.r = r
        self.embed_calls = 0
        self.predict_calls = 0

    def signature(self) -> dict[str, str]:
        return {"model": self.name, "r": str(self.r)}

    def embed(self, image: np.ndarray) -> Embedding:
        self.embed_calls += 1
        feats = torch.from_numpy(np.asarray(image, dtype=np.float32)).reshape(
            1, 1, *image.shape[:2]
        )
        return Embedding(features=feats, original_size=image.shape[:2], input_size=image.shape[:2])

    def _mask(self, p: Prompts, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        yy, xx = np.mgrid[:h, :w]
        m = np.zeros(shape, bool)
        if p.box is not None:
            x0, y0, x1, y1 = (round(v) for v in p.box)
            m[y0 : y1 + 1, x0 : x1 + 1] = True
        elif p.points is not None and p.labels is not None:
            for (x, y), lab in zip(p.points, p.labels, strict=True):
                disc = (xx - x) ** 2 + (yy - y) ** 2 <= self.r**2
                m = m | disc if lab == 1 else m & ~disc
        return m

    def predict(
        self, embedding: Embedding, prompts: Sequence[Prompts], multimask_output: bool | None = None
    ) -> Prediction:
        self.predict_calls += 1
        shape = embedding.original_size
        masks = []
        for p in prompts:
            m0 = self._mask(p, shape)
            m1 = np.roll(m0, 3, axis=1)
            masks.append(np.stack([m0, m1, np.zeros(shape, bool)]))
        b = len(prompts)
        k = 3 if multimask_output in (None, True) else 1
        arr = np.stack(masks)[:, :k]
        scores = np.tile(np.array([0.5, 0.9, 0.1], np.float32)[:k], (b, 1))
        return Prediction(
            masks=arr, scores=scores, low_res_logits=np.zeros((b, k, 8, 8), np.float32)
        )


def object_row(
    dataset: str, i: int, mask: np.ndarray, object_name: str, label_value: int, modality: str
) -> dict[str, object]:
    """The manifest row of one object of slice ``i`` (case ``c<i>``, image id
    ``<dataset>_c<i>_<i>``, PNGs under ``<dataset>/images|labels/``, 1 mm pixels, no slice
    spacing): ``mask`` HxW bool gives its size, area and inclusive bounding box."""
    stem = f"{dataset}_c{i}_{i}"
    ys, xs = np.nonzero(mask)
    return ObjectRecord(
        dataset=dataset,
        case=f"c{i}",
        slice_index=i,
        image_id=stem,
        image_path=f"{dataset}/images/{stem}.png",
        label_path=f"{dataset}/labels/{stem}.png",
        object_name=object_name,
        label_value=label_value,
        modality=modality,
        height=int(mask.shape[0]),
        width=int(mask.shape[1]),
        spacing_x=1.0,
        spacing_y=1.0,
        spacing_z=float("nan"),
        slice_axis=-1,
        area=len(xs),
        bbox_x_min=int(xs.min()),
        bbox_y_min=int(ys.min()),
        bbox_x_max=int(xs.max()),
        bbox_y_max=int(ys.max()),
        source_image=f"src/{stem}.png",
    ).to_row()


def make_prepared(root: Path, n_images: int = 4, size: tuple[int, int] = (64, 80)) -> Path:
    """A prepared folder with one dataset 'toy' of ``n_images`` images, two objects each."""
    ds = root / "toy"
    (ds / "images").mkdir(parents=True)
    (ds / "labels").mkdir()
    rng = np.random.default_rng(0)
    records = []
    h, w = size
    for i in range(n_images):
        img = (rng.random((h, w)) * 255).astype(np.uint8)
        lab = np.zeros((h, w), np.uint8)
        lab[10 : 20 + i, 8:24] = 85  # rectangle
        yy, xx = np.mgrid[:h, :w]
        lab[(yy - 40) ** 2 + (xx - 55) ** 2 <= (8 + i) ** 2] = 170  # disc
        stem = f"toy_c{i}_{i}"
        Image.fromarray(img).save(ds / "images" / f"{stem}.png")
        Image.fromarray(lab).save(ds / "labels" / f"{stem}.png")
        for value, name in ((85, "Box"), (170, "Disc")):
            records.append(object_row("toy", i, lab == value, name, value, "CT"))
    pd.DataFrame(records).to_parquet(ds / MANIFEST_NAME, index=False)
    (ds / DATASET_JSON_NAME).write_text(
        '{"info": {"1": "Box", "2": "Disc"}, "color": {"1": 85, "2": 170}, "modality": "CT"}'
    )
    return root
