"""Classical interactive-segmentation baselines behind the adapter protocol (SPEC section 7).

They take the same clicks (and boxes) as the SAM family through ``embed``/``predict``, so the
interactive engine drives them unchanged. No network and no weights: ``embed`` only stores the image.

- :class:`RandomWalkerBaseline`: ``skimage.segmentation.random_walker`` on the gray image, seeded by
  the clicks: a disc of ``radius`` px around each positive click is label 1 (object), around each
  negative click label 2 (background); the one-pixel image frame is also background (decision: a
  user's object rarely fills the image border, and the walker needs a background seed from click 1),
  and so is everything outside the box when the prompts carry one. Later clicks paint over earlier
  ones, positive clicks over the frame.
- :class:`GrabCutBaseline`: ``cv2.grabCut`` initialised from the box when given, else from the
  bounding box of the positive clicks grown by ``margin`` px; outside that rectangle is definite
  background, inside probable foreground; click discs are definite foreground / background.

Both return one candidate per prompt set (K = 1; ``multimask_output`` is ignored), predicted IoU 1.0
and all-zero low-resolution logits (``Prompts.mask_logits`` is ignored). A prompt set without any
positive click and without a box gives an empty mask.

Plugging in a learned interactive model (SimpleClick, FocalClick, ...): write a class with a
``name``, ``embed(image) -> Embedding`` (run its backbone once, or store the image if the model
needs the clicks at encoding time) and ``predict(embedding, prompts, multimask_output=None) ->
Prediction`` (decode each ``Prompts``: ``points`` Nx2 (X, Y), ``labels`` 1/0, optional
``mask_logits`` from the previous round), and pass an instance as ``evaluate(..., model=...)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from skimage.segmentation import random_walker

from sambench.models.base import Embedding, Prediction
from sambench.prompts.types import Prompts

BASELINE_NAMES: tuple[str, ...] = ("random_walker", "grabcut")
LOW_RES = 256
RANDOM_WALKER_MODES = (
    "cg_mg",
    "cg_j",
    "cg",
)  # side of the (all-zero) low_res_logits, as the SAM family's


def _store_image(image: np.ndarray) -> Embedding:
    """The image itself as the embedding: 1xCxHxW float32 tensor of its uint8 values."""
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
        raise ValueError(
            f"image: expected HxW or HxWx3 uint8, got shape {img.shape} dtype {img.dtype}"
        )
    chw = img[None] if img.ndim == 2 else np.moveaxis(img, 2, 0)
    feats = torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))[None]
    hw = (int(img.shape[0]), int(img.shape[1]))
    return Embedding(features=feats, original_size=hw, input_size=hw)


def _image_of(embedding: Embedding) -> np.ndarray:
    """HxWxC uint8 image back from :func:`_store_image`."""
    chw = embedding.features[0].detach().cpu().numpy()
    return np.moveaxis(chw, 0, 2).astype(np.uint8)


def _clicks(p: Prompts) -> list[tuple[int, int, bool]]:
    """(x, y, positive) of each point, rounded to the nearest pixel."""
    if p.points is None or p.labels is None:
        return []
    return [
        (round(float(x)), round(float(y)), int(lab) == 1)
        for (x, y), lab in zip(p.points, p.labels, strict=True)
    ]


def _disc(shape: tuple[int, int], x: int, y: int, radius: int) -> np.ndarray:
    """HxW bool disc of ``radius`` px (Euclidean, inclusive) around (x, y)."""
    h, w = shape
    yy, xx = np.ogrid[:h, :w]
    return (xx - x) ** 2 + (yy - y) ** 2 <= radius**2


class ClickBaseline:
    """What both baselines share: ``embed`` stores the image, ``predict`` segments each prompt
    set on a view of it (:meth:`_view`, :meth:`_segment`) and packs one candidate per set."""

    def embed(self, image: np.ndarray) -> Embedding:
        """Store the HxW or HxWx3 uint8 image (no encoder)."""
        return _store_image(image)

    def _view(self, image: np.ndarray) -> np.ndarray:
        """The stored HxWxC uint8 image as :meth:`_segment` reads it."""
        raise NotImplementedError

    def _segment(self, view: np.ndarray, p: Prompts) -> np.ndarray:
        """HxW bool mask of one prompt set."""
        raise NotImplementedError

    def predict(
        self, embedding: Embedding, prompts: Sequence[Prompts], multimask_output: bool | None = None
    ) -> Prediction:
        """Masks Bx1xHxW bool, scores Bx1 (1.0), low_res_logits Bx1x256x256 zeros."""
        view = self._view(_image_of(embedding))
        masks = [self._segment(view, p) for p in prompts]
        b = len(masks)
        return Prediction(
            masks=np.stack(masks)[:, None],
            scores=np.ones((b, 1), np.float32),
            low_res_logits=np.zeros((b, 1, LOW_RES, LOW_RES), np.float32),
        )


@dataclass
class RandomWalkerBaseline(ClickBaseline):
    """Random-walker segmentation seeded by clicks (see the module docstring for the seeds).

    ``beta``: the walker's edge penalty (skimage's default 130; the image is gray, scaled to [0, 1]);
    ``radius``: seed disc radius in px around each click; ``mode``: skimage's solver, ``"cg_mg"``
    (conjugate gradient with pyamg's multigrid preconditioner: 5x faster than ``"cg_j"`` on a
    440x512 slice, labels equal but for a few pixels at the tolerance) or ``"cg_j"``, ``"cg"``;
    ``tol``: the solver tolerance (1e-5 rather than skimage's 1e-3, whose probabilities can leave
    [0, 1]).
    """

    beta: float = 130.0
    radius: int = 3
    tol: float = 1e-5
    mode: str = "cg_mg"
    name: str = "random_walker"
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.mode not in RANDOM_WALKER_MODES:
            raise ValueError(f"mode: {self.mode!r} is not one of {', '.join(RANDOM_WALKER_MODES)}")

    def signature(self) -> dict[str, str]:
        return {
            "model": self.name,
            "beta": f"{self.beta:g}",
            "radius": str(self.radius),
            "mode": self.mode,
            "tol": f"{self.tol:g}",
        }

    def seeds(self, p: Prompts, shape: tuple[int, int]) -> np.ndarray:
        """HxW int32 seed labels: 0 unlabeled, 1 object, 2 background."""
        seeds = np.zeros(shape, np.int32)
        seeds[0, :] = seeds[-1, :] = seeds[:, 0] = seeds[:, -1] = 2
        if p.box is not None:
            x0, y0, x1, y1 = (round(float(v)) for v in p.box)
            inside = np.zeros(shape, bool)
            inside[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = True
            seeds[~inside] = 2
        for x, y, pos in _clicks(p):
            seeds[_disc(shape, x, y, self.radius)] = 1 if pos else 2
        return seeds

    def _view(self, image: np.ndarray) -> np.ndarray:
        """HxW float64 gray in [0, 1]: the channels' mean / 255."""
        return image.astype(np.float64).mean(axis=2) / 255.0

    def _segment(self, gray: np.ndarray, p: Prompts) -> np.ndarray:
        seeds = self.seeds(p, gray.shape)  # type: ignore[arg-type]
        if not (seeds == 1).any():
            return np.zeros(gray.shape, bool)
        if not (seeds == 2).any():
            return np.ones(gray.shape, bool)
        labels = random_walker(gray, seeds, beta=self.beta, mode=self.mode, tol=self.tol)
        return np.asarray(labels == 1)


