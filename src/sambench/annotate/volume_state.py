"""The volume annotation session, independent of HTTP: one volume open at a time, several labels.

:class:`VolumeState` owns a session folder (:mod:`sambench.annotate.volume_store`), the list of
volumes to annotate (:mod:`sambench.annotate.volume_source`) and, in model mode, a 2D adapter
lifted to the volume: a box or clicks on a slice of the chosen view decode that slice from its
embedding (encoded once per (view, slice), kept in a
:class:`~sambench.volumes.embeddings.SliceEmbeddings` store; a background thread encodes the
neighbours of the slice the user looks at), and ``propagate`` runs, from the current slice
outward, the ``propagate`` protocol's rule
(:func:`sambench.volumes.protocols.propagate.propagate_from`: the previous slice's tight box and
low-resolution logits prompt the next slice, both directions, stopping at the first empty
prediction) or, for a SAM 2-family adapter (:func:`propagation_rule`), SAM 2's official video
predictor over the slices within the reach (:func:`sambench.volumes.protocols.sam2_video.iter_video_masks`:
the slice's label as ``add_new_mask``, forward then reverse, each direction stopping at its first
empty mask). The event log's ``method`` names the rule.

Conventions: the label map is canonical (z, y, x) uint8 (0 background, the label values
inside), one value per voxel. Coordinates of a request are pixels (X, Y) = (column, row) of the
view's slice (:mod:`sambench.annotate.views`); boxes XYXY inclusive. The slice's model input is
its own min-max normalization to uint8 (SPEC 2.3, as ``prepare`` writes slices).

Overlap policy (``overlap``): ``overwrite`` (a label drawn over another takes the voxels) or
``block`` (voxels of another label are kept; the new label only fills background and its own).
A model mask or a propagation replaces the active label on each slice it covers; a brush adds,
the eraser removes the active label only.

Native 3D model (``model`` a :class:`~sambench.models.volume_base.VolumeModel`, e.g.
nnInteractive): the model opens each volume's SOURCE intensities (the float32 canonical array
read from the user's file, as ``evaluate-3d`` gives native models, with the (z, y, x) spacing),
and every model interaction of the active label goes to it as a record in canonical (z, y, x)
voxels: a box on a slice is a 2D :class:`~sambench.models.volume_base.BoxInteraction` on that
slice's plane, a click a :class:`~sambench.models.volume_base.PointInteraction`, a scribble
(an open stroke) or a lasso (a closed outline) a
:class:`~sambench.models.volume_base.ScribbleInteraction` /
:class:`~sambench.models.volume_base.LassoInteraction` on the plane of that slice (any view;
only when the weights take them: ``model.supports``; a 2D model or none refuses both). The 3D mask it
returns replaces the label on every slice (the overlap policy applies). The model holds one
object's interactions at a time: before a model interaction, when the label differs from the
one the model holds or the label's voxels changed since the model's last answer (a hand edit,
an undo, another label overwriting it), the model is reset and, when the weights accept one,
given the label's current voxels as its initial mask (``InitialMaskInteraction(refine=False)``,
as SlicerNNInteractive uploads a segment edited by other tools), so model and hand edits mix.
``propagate`` is refused (each answer is already 3D).

Undo restores the voxels the last interaction changed (any kind: model, propagation, hand), one
stack per volume. Time: every event adds the time since the previous one, capped at
``IDLE_CAP_S``, to the volume and to the label acted on.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from sambench.annotate import volume_store as VS
from sambench.annotate.state import RequestError, shown
from sambench.annotate.views import (
    VIEWS,
    canonical_index,
    canonical_zyx,
    view_array,
    view_depth_spacing,
    view_spacing,
)
from sambench.annotate.volume_source import OpenVolume, VolumeItem, open_item
from sambench.data.standardize import normalize_minmax
from sambench.models.base import PromptableModel
from sambench.models.volume_base import (
    BoxInteraction,
    InitialMaskInteraction,
    Interaction,
    LassoInteraction,
    PointInteraction,
    ScribbleInteraction,
    VolumeImage,
    VolumeModel,
    is_volume_model,
)
from sambench.prompts.types import Prompts

IDLE_CAP_S = 60.0
MAX_BRUSH_RADIUS = 200
MAX_POINTS = 10_000
PREFETCH_RADIUS = 8
"""Slices on each side of the one on screen whose embeddings the background thread computes."""
EMBED_BUDGET_BYTES = 512 << 20
OVERLAP_POLICIES = ("overwrite", "block")
PALETTE = ("#f5c542", "#42a5f5", "#66bb6a", "#ef5350", "#ab47bc", "#26c6da", "#ff7043",
           "#d4e157", "#8d6e63", "#ec407a")  # fmt: skip
MODEL_KINDS = ("box", "click_pos", "click_neg", "propagate", "scribble", "lasso")
NATIVE_ONLY_KINDS = ("scribble", "lasso")
"""Interactions only a native 3D model whose weights take them answers (nnInteractive's
scribble and lasso prompts); a 2D model or none refuses them."""
HAND_KINDS = ("brush", "erase", "polygon")
PROPAGATION_SLICES = "propagate-protocol"
PROPAGATION_VIDEO = "sam2-video"
PROPAGATION_TEXT = {
    PROPAGATION_SLICES: "propagate protocol (box + logits, both directions)",
    PROPAGATION_VIDEO: "SAM 2 video predictor (mask prompt, propagate_in_video both directions)",
}
"""The propagation rules (the log's ``method``) and how the DICOM-SEG names them."""
NATIVE_SEED = 0
"""The seed a native model is reset with (nnInteractive draws refinement patches from numpy's
global state): the same interactions give the same masks."""


@dataclass
class Label:
    """One label of the volume: ``value`` 1..255, ``name``, ``colour`` ``#rrggbb``; how it was
    made (``model_used``: a model interaction changed it) and its effort counters."""

    value: int
    name: str
    colour: str
    model_used: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(VS.INTERACTION_KINDS, 0))
    active_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    hand_voxels_after_model: int = 0
    propagated_slices: int = 0

    def public(self) -> dict[str, Any]:
        return {"value": self.value, "name": self.name, "colour": self.colour,
                "model_used": self.model_used, "counts": dict(self.counts)}  # fmt: skip