@dataclass
class GrabCutBaseline(ClickBaseline):
    """GrabCut (``cv2.grabCut``, ``iterations`` rounds) from a box or the clicks' box.

    ``margin``: px added on every side of the positive clicks' bounding box when no box is given;
    ``radius``: click disc radius in px; ``seed``: OpenCV's RNG seed (GrabCut's k-means
    initialisation), set before every call so results are deterministic.
    """

    iterations: int = 5
    margin: int = 20
    radius: int = 3
    seed: int = 0
    name: str = "grabcut"
    device: str = "cpu"

    def signature(self) -> dict[str, str]:
        return {
            "model": self.name,
            "iterations": str(self.iterations),
            "margin": str(self.margin),
            "radius": str(self.radius),
        }

    def init_mask(self, p: Prompts, shape: tuple[int, int]) -> np.ndarray | None:
        """HxW uint8 GrabCut labels (GC_BGD / GC_PR_FGD / GC_FGD ...), None without any foreground."""
        h, w = shape
        clicks = _clicks(p)
        if p.box is not None:
            x0, y0, x1, y1 = (round(float(v)) for v in p.box)
        else:
            pos = [(x, y) for x, y, ok in clicks if ok]
            if not pos:
                return None
            xs, ys = [c[0] for c in pos], [c[1] for c in pos]
            x0, x1 = min(xs) - self.margin, max(xs) + self.margin
            y0, y1 = min(ys) - self.margin, max(ys) + self.margin
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
        if x1 < x0 or y1 < y0:
            return None
        m = np.full(shape, cv2.GC_BGD, np.uint8)
        m[y0 : y1 + 1, x0 : x1 + 1] = cv2.GC_PR_FGD
        if not np.isin(m, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
            # the rectangle covers the image: GrabCut needs background samples; use the frame
            m[0, :] = m[-1, :] = m[:, 0] = m[:, -1] = cv2.GC_PR_BGD
        for x, y, ok in clicks:
            m[_disc(shape, x, y, self.radius)] = cv2.GC_FGD if ok else cv2.GC_BGD
        if not np.isin(m, (cv2.GC_FGD, cv2.GC_PR_FGD)).any():
            return None
        return m

    def _view(self, image: np.ndarray) -> np.ndarray:
        """HxWx3 uint8, contiguous (a gray image replicated to 3 channels), as stored (RGB)."""
        return np.ascontiguousarray(np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image)

    def _segment(self, bgr: np.ndarray, p: Prompts) -> np.ndarray:
        shape = (int(bgr.shape[0]), int(bgr.shape[1]))
        m = self.init_mask(p, shape)
        if m is None:
            return np.zeros(shape, bool)
        if not np.isin(m, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
            return np.ones(shape, bool)
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(self.seed)
        cv2.grabCut(bgr, m, (0, 0, 0, 0), bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        return np.asarray((m == cv2.GC_FGD) | (m == cv2.GC_PR_FGD))


def build_baseline(name: str, **kwargs: object) -> RandomWalkerBaseline | GrabCutBaseline:
    """A baseline by name (one of :data:`BASELINE_NAMES`); ``kwargs`` go to its constructor."""
    if name == "random_walker":
        return RandomWalkerBaseline(**kwargs)  # type: ignore[arg-type]
    if name == "grabcut":
        return GrabCutBaseline(**kwargs)  # type: ignore[arg-type]
    raise ValueError(f"baseline: {name!r} is not one of {', '.join(BASELINE_NAMES)}")