@dataclass
class _Change:
    """Voxels one interaction changed: flat canonical indices and their values before."""

    index: np.ndarray
    before: np.ndarray
    label: int
    kind: str
    prompt: tuple[tuple[int, str, int], _Prompt | None] | None = None  # the model prompt before


@dataclass
class _Prompt:
    """The model prompt of one (label, view, slice): box, clicks, logits of the last decode."""

    box: list[float] | None = None
    clicks: list[list[float]] = field(default_factory=list)
    logits: np.ndarray | None = None


class _ModelSlices:
    """Lazy uint8 model input of a view's slices (``[k]`` -> HxW uint8; ``shape`` (K, H, W))."""

    def __init__(self, view_image: np.ndarray) -> None:
        self.view_image = view_image
        self.shape = view_image.shape
        self.dtype = np.dtype(np.uint8)

    def __getitem__(self, k: int) -> np.ndarray:
        return normalize_minmax(np.ascontiguousarray(self.view_image[k]))

    def __len__(self) -> int:
        return int(self.shape[0])


class VolumeState:
    """One session over ``items`` (see the module docstring).

    ``model``: a 2D adapter, a native 3D model (:func:`~sambench.models.volume_base.is_volume_model`)
    or None (manual); ``model_name`` what the logs record; ``labels``:
    (value, name) pairs to start with (else the source's names, else ``label 1``);
    ``limit_bytes``: the memory limit of one volume; ``prefetch``: run the background encoder;
    ``start_from_reference``: a volume with a reference starts from it (its labels, edited like
    any other; they count as MANUAL in the DICOM-SEG unless a model interaction changes them).
    """

    def __init__(
        self,
        items: list[VolumeItem],
        session_dir: Path | str,
        *,
        model: PromptableModel | VolumeModel | None,
        model_name: str,
        annotator: str,
        source: str,
        overlap: str = "overwrite",
        labels: list[tuple[int, str]] | None = None,
        limit_bytes: int | None = None,
        prefetch: bool = True,
        start_from_reference: bool = False,
    ) -> None:
        if (model is None) != (model_name == "none"):
            raise ValueError("model: give an adapter exactly when model_name is not 'none'")
        if overlap not in OVERLAP_POLICIES:
            raise ValueError(f"overlap: expected one of {OVERLAP_POLICIES}, got {overlap!r}")
        if not items:
            raise ValueError("items: nothing to annotate")
        self.items = items
        self.model = model
        self.native = model is not None and is_volume_model(model)
        self._native_label: int | None = None  # the label the native model's session holds
        self._native_sync: np.ndarray | None = None  # that label's voxels after its last answer
        self.model_name = model_name
        self.model_sha256 = str(getattr(model, "checkpoint_sha256", "") or "")
        self.propagation = propagation_rule(model)
        self.overlap = overlap
        self.limit_bytes = limit_bytes
        self.session_dir = Path(session_dir).resolve()
        self.info = VS.open_session(
            self.session_dir,
            source=source,
            items=[i.item_id for i in items],
            annotator=annotator,
            model=model_name,
            model_sha256=self.model_sha256,
        )
        self.start_labels = labels
        self.start_from_reference = start_from_reference
        self.accepted = VS.accepted_items(self.session_dir) & {i.item_id for i in items}
        self.lock = threading.RLock()  # state changes (the app's lock is outside it)
        self.emb_lock = threading.Lock()  # the embedding stores (the background thread too)
        self.vol: OpenVolume | None = None
        self.labels_map = np.zeros((0, 0, 0), np.uint8)
        self.labels: dict[int, Label] = {}
        self.active = 0
        self.history: list[_Change] = []
        self.prompts: dict[tuple[int, str, int], _Prompt] = {}
        self.stores: dict[str, Any] = {}
        self.last_t = time.monotonic()
        self.volume_active_s = 0.0
        self.started_utc = ""
        self._wanted: list[tuple[str, int]] = []
        self._cv = threading.Condition()
        self._stop = False
        self._worker: threading.Thread | None = None
        self.encoder_passes = 0
        if model is not None and prefetch and not self.native:
            self._worker = threading.Thread(target=self._prefetch_loop, daemon=True)
            self._worker.start()
        pending = [i for i in items if i.item_id not in self.accepted]
        self.open((pending or items)[0].item_id)

    # ------------------------------------------------------------------ volumes and labels
    @property
    def item(self) -> VolumeItem:
        assert self.vol is not None
        return self.vol.item

    def item_ids(self) -> list[str]:
        return [i.item_id for i in self.items]

    def open(self, item_id: str) -> None:
        """Open ``item_id`` (its exported label map when it was accepted before)."""
        item = next((i for i in self.items if i.item_id == item_id), None)
        if item is None:
            raise RequestError(404, f"item_id {shown(item_id)} is not in this session")
        with self.emb_lock:
            vol = open_item(item, limit_bytes=self.limit_bytes)
            self.stores = {}
            with self._cv:
                self._wanted = []
        self.vol = vol
        if self.native:
            self._native_open(vol)
        saved = VS.read_saved_labels(self.session_dir, vol)
        self.labels_map = saved[0] if saved is not None else np.zeros(vol.shape, np.uint8)
        names = saved[1] if saved is not None else None
        self.labels = {}
        pairs = (
            [(int(v), str(n["name"])) for v, n in names.items()]
            if names
            else (self.start_labels or sorted(item.names.items()) or [(1, "label 1")])
        )
        from_reference = saved is None and self.start_from_reference and vol.reference is not None
        if from_reference:
            assert vol.reference is not None
            self.labels_map = vol.reference.copy()
            known = dict(pairs)
            present = [int(v) for v in np.unique(vol.reference) if v]
            pairs = [*pairs, *((v, item.names.get(v, f"label {v}")) for v in present
                               if v not in known)]  # fmt: skip
        for value, name in pairs:
            colour = (names or {}).get(value, {}).get("colour") if names else None
            self.add_label(name, value, colour, log=False)
        self.active = min(self.labels)
        self.history, self.prompts = [], {}
        self.voxel_counts = np.bincount(self.labels_map.ravel(), minlength=256).astype(np.int64)
        img = vol.image
        lo, hi = np.percentile(img[:: max(1, img.shape[0] // 16)], [0.5, 99.5])
        self.window = (float(img.min()), float(img.max()), float(lo), float(hi))
        self.volume_active_s, self.last_t, self.started_utc = 0.0, time.monotonic(), VS.utc_now()
        VS.append_event(
            self.session_dir,
            {
                "type": "volume_open",
                "item_id": item.item_id,
                "shape_zyx": list(vol.shape),
                "reference": vol.reference is not None,
                "started_from_reference": from_reference,
            },
        )

    def add_label(
        self, name: str, value: int | None = None, colour: str | None = None, *, log: bool = True
    ) -> int:
        """Add a label (``value`` default: the next free one); returns its value."""
        name = str(name).strip()
        if not name or len(name) > 64:
            raise RequestError(400, f"name: expected 1..64 characters, got {shown(name)}")
        if value is None:
            free = [v for v in range(1, 256) if v not in self.labels]
            if not free:
                raise RequestError(400, "labels: all 255 values are in use")
            value = free[0]
        if not isinstance(value, int) or not 1 <= value <= 255 or value in self.labels:
            raise RequestError(400, f"value: expected a free integer 1..255, got {shown(value)}")
        if colour is None:
            colour = PALETTE[(value - 1) % len(PALETTE)]
        if not (isinstance(colour, str) and len(colour) == 7 and colour[0] == "#"
                and all(c in "0123456789abcdefABCDEF" for c in colour[1:])):  # fmt: skip
            raise RequestError(400, f"colour: expected #rrggbb, got {shown(colour)}")
        self.labels[value] = Label(value, name, colour.lower())
        if log:
            self._event("label_add", value, name=name, colour=colour)
        return value

    def select_label(self, value: int) -> None:
        if value not in self.labels:
            raise RequestError(404, f"label {shown(value)} does not exist")
        self.active = value

    def set_overlap(self, policy: str) -> None:
        if policy not in OVERLAP_POLICIES:
            raise RequestError(400, f"overlap: expected overwrite or block, got {shown(policy)}")
        self.overlap = policy
        self._event("overlap", self.active, policy=policy)

    # ------------------------------------------------------------------ time and events
    def _tick(self, label: int | None) -> None:
        now = time.monotonic()
        dt = min(now - self.last_t, IDLE_CAP_S)
        self.last_t = now
        self.volume_active_s += dt
        if label is not None and label in self.labels:
            self.labels[label].active_s += dt

    def _event(self, kind: str, label: int | None, **fields: Any) -> None:
        self._tick(label)
        VS.append_event(
            self.session_dir,
            {"type": kind, "item_id": self.item.item_id, "label_value": label, **fields},
        )

    # ------------------------------------------------------------------ slices
    def depth(self, view: str) -> int:
        return int(view_array(self.labels_map, self._view(view)).shape[0])

    def _view(self, view: Any) -> str:
        if view not in VIEWS:
            raise RequestError(400, f"view: expected one of {', '.join(VIEWS)}, got {shown(view)}")
        return str(view)

    def _slice(self, view: Any, k: Any) -> tuple[str, int]:
        view = self._view(view)
        n = self.depth(view)
        if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k < n:
            raise RequestError(400, f"slice: expected an integer 0..{n - 1}, got {shown(k)}")
        return view, k

    def image_slice(self, view: Any, k: Any) -> np.ndarray:
        """HxW float32 intensities of slice ``k`` of ``view`` (the page windows them)."""
        assert self.vol is not None
        view, k = self._slice(view, k)
        return np.ascontiguousarray(view_array(self.vol.image, view)[k], dtype=np.float32)

    def label_slice(self, view: Any, k: Any) -> np.ndarray:
        view, k = self._slice(view, k)
        return np.ascontiguousarray(view_array(self.labels_map, view)[k])

    def reference_slice(self, view: Any, k: Any) -> np.ndarray | None:
        assert self.vol is not None
        view, k = self._slice(view, k)
        if self.vol.reference is None:
            return None
        return np.ascontiguousarray(view_array(self.vol.reference, view)[k])

    def _points(self, view: str, pts: Any, field_name: str, n_min: int) -> np.ndarray:
        _, h, w = view_array(self.labels_map, view).shape
        try:
            arr = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        except (TypeError, ValueError):
            raise RequestError(400, f"{field_name}: expected a list of [x, y] pairs") from None
        if len(arr) > MAX_POINTS:
            raise RequestError(400, f"{field_name}: at most {MAX_POINTS} points, got {len(arr)}")
        if len(arr) < n_min or not np.isfinite(arr).all():
            raise RequestError(400, f"{field_name}: expected at least {n_min} finite [x, y] pairs")
        if (arr < -0.5).any() or (arr[:, 0] > w - 0.5).any() or (arr[:, 1] > h - 0.5).any():
            raise RequestError(400, f"{field_name}: a point lies outside the {w}x{h} slice")
        return np.clip(np.rint(arr), 0, [w - 1, h - 1])

    # ------------------------------------------------------------------ writing voxels
    def _write(self, kind: str, view: str, masks: dict[int, np.ndarray], label: int, *,
               replace: bool, erase: bool = False) -> int:  # fmt: skip
        """Write ``masks`` (slice -> HxW bool) of ``view`` into the label map for ``label``:
        ``replace`` clears the label on those slices first; ``erase`` removes it where the mask
        is; the overlap policy guards other labels. Pushes the undo record (the flat canonical
        indices changed and their values before); returns the number of voxels changed."""
        lab_view = view_array(self.labels_map, view)
        index: list[np.ndarray] = []
        before: list[np.ndarray] = []
        for k, m in masks.items():
            cur = lab_view[k]
            new = cur.copy()
            if erase:
                new[m & (cur == label)] = 0
            else:
                if replace:
                    new[cur == label] = 0
                free = m if self.overlap == "overwrite" else m & ((cur == 0) | (cur == label))
                new[free] = label
            rows, cols = np.nonzero(new != cur)
            if rows.size:
                index.append(canonical_index(self.labels_map.shape, view, k, rows, cols))
                before.append(cur[rows, cols])
                lab_view[k] = new
        idx = np.concatenate(index) if index else np.zeros(0, np.int64)
        old = np.concatenate(before) if before else np.zeros(0, np.uint8)
        if idx.size:
            self.voxel_counts -= np.bincount(old, minlength=256)
            self.voxel_counts += np.bincount(self.labels_map.reshape(-1)[idx], minlength=256)
        self.history.append(_Change(idx, old, label, kind))
        return int(idx.size)

    # ------------------------------------------------------------------ the model
    def _store(self, view: str) -> Any:
        from sambench.volumes.embeddings import SliceEmbeddings
        from sambench.volumes.types import Volume3D

        assert self.vol is not None and self.model is not None
        store = self.stores.get(view)
        if store is None:
            slices = _ModelSlices(view_array(self.vol.image, view))
            zero = np.broadcast_to(np.uint8(0), slices.shape)
            vol3 = Volume3D(
                volume_id=f"{self.item.item_id}:{view}", dataset="annotate", case=self.item.item_id,
                image=cast(np.ndarray, slices), label=zero, spacing=(1.0, 1.0, 1.0),
            )  # fmt: skip
            store = SliceEmbeddings(
                cast(PromptableModel, self.model), vol3, budget_bytes=EMBED_BUDGET_BYTES
            )
            self.stores[view] = store
        return store

    def _predictor(self, view: str) -> Any:
        from sambench.volumes.slices import SlicePredictor

        store = self._store(view)
        return SlicePredictor(cast(PromptableModel, self.model), store.volume, store=store)

    def hint(self, view: str, k: int) -> None:
        """The user looks at slice ``k`` of ``view``: queue its neighbours for the encoder."""
        if self._worker is None or self.vol is None:
            return
        order = [k] + [k + s * d for d in range(1, PREFETCH_RADIUS + 1) for s in (1, -1)]
        n = self.depth(view)
        with self._cv:
            self._wanted = [(view, j) for j in order if 0 <= j < n]
            self._cv.notify()

    def _prefetch_loop(self) -> None:
        """Encode the wanted slices, nearest first. The encoder runs outside ``emb_lock`` (the
        foreground decodes meanwhile; torch inference is re-entrant), the store is touched only
        under it; a slice the foreground encoded meanwhile is not stored twice."""
        while True:
            with self._cv:
                while not self._wanted and not self._stop:
                    self._cv.wait()
                if self._stop:
                    return
                view, k = self._wanted.pop(0)
            with self.emb_lock:
                if self.vol is None or view not in VIEWS:
                    continue
                store: Any = self._store(view)
                if k in store or not 0 <= k < store.volume.shape[0]:
                    continue
                image = np.ascontiguousarray(store.volume.image[k])
            try:
                emb = cast(PromptableModel, self.model).embed(image)
            except Exception:
                continue
            with self.emb_lock:
                if id(self.stores.get(view)) == id(store) and k not in store:  # same volume
                    store._keep(k, emb)
                    store.encodes += 1
                    store.slices.add(k)
                    self.encoder_passes += 1

    def embedding_ready(self, view: str, k: int) -> bool:
        store = self.stores.get(view)
        return store is not None and k in store

    def _decode(self, view: str, k: int, p: _Prompt, *, first: bool) -> tuple[np.ndarray, float]:
        """HxW bool mask of slice ``k`` from ``p`` (+ previous logits); decode ms (encode not
        counted: it is logged separately)."""
        assert self.model is not None
        with self.emb_lock:
            store = self._store(view)
            t_enc = time.perf_counter()
            emb, passes = store.get(k)
            encode_ms = (time.perf_counter() - t_enc) * 1000.0
            self.encoder_passes += passes
        t0 = time.perf_counter()
        pts = np.array([c[:2] for c in p.clicks], np.float32).reshape(-1, 2)
        labels = np.array([c[2] for c in p.clicks], np.int64)
        prompt = Prompts(
            points=pts if len(pts) else None,
            labels=labels if len(pts) else None,
            box=None if p.box is None else np.asarray(p.box, np.float32),
            mask_logits=None if first else p.logits,
        )
        if first and p.box is not None:
            multimask = getattr(self.model, "prompted_multimask", None)
        else:
            multimask = first
        pred = cast(PromptableModel, self.model).predict(emb, [prompt], multimask_output=multimask)
        best = int(np.argmax(pred.scores[0]))
        p.logits = pred.low_res_logits[0, best][None].astype(np.float32)
        mask = np.asarray(pred.masks[0, best], bool).copy()
        self._last_encode_ms = encode_ms
        return mask, (time.perf_counter() - t0) * 1000.0

    # ------------------------------------------------------------------ interactions
    def interact(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Apply one interaction on slice ``body["slice"]`` of ``body["view"]`` for the active
        label; ``kind`` in box, click_pos, click_neg, brush, erase, polygon, propagate, and,
        with a native 3D model whose weights take them, scribble and lasso."""
        kinds = (*MODEL_KINDS, *HAND_KINDS)
        if kind not in kinds:
            raise RequestError(400, f"kind: expected one of {', '.join(kinds)}, got {shown(kind)}")
        if kind in NATIVE_ONLY_KINDS and not self.native:
            what = "--model none" if self.model is None else f"2D model {self.model_name}"
            raise RequestError(
                400, f"{kind}: needs a native 3D model that takes {kind}s (e.g. --model "
                f"nninteractive); this session runs {what}"
            )  # fmt: skip
        view, k = self._slice(body.get("view"), body.get("slice"))
        if self.model is None and kind in ("click_pos", "click_neg", "propagate"):
            raise RequestError(400, f"kind: {kind} needs a model; this session runs --model none")
        if self.native and kind in MODEL_KINDS:
            return self._native_interact(kind, view, k, body)
        label = self.active
        lab = self.labels[label]
        latency: float | None = None
        extra: dict[str, Any] = {}
        self._last_encode_ms = 0.0
        held = self.prompts.get((label, view, k))
        prev_prompt = (
            None if held is None else _Prompt(held.box, [list(c) for c in held.clicks], held.logits)
        )
        if kind == "box":
            p2 = self._points(view, body.get("box"), "box", 2)[:2]
            box = [*np.minimum(p2[0], p2[1]).tolist(), *np.maximum(p2[0], p2[1]).tolist()]
            coords: Any = box
            if self.model is None:
                m = np.zeros(view_array(self.labels_map, view).shape[1:], bool)
                m[int(box[1]) : int(box[3]) + 1, int(box[0]) : int(box[2]) + 1] = True
                n = self._write(kind, view, {k: m}, label, replace=False)
            else:
                p = self.prompts[(label, view, k)] = _Prompt(box=box)
                m, latency = self._decode(view, k, p, first=True)
                n = self._write(kind, view, {k: m}, label, replace=True)
        elif kind in ("click_pos", "click_neg"):
            x, y = self._points(view, body.get("point"), "point", 1)[0].tolist()
            p = self.prompts.setdefault((label, view, k), _Prompt())
            p.clicks.append([x, y, 1 if kind == "click_pos" else 0])
            coords = [x, y]
            m, latency = self._decode(view, k, p, first=p.box is None and len(p.clicks) == 1)
            n = self._write(kind, view, {k: m}, label, replace=True)
        elif kind == "propagate":
            coords = None
            n, latency, extra = self._propagate(view, k, label, body)
        elif kind in ("brush", "erase"):
            pts = self._points(view, body.get("points"), "points", 1).astype(np.int32)
            r = body.get("radius", 5)
            if not isinstance(r, int | float) or not 0 <= r <= MAX_BRUSH_RADIUS:
                raise RequestError(400, f"radius: expected 0..{MAX_BRUSH_RADIUS}, got {shown(r)}")
            canvas = np.zeros(view_array(self.labels_map, view).shape[1:], np.uint8)
            rad = round(r)
            for q in pts:
                cv2.circle(canvas, (int(q[0]), int(q[1])), rad, 1, -1)
            for a, b in itertools.pairwise(pts):
                cv2.line(canvas, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1, 2 * rad + 1)
            n = self._write(kind, view, {k: canvas.astype(bool)}, label, replace=False,
                            erase=kind == "erase")  # fmt: skip
            coords = {"points": pts.tolist(), "radius": rad}
        else:  # polygon
            pts = self._points(view, body.get("points"), "points", 3).astype(np.int32)
            canvas = np.zeros(view_array(self.labels_map, view).shape[1:], np.uint8)
            cv2.fillPoly(canvas, [pts.reshape(-1, 1, 2)], 1)
            erase = bool(body.get("erase", False))
            n = self._write(kind, view, {k: canvas.astype(bool)}, label, replace=False,
                            erase=erase)  # fmt: skip
            coords = {"points": pts.tolist(), "erase": erase}
        if kind in ("box", "click_pos", "click_neg") and self.model is not None:
            self.history[-1].prompt = ((label, view, k), prev_prompt)  # undo restores it
        if kind in MODEL_KINDS and self.model is not None:
            lab.model_used = lab.model_used or n > 0
        elif kind in HAND_KINDS and lab.model_used:
            lab.hand_voxels_after_model += n
        lab.counts[kind] += 1
        if latency is not None:
            lab.latencies.append(latency)
        self._event(
            kind, label, view=view, slice=k, coords=coords, voxels_changed=n,
            latency_ms=None if latency is None else round(latency, 3),
            encode_ms=round(self._last_encode_ms, 3) if self.model is not None else None,
            model=self.model_name, model_sha256=self.model_sha256 or None,
            voxels=int(self.voxel_counts[label]), **extra,
        )  # fmt: skip
        return {"latency_ms": latency, "voxels_changed": n, **extra}

    def _propagate(self, view: str, k: int, label: int, body: dict[str, Any]
                   ) -> tuple[int, float, dict[str, Any]]:  # fmt: skip
        """Propagate ``label`` from slice ``k`` of ``view`` by the session's rule
        (:attr:`propagation`); writes the reached slices, returns (voxels changed, ms, log)."""
        start = view_array(self.labels_map, view)[k] == label
        if not start.any():
            raise RequestError(
                400, f"propagate: label {label} is empty on {view} slice {k}; draw it there first"
            )
        direction = body.get("direction", "both")
        dirs = {"both": (1, -1), "up": (1,), "down": (-1,)}.get(direction)
        if dirs is None:
            raise RequestError(400, f"direction: expected both, up or down, got {shown(direction)}")
        reach = body.get("max_slices")
        limit = None
        if reach is not None:
            if not isinstance(reach, int) or isinstance(reach, bool) or reach < 1:
                raise RequestError(400, f"max_slices: expected an integer >= 1, got {shown(reach)}")
            limit = (max(0, k - reach), min(self.depth(view) - 1, k + reach))
        t0 = time.perf_counter()
        if self.propagation == PROPAGATION_VIDEO:
            out, extra = self._propagate_video(view, k, start, dirs, limit)
        else:
            out, extra = self._propagate_slices(view, k, label, start, dirs, limit)
        seconds = time.perf_counter() - t0
        reached = {j: m for j, m in out.items() if j != k}
        n = self._write("propagate", view, reached, label, replace=True)
        self.labels[label].propagated_slices += len(reached)
        ks = sorted(out)
        extra = {"method": self.propagation, "slices_reached": [ks[0], ks[-1]],
                 "n_slices": len(reached), **extra}  # fmt: skip
        return n, seconds * 1000.0, extra

    def _propagate_slices(
        self, view: str, k: int, label: int, start: np.ndarray, dirs: tuple[int, ...],
        limit: tuple[int, int] | None,
    ) -> tuple[dict[int, np.ndarray], dict[str, Any]]:  # fmt: skip
        """The ``propagate`` protocol's rule (box + logits of the previous slice, slice by slice
        from the embeddings store)."""
        from sambench.volumes.protocols.propagate import propagate_from
        from sambench.volumes.slices import SliceOutput

        p = self.prompts.get((label, view, k))
        logits = p.logits if p is not None else None
        with self.emb_lock:
            sp = self._predictor(view)
            out = propagate_from(
                sp,
                k,
                SliceOutput(start, cast(np.ndarray, logits), 1.0),
                directions=dirs,
                limit=limit,
            )
            self.encoder_passes += sp.encodes
        return out, {"decodes": sp.decodes, "encodes": sp.encodes}

    def _propagate_video(
        self, view: str, k: int, start: np.ndarray, dirs: tuple[int, ...],
        limit: tuple[int, int] | None,
    ) -> tuple[dict[int, np.ndarray], dict[str, Any]]:  # fmt: skip
        """SAM 2's official video predictor over the view's slices within the reach (the
        sam2-video protocol's code, :func:`~sambench.volumes.protocols.sam2_video.iter_video_masks`):
        slice ``k``'s mask of the label (``add_new_mask``), then ``propagate_in_video`` forward
        and in reverse, each direction ending at its first empty mask."""
        from sambench.annotate.volume_source import default_limit
        from sambench.volumes.protocols.sam2_video import (
            iter_video_masks,
            video_predictor,
            video_state_bytes,
        )

        assert self.vol is not None and self.model is not None
        lo, hi = (0, self.depth(view) - 1) if limit is None else limit
        first, last = (lo if -1 in dirs else k), (hi if 1 in dirs else k)
        n_frames = last - first + 1
        size = int(cast(Any, self.model).model.image_size)
        need = video_state_bytes(n_frames, size)
        budget = self.limit_bytes if self.limit_bytes is not None else default_limit()
        if need > budget:
            each = (budget // video_state_bytes(1, size) - 1) // len(dirs)
            fix = f"set a reach of at most {each} slices" if each >= 1 else "raise --max-memory-gb"
            raise RequestError(
                400, f"propagate: SAM 2's video predictor holds every slice it is given as "
                f"3x{size}x{size} float32: {n_frames} slices need {need / 1e9:.2f} GB, over the "
                f"limit of {budget / 1e9:.2f} GB; {fix}"
            )  # fmt: skip
        with self.emb_lock:  # the background encoder waits meanwhile (one model at a time)
            slices = _ModelSlices(view_array(self.vol.image, view))
            frames = np.stack([slices[j] for j in range(first, last + 1)])
            predictor = video_predictor(self.model)
            out = {
                first + j: m
                for j, m in iter_video_masks(
                    predictor, frames, k - first, mask=start, directions=dirs,
                    stop_when_empty=True,
                )
            }  # fmt: skip
        return out, {"prompt": "mask", "frames": [first, last]}

    # ------------------------------------------------------------------ native 3D model
    def _native_model(self) -> VolumeModel:
        return cast(VolumeModel, self.model)

    def _native_open(self, vol: OpenVolume) -> None:
        """Open ``vol``'s source intensities in the native model (see the module docstring)."""
        from sambench.volumes.native import check_shape

        model = self._native_model()
        if vol.item.kind == "image2d":
            raise RequestError(
                400, f"{vol.item.item_id}: a 2D image; native 3D model {self.model_name} needs a "
                "volume (annotate 2D images with --model litemedsam or none)"
            )  # fmt: skip
        check_shape(model, vol.item.item_id, str(vol.item.path), vol.shape)
        sx, sy, sz = vol.grid.canonical_spacing
        model.open(
            VolumeImage(
                intensities=vol.image, spacing=(sz, sy, sx), slice_axis=2,
                volume_id=vol.item.item_id, source=str(vol.item.path),
            )
        )  # fmt: skip
        self._native_label, self._native_sync = None, None

    def _native_reset(self) -> None:
        import inspect

        model = self._native_model()
        if "seed" in inspect.signature(model.reset).parameters:
            model.reset(seed=NATIVE_SEED)  # type: ignore[call-arg]
        else:
            model.reset()

    def _native_resync(self, label: int) -> str | None:
        """Make the model hold ``label``'s current voxels (see the module docstring); returns
        what was done (``reset``, ``initial_mask``) or None when the model was in step."""
        model = self._native_model()
        cur = self.labels_map == label
        if (self._native_label == label and self._native_sync is not None
                and np.array_equal(cur, self._native_sync)):  # fmt: skip
            return None
        self._native_reset()
        how = "reset"
        if cur.any() and "initial_mask" in model.supports:
            model.apply(InitialMaskInteraction(cur, refine=False))
            how = "initial_mask"
        self._native_label, self._native_sync = label, None
        return how

    def _native_record(self, kind: str, view: str, k: int, body: dict[str, Any]
                       ) -> tuple[Interaction, Any]:  # fmt: skip
        """The interaction record of a box, click, scribble or lasso on slice ``k`` of ``view``
        (canonical (z, y, x) voxels) and the page's coordinates for the log."""
        shape = self.labels_map.shape
        if kind in NATIVE_ONLY_KINDS:
            return self._native_stroke(kind, view, k, body)
        if kind == "box":
            p2 = self._points(view, body.get("box"), "box", 2)[:2]
            (c0, r0), (c1, r1) = np.minimum(p2[0], p2[1]), np.maximum(p2[0], p2[1])
            a = canonical_zyx(shape, view, k, int(r0), int(c0))
            b = canonical_zyx(shape, view, k, int(r1), int(c1))
            lo = [min(u, v) for u, v in zip(a, b, strict=True)]
            hi = [max(u, v) for u, v in zip(a, b, strict=True)]
            box = BoxInteraction(lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
            return box, [float(c0), float(r0), float(c1), float(r1)]
        x, y = self._points(view, body.get("point"), "point", 1)[0].tolist()
        z, yy, xx = canonical_zyx(shape, view, k, int(y), int(x))
        return PointInteraction(z, yy, xx, positive=kind == "click_pos"), [x, y]

    def _native_stroke(self, kind: str, view: str, k: int, body: dict[str, Any]
                       ) -> tuple[Interaction, Any]:  # fmt: skip
        """A scribble (open polyline) or lasso (closed outline) drawn on slice ``k`` of
        ``view``: page pixels ``body["points"]`` ([x, y] = (column, row), in drawing order, at
        most ``MAX_POINTS``, inside the slice; rounded to pixel centres, consecutive repeats
        dropped) become a :class:`ScribbleInteraction` / :class:`LassoInteraction` on the
        canonical plane of that slice: ``axis`` 0 (axial: z = k, points (y, x)), 1 (coronal:
        y = k, points (z, x)) or 2 (sagittal: x = k, points (z, y)), each point through the
        view's inverse index (:func:`canonical_zyx`). ``body["positive"]``: True (default) adds
        the object, False removes. Returns the record and the page's coordinates for the log."""
        positive = body.get("positive", True)
        if not isinstance(positive, bool):
            raise RequestError(400, f"positive: expected true or false, got {shown(positive)}")
        need = 3 if kind == "lasso" else 1
        pts = self._points(view, body.get("points"), "points", need).astype(np.int64)
        keep = np.ones(len(pts), bool)
        keep[1:] = (pts[1:] != pts[:-1]).any(axis=1)
        pts = pts[keep]
        if kind == "lasso" and len(pts) > 1 and (pts[0] == pts[-1]).all():
            pts = pts[:-1]  # the outline closes itself: a repeated first point adds nothing
        if len(np.unique(pts, axis=0)) < need:
            raise RequestError(
                400, f"points: a {kind} needs at least {need} distinct pixels, got "
                f"{len(np.unique(pts, axis=0))}"
            )  # fmt: skip
        shape = self.labels_map.shape
        axis = {"axial": 0, "coronal": 1, "sagittal": 2}[view]
        a, b = (j for j in range(3) if j != axis)  # the plane's axes, in (z, y, x) order
        zyx = [canonical_zyx(shape, view, k, int(y), int(x)) for x, y in pts]
        index = zyx[0][axis]  # == k: slice k of a view is the plane k along its axis
        plane = tuple((float(p[a]), float(p[b])) for p in zyx)
        coords = {"points": pts.tolist(), "positive": positive}
        if kind == "scribble":
            return ScribbleInteraction(index, plane, positive=positive, axis=axis), coords
        return LassoInteraction(index, plane, positive=positive, axis=axis), coords

    def _native_interact(self, kind: str, view: str, k: int, body: dict[str, Any]
                         ) -> dict[str, Any]:  # fmt: skip
        """A box, click, scribble or lasso of the active label through the native model: its 3D mask replaces
        the label; logged with the interaction record, latency and the model's identity."""
        from dataclasses import asdict

        from sambench.errors import OptionError

        if kind == "propagate":
            raise RequestError(
                400, f"propagate: not needed with native 3D model {self.model_name} (each "
                "interaction already returns the whole 3D mask)"
            )  # fmt: skip
        label = self.active
        lab = self.labels[label]
        interaction, coords = self._native_record(kind, view, k, body)
        model = self._native_model()
        if interaction.kind not in model.supports:
            raise RequestError(
                400, f"{kind}: model {self.model_name} does not take a {interaction.kind} "
                f"interaction (its weights take {', '.join(sorted(model.supports))})"
            )  # fmt: skip
        t_sync = time.perf_counter()
        synced = self._native_resync(label)
        sync_ms = (time.perf_counter() - t_sync) * 1000.0
        t0 = time.perf_counter()
        try:
            mask = np.asarray(model.apply(interaction), dtype=bool)
        except (OptionError, ValueError) as e:
            self._native_label = None  # the model's state is unknown: re-sync next time
            raise RequestError(400, f"{kind}: {' '.join(str(e).split())}") from None
        latency = (time.perf_counter() - t0) * 1000.0
        if mask.shape != self.labels_map.shape:
            raise RequestError(
                500, f"model {self.model_name} returned shape {mask.shape}, expected "
                f"{self.labels_map.shape}"
            )  # fmt: skip
        ax = view_array(mask, "axial")
        cur_any = (self.labels_map == label).any(axis=(1, 2))
        zs = np.nonzero(mask.any(axis=(1, 2)) | cur_any)[0]
        n = self._write(kind, "axial", {int(z): ax[z] for z in zs}, label, replace=True)
        self._native_sync = self.labels_map == label
        self._native_label = label
        lab.model_used = lab.model_used or n > 0
        lab.counts[kind] += 1
        lab.latencies.append(latency)
        record = {"kind": interaction.kind, **asdict(interaction)}  # type: ignore[call-overload]
        self._event(
            kind, label, view=view, slice=k, coords=coords, interaction=record,
            voxels_changed=n, latency_ms=round(latency, 3), sync=synced,
            sync_ms=round(sync_ms, 3) if synced else None, encode_ms=None,
            model=self.model_name, model_kind="3d", model_sha256=self.model_sha256 or None,
            voxels=int(self.voxel_counts[label]),
        )  # fmt: skip
        return {"latency_ms": latency, "voxels_changed": n, "model_kind": "3d",
                "interaction": record}  # fmt: skip

    def undo(self) -> None:
        if not self.history:
            raise RequestError(400, "undo: nothing to undo on this volume")
        ch = self.history.pop()
        flat = self.labels_map.reshape(-1)
        after = flat[ch.index].copy()
        flat[ch.index] = ch.before
        if ch.index.size:
            self.voxel_counts -= np.bincount(after, minlength=256)
            self.voxel_counts += np.bincount(ch.before, minlength=256)
        if ch.prompt is not None:
            key, prev = ch.prompt
            if prev is None:
                self.prompts.pop(key, None)
            else:
                self.prompts[key] = prev
        lab = self.labels.get(ch.label)
        if lab is not None:
            lab.counts["undo"] += 1
            if ch.kind in HAND_KINDS and lab.model_used:
                lab.hand_voxels_after_model = max(0, lab.hand_voxels_after_model - ch.index.size)
        self._event(
            "undo", ch.label, undone=ch.kind, voxels_changed=int((after != ch.before).sum())
        )

    # ------------------------------------------------------------------ accept
    def accept(self) -> dict[str, str]:
        """Export the volume's label map (NIfTI on the source grid, DICOM-SEG for a DICOM
        source, a 3D Slicer folder), record each label, and open the next pending volume."""
        from sambench.annotate.export import export_volume

        assert self.vol is not None
        self._event("accept", self.active)
        present = {int(v) for v in np.unique(self.labels_map) if v}
        labels = [lab for v, lab in sorted(self.labels.items()) if v in present]
        paths = export_volume(
            self.session_dir / VS.EXPORT_DIR / self.item.item_id,
            self.vol,
            self.labels_map,
            labels,
            model_name=self.model_name,
            model_sha256=self.model_sha256,
            annotator=self.info["annotator"],
            algorithm_parameters=self.algorithm_parameters(),
            defined=[lab for _, lab in sorted(self.labels.items())],
        )
        now = VS.utc_now()
        for lab in labels:
            n = {f"n_{k}": int(v) for k, v in lab.counts.items()}
            VS.append_object(
                self.session_dir,
                {
                    "annotator": self.info["annotator"], "mode": self.info["mode"],
                    "model": self.model_name, "item_id": self.item.item_id,
                    "label_value": lab.value, "object_name": lab.name,
                    "made": "SEMIAUTOMATIC" if lab.model_used else "MANUAL",
                    "started_utc": self.started_utc, "accepted_utc": now,
                    "active_s": round(lab.active_s, 3),
                    "volume_active_s": round(self.volume_active_s, 3), **n,
                    "n_interactions": sum(n.values()),
                    "hand_voxels_after_model": int(lab.hand_voxels_after_model),
                    "propagated_slices": int(lab.propagated_slices),
                    "voxels": int(np.count_nonzero(self.labels_map == lab.value)),
                    "mean_latency_ms": float(np.mean(lab.latencies)) if lab.latencies else None,
                    "labels_path": paths["nifti"],
                    "reference_path": None if self.item.reference is None
                    else str(self.item.reference),
                    "source_path": str(self.item.path),
                },
            )  # fmt: skip
        self._event("volume_accepted", None, exports=paths)
        self.accepted.add(self.item.item_id)
        pending = [i for i in self.item_ids() if i not in self.accepted]
        if pending:
            self.open(pending[0])
        return paths

    def algorithm_parameters(self) -> dict[str, str]:
        """What the DICOM-SEG's algorithm identification records about the model besides its
        name and checkpoint SHA-256: how its masks were made (and the package, for a native
        model)."""
        if not self.native:
            return {"propagation": PROPAGATION_TEXT[self.propagation or PROPAGATION_SLICES]}
        info = self._native_model().info()
        return {
            "model_kind": "native 3D: each interaction returns the whole 3D mask",
            "package": str(info.get("package", "")),
            "checkpoint": str(info.get("checkpoint", "")),
        }

    def close(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._worker is not None:
            self._worker.join(timeout=30)  # an encoder pass in flight ends first
        VS.append_event(self.session_dir, {"type": "session_close"})

    # ------------------------------------------------------------------ the page's view
    def view(self) -> dict[str, Any]:
        assert self.vol is not None
        sp = self.vol.grid.canonical_spacing
        views = {
            v: {"depth": self.depth(v),
                "rows": int(view_array(self.labels_map, v).shape[1]),
                "cols": int(view_array(self.labels_map, v).shape[2]),
                "pixel_mm": list(view_spacing(sp, v)),
                "slice_mm": view_depth_spacing(sp, v)}
            for v in VIEWS
        }  # fmt: skip
        vmin, vmax, lo, hi = self.window
        return {
            "annotator": self.info["annotator"],
            "mode": self.info["mode"],
            "model": self.model_name,
            "model_kind": "3d" if self.native else ("2d" if self.model is not None else None),
            "native_prompts": sorted(set(NATIVE_ONLY_KINDS) & self._native_model().supports)
            if self.native else [],
            "propagation": self.propagation,
            "item_id": self.item.item_id,
            "items": [{"item_id": i, "accepted": i in self.accepted} for i in self.item_ids()],
            "kind": self.item.kind,
            "modality": self.item.modality,
            "views": views,
            "range": [vmin, vmax],
            "auto_window": [lo, hi],
            "labels": [lab.public() for _, lab in sorted(self.labels.items())],
            "active": self.active,
            "overlap": self.overlap,
            "can_undo": bool(self.history),
            "has_reference": self.vol.reference is not None,
            "voxels": {str(v): int(c) for v, c in enumerate(self.voxel_counts) if v and c},
        }  # fmt: skip


def propagation_rule(model: object) -> str | None:
    """How ``propagate`` runs with ``model``: ``sam2-video`` for a SAM 2-family adapter (SAM 2,
    SAM 2.1, MedSAM2: the official video predictor), ``propagate-protocol`` for another 2D
    model, None without a model or with a native 3D one (its answers are already 3D)."""
    if model is None or is_volume_model(model):
        return None
    from sambench.models.sam2 import Sam2Adapter

    return PROPAGATION_VIDEO if isinstance(model, Sam2Adapter) else PROPAGATION_SLICES


def on_lock(state: VolumeState, fn: Callable[[], Any]) -> Any:
    with state.lock:
        return fn()
