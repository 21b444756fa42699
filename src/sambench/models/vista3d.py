"""VISTA3D (He et al. 2024, NVIDIA/MONAI) through MONAI's public inference path: ``--model vista3d``.

Everything runs through MONAI (a core dependency): the network is
``monai.networks.nets.vista3d.VISTA3D`` built as ``monai.networks.nets.vista3d132`` builds it
(SegResNetDS2 encoder, ``PointMappingSAM`` point head, ``ClassMappingClassify`` class head),
each click step is one ``monai.apps.vista3d.inferer.point_based_window_inferer`` call and the
logits go through ``monai.apps.vista3d.transforms.VistaPostTransformd``, as the VISTA3D
bundle's ``configs/inference.json`` (Project-MONAI/model-zoo ``models/vista3d``) does for a
point prompt. The adapter only translates sambench's records and geometry:

- **Orientation**: the volume arrives slice-major (Z, Y, X) (:mod:`sambench.models.volume_base`);
  it is put back in canonical RAS order and transposed to MONAI's (x, y, z) = (R-L, A-P, S-I)
  array order, which is what the bundle's ``Orientationd(axcodes="RAS")`` gives (both are
  nibabel's ``as_closest_canonical``). Masks go back by the inverse permutation.
- **Spacing**: ``Spacing(pixdim=(1.5, 1.5, 1.5), mode="bilinear")`` on a MetaTensor whose
  affine is ``diag(spacing)`` (the bundle's ``resample_spacing``); skipped when the volume is
  already at 1.5 mm. Clicks are mapped to the resampled grid through the two affines
  (rounded, clipped to the grid); the thresholded mask comes back to the source grid with
  ``SpatialResample(mode="nearest")`` (the bundle's ``Invertd(nearest_interp=True)``).
- **Intensity**: ``ScaleIntensityRange(a_min=-963.8247715525971, a_max=1053.678477684517,
  b_min=0, b_max=1, clip=True)`` after resampling (the bundle's values and order). VISTA3D is
  a CT model: this scaling assumes HU; an MRI volume runs but is outside its training domain.
  The bundle's ``CropForegroundd`` (a compute saving that shifts coordinates) is not applied.
- **Clicks**: VISTA3D's point labels are 1 positive, 0 negative (2/3 for its special classes,
  e.g. tumours and vessels, only with a class prompt; -1 pads). Without a class prompt
  (``class_vector=None``, ``prompt_class=None``: the bundle's points-only request) labels are
  1/0. Each :meth:`Vista3dAdapter.apply` calls the inferer with EVERY click of the object
  so far (``point_coords`` [1, N, 3], ``point_labels`` [1, N]), ``prev_mask=None``,
  ``center_only=True`` (a ``roi_size`` window centred on each click, logits averaged where
  windows overlap), ``transpose=True``; the post-transform keeps only the connected
  components holding a positive click and thresholds the logits at 0. Voxels no window reaches
  (NaN in the stitched logits; the bundle writes 255 "not predicted") are background.
- **Class prompts** (:class:`~sambench.models.volume_base.ClassInteraction`, ``label`` = a
  VISTA3D class index, :data:`~sambench.models.vista3d_labels.LABEL_DICT_SOURCE`): as the
  bundle's ``Vista3dInferer`` (``scripts/inferer.py``,
  :data:`~sambench.models.vista3d_labels.INFERER_SOURCE`) and ``Vista3dEvaluator`` run a
  request with ``label_prompt``:

  - *class only*: ``SlidingWindowInfererAdapt(roi_size=patch_size, sw_batch_size=1,
    with_coord=True, padding_mode="replicate")(inputs, network, transpose=True,
    point_coords=None, point_labels=None, class_vector=[[label]], prompt_class=[[label]],
    prev_mask=None, labels=None, label_set=None)`` over the whole (resampled) volume, then
    ``VistaPostTransformd`` with ``label_prompt=[[label]]`` (voxels of value ``label``; no
    connected-component filter);
  - *class + clicks* (every click so far, as above): the point labels go through
    ``VistaPreTransformd(keys="image")`` with ``label_prompt=[label]`` (the bundle's own
    call, whose ``subclass`` / ``labels_dict`` do nothing for the labels accepted here: 0/1
    become 2/3 for its ``special_index`` (25, 26, 27, 28, 29, 117)), then
    ``point_based_window_inferer(..., class_vector=[[label]], prompt_class=[[label]],
    center_only=True, transpose=True)``; inside each click's window VISTA3D merges its class
    and point heads (``VISTA3D.connected_components_combine``), then ``VistaPostTransformd``
    with ``label_prompt``. **One choice of ours**: ``prev_mask`` is the class-only logits
    of the class step, so voxels outside every click's window keep the class prediction
    (MONAI's documented use: "when user click points to perform auto-results correction,
    this can be the auto-results"; the inferer fills "un-calculated place" from it). The
    bundle's one-shot request passes none and leaves those voxels "not predicted" (255).
  - Labels accepted (124, :data:`~sambench.models.vista3d_labels.CLASS_PROMPT_LABELS`): the
    127 classes the bundle segments by class prompt (1..132 less 16, 18, 129, 130, 131: its
    ``check_prompts_format`` and README) less the three groups it splits into subclasses
    (2 kidney, 20 lung, 21 bone: ``subclass`` in ``inference.json``; with clicks the bundle
    refuses them, so sambench refuses them always: prompt the subclasses). Zero-shot
    classes (> 132, clicks only) are not offered. A second class prompt replaces the first; :meth:`reset` forgets it.
  - The bundle runs under ``torch.amp.autocast("cuda")`` (``amp: true``); sambench runs in
    float32 (as for points), so GPU logits differ from the bundle's by half-precision noise.
- **Boxes, scribbles, lassos, initial masks**: VISTA3D has no such prompt. :attr:`supports` is
  ``{"point", "class"}``; any other record is refused with an OptionError naming ``--model``.
  The ``interactive-3d`` protocol therefore starts from clicks only on VISTA3D (no step 0;
  see :func:`sambench.volumes.native.native_interactive_3d`), or from the class prompt with
  ``--start-with class``.

Weights: ``--checkpoint FILE``, the bundle's ``models/model.pt`` (a state dict) or a
``.safetensors`` file, read by :func:`sambench.models.checkpoints.load_state_dict`
(``torch.load(weights_only=True)``; ``{"model": ...}`` / ``{"state_dict": ...}`` unwrapped,
a ``module.`` prefix stripped). The architecture's sizes (encoder width, input channels,
blocks per encoder level, number of class embeddings) are read from the state dict's shapes,
so the released file builds exactly ``vista3d132()`` and a test's tiny random file builds its
tiny network; anything that does not fit is refused with one line naming the file.

Licence: MONAI's code is Apache-2.0; the released VISTA3D weights are under NVIDIA's
non-commercial licence: the bundle's ``LICENSE`` (Project-MONAI/model-zoo ``models/vista3d``,
"Model Weights License": "NVIDIA License", section 3.3 "only may be used ... non-commercially",
i.e. "for research or evaluation purposes only"; its README calls it "NCLS v1"). The file
itself carries no licence, so :data:`LICENSE` is recorded in :meth:`Vista3dAdapter.info`, the
run config and the report.
"""

from __future__ import annotations

import re
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sambench.errors import OptionError
from sambench.models.checkpoints import CheckpointError, load_into, load_state_dict, sha256_file
from sambench.models.vista3d_labels import LABEL_DICT_SOURCE, check_class_label
from sambench.models.volume_base import (
    MODEL_KIND_3D,
    ClassInteraction,
    Interaction,
    PointInteraction,
    VolumeImage,
    check_interaction,
)

A_MIN = -963.8247715525971
A_MAX = 1053.678477684517
"""The bundle's CT intensity window (HU), scaled to [0, 1] with clipping."""
SPACING_MM = (1.5, 1.5, 1.5)
"""The bundle's ``resample_spacing`` (mm, x y z)."""
PATCH_SIZE = (128, 128, 128)
"""The bundle's ``patch_size``: the window around each click (x, y, z voxels at 1.5 mm)."""
LICENSE = (
    "weights: NVIDIA License, non-commercial (research or evaluation only; the MONAI vista3d "
    "bundle's LICENSE, 'NCLS v1' in its README); MONAI code Apache-2.0"
)
EXPECTED = (
    "a VISTA3D state dict (.pt/.pth via torch.load weights_only=True, or .safetensors), e.g. "
    "the MONAI vista3d bundle's models/model.pt"
)
_ENC = "image_encoder.encoder."


def package_version() -> str:
    try:
        return version("monai")
    except PackageNotFoundError:
        return "unknown"


def ras_axes(slice_axis: int) -> tuple[int, int, int]:
    """The permutation taking a slice-major (Z, Y, X) array of a volume sliced across canonical
    axis ``slice_axis`` to MONAI's RAS (x, y, z) order: ``ras = arr.transpose(ras_axes(a))``
    (axial, ``slice_axis=2``: (2, 1, 0))."""
    if slice_axis not in (0, 1, 2):
        raise ValueError(f"slice_axis: expected 0, 1 or 2, got {slice_axis}")
    canonical = [1, 2]  # slice-major -> canonical (z, y, x): np.moveaxis(arr, 0, 2 - slice_axis)
    canonical.insert(2 - slice_axis, 0)
    x, y, z = canonical[2], canonical[1], canonical[0]
    return x, y, z


def architecture(state: dict[str, torch.Tensor], path: Path) -> dict[str, Any]:
    """The VISTA3D sizes a state dict was trained with: ``embed`` (encoder width),
    ``in_channels``, ``blocks_down`` (residual blocks per encoder level), ``n_classes``.
    CheckpointError naming the file when it is not a VISTA3D state dict."""
    conv = state.get(_ENC + "conv_init.weight")
    emb = state.get("class_head.class_embeddings.weight")
    if conv is None or emb is None or conv.ndim != 5:
        raise CheckpointError(
            f"--checkpoint {path}: not a VISTA3D state dict (no {_ENC}conv_init.weight / "
            f"class_head.class_embeddings.weight); expected {EXPECTED}"
        )
    blocks: dict[int, set[int]] = {}
    for key in state:
        m = re.match(re.escape(_ENC) + r"layers\.(\d+)\.blocks\.(\d+)\.", key)
        if m:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    levels = sorted(blocks)
    if not levels or levels != list(range(len(levels))):
        raise CheckpointError(f"--checkpoint {path}: no encoder levels found; expected {EXPECTED}")
    return {
        "embed": int(conv.shape[0]),
        "in_channels": int(conv.shape[1]),
        "blocks_down": tuple(len(blocks[k]) for k in levels),
        "n_classes": int(emb.shape[0]),
    }


def build_network(embed: int, in_channels: int, blocks_down: tuple[int, ...],
                  n_classes: int = 512) -> torch.nn.Module:  # fmt: skip
    """A VISTA3D network as ``monai.networks.nets.vista3d132`` builds it, with the given sizes
    (``vista3d132()`` is ``embed=48, in_channels=1, blocks_down=(1, 2, 2, 4, 4),
    n_classes=512``); random weights."""
    from monai.networks.nets.segresnet_ds import SegResNetDS2
    from monai.networks.nets.vista3d import VISTA3D, ClassMappingClassify, PointMappingSAM

    encoder = SegResNetDS2(in_channels=in_channels, blocks_down=blocks_down, norm="instance",
                           out_channels=embed, init_filters=embed, dsdepth=1)  # fmt: skip
    point_head = PointMappingSAM(feature_size=embed, n_classes=n_classes, last_supported=132)
    class_head = ClassMappingClassify(n_classes=n_classes, feature_size=embed, use_mlp=True)
    return VISTA3D(image_encoder=encoder, class_head=class_head, point_head=point_head)


def load_vista3d(path: str | Path) -> tuple[torch.nn.Module, dict[str, Any], str]:
    """The network with the file's weights (eval mode), its sizes and the file's SHA-256."""
    p = Path(path)
    state = load_state_dict(p)
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    arch = architecture(state, p)
    net = build_network(**arch)
    try:
        load_into(net, state, path=p, model_name="vista3d")
    except CheckpointError as e:
        raise CheckpointError(f"--checkpoint {e}") from None
    return net.eval(), arch, sha256_file(p)


class Vista3dAdapter:
    """A :class:`~sambench.models.volume_base.VolumeModel` over one VISTA3D network (see the
    module docstring for every convention)."""

    name = "vista3d"
    model_kind = MODEL_KIND_3D
    max_shape: tuple[int, int, int] | None = None  # windows around the clicks: any size
    supports = frozenset({"point", "class"})

    def __init__(self, network: torch.nn.Module, checkpoint: Path, device: str,
                 arch: dict[str, Any] | None = None, sha256: str = "",
                 patch_size: tuple[int, int, int] = PATCH_SIZE) -> None:  # fmt: skip
        self.network = network.to(device).eval()
        self.checkpoint = checkpoint
        self.device = device
        self.arch = arch or {}
        self.sha256 = sha256
        self.patch_size = tuple(int(v) for v in patch_size)
        self.image: VolumeImage | None = None
        self._input: torch.Tensor | None = None  # [1, 1, X, Y, Z] on the 1.5 mm grid, scaled
        self._affines: tuple[np.ndarray, np.ndarray] | None = None  # source, resampled (RAS)
        self._ras_shape: tuple[int, int, int] = (0, 0, 0)
        self._axes: tuple[int, int, int] = (2, 1, 0)
        self._points: list[tuple[int, int, int]] = []
        self._labels: list[int] = []
        self._class: int | None = None
        self._class_logits: torch.Tensor | None = None  # [1, 1, X, Y, Z], the class-only step
        self._mask: np.ndarray | None = None

    @property
    def license(self) -> str:
        return LICENSE

    def info(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "model_kind": self.model_kind,
            "package": f"monai {package_version()}",
            "checkpoint": str(self.checkpoint),
            "checkpoint_sha256": self.sha256,
            "license": self.license,
            "supports": sorted(self.supports),
            "architecture": {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.arch.items()
            },
            "patch_size": list(self.patch_size),
            "spacing_mm": list(SPACING_MM),
            "intensity_window": [A_MIN, A_MAX],
            "class_labels": LABEL_DICT_SOURCE,
        }

    def open(self, image: VolumeImage) -> None:
        """RAS (x, y, z) order, 1.5 mm (bilinear), the CT window scaled to [0, 1]."""
        from monai.data import MetaTensor
        from monai.transforms import ScaleIntensityRange, Spacing

        arr = np.asarray(image.intensities, dtype=np.float32)
        if arr.ndim != 3:
            raise ValueError(f"intensities: expected (Z, Y, X), got shape {arr.shape}")
        axes = ras_axes(image.slice_axis)
        ras = np.ascontiguousarray(arr.transpose(axes))
        spacing = [float(image.spacing[a]) for a in axes]
        src_affine = np.diag([*spacing, 1.0])
        img: Any = MetaTensor(torch.from_numpy(ras)[None], affine=torch.from_numpy(src_affine))
        if not np.allclose(spacing, SPACING_MM):
            img = Spacing(pixdim=SPACING_MM, mode="bilinear")(img)
        img = ScaleIntensityRange(a_min=A_MIN, a_max=A_MAX, b_min=0.0, b_max=1.0, clip=True)(img)
        out_affine = np.asarray(img.affine, dtype=np.float64)
        self._input = torch.as_tensor(img.as_tensor())[None].float().to(self.device)
        self._affines = (src_affine, out_affine)
        self._ras_shape = (int(ras.shape[0]), int(ras.shape[1]), int(ras.shape[2]))
        self._axes = axes
        self.image = image
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        """Forget every click and the class prompt (``seed`` is accepted for the protocol;
        VISTA3D draws nothing)."""
        self._need_open()
        self._points, self._labels = [], []
        self._class, self._class_logits = None, None
        assert self.image is not None
        self._mask = np.zeros(self.image.shape, bool)

    def _need_open(self) -> torch.Tensor:
        if self._input is None or self.image is None:
            raise RuntimeError("vista3d: open(image) first")
        return self._input

    def mask(self) -> np.ndarray:
        """The current (Z, Y, X) bool mask (a copy)."""
        self._need_open()
        assert self._mask is not None
        return self._mask.copy()

    def grid_point(self, interaction: PointInteraction) -> tuple[int, int, int]:
        """The click's (x, y, z) index on the resampled RAS grid (rounded, clipped)."""
        inp = self._need_open()
        assert self._affines is not None
        zyx = (interaction.z, interaction.y, interaction.x)
        ras = np.array([*(float(zyx[a]) for a in self._axes), 1.0])
        src, out = self._affines
        idx = (np.linalg.inv(out) @ src @ ras)[:3]
        hi = np.array(inp.shape[-3:]) - 1
        x, y, z = np.clip(np.rint(idx), 0, hi).astype(int)
        return int(x), int(y), int(z)

    def apply(self, interaction: Interaction) -> np.ndarray:
        inp = self._need_open()
        assert self.image is not None
        check_interaction(interaction, self.image.shape)
        if isinstance(interaction, ClassInteraction):
            self._class = check_class_label(interaction.label)
            self._class_logits = self._class_only(inp)
            pred = self._class_points(inp) if self._points else self._post(self._class_logits)
        elif isinstance(interaction, PointInteraction):
            self._points.append(self.grid_point(interaction))
            self._labels.append(1 if interaction.positive else 0)
            pred = self._infer(inp) if self._class is None else self._class_points(inp)
        else:
            raise OptionError(
                "--model",
                f"vista3d takes 3D points only (with optional class prompts); it has no "
                f"{interaction.kind} prompt (run interactive-3d with "
                "--protocol-option initial_box=false, or pick a model that takes boxes)",
            )
        self._mask = self._to_source(pred)
        return self._mask.copy()

    def _class_vector(self) -> torch.Tensor:
        """The bundle's ``label_prompt`` tensor: [B=1, 1] (``Vista3dEvaluator._iteration``)."""
        assert self._class is not None
        return torch.tensor([[self._class]], dtype=torch.long, device=self.device)

    def _class_only(self, inp: torch.Tensor) -> torch.Tensor:
        """``Vista3dInferer`` without points: the sliding window over the whole volume with the
        class head; [1, 1, X, Y, Z] logits (before sigmoid)."""
        from monai.inferers import SlidingWindowInfererAdapt

        cv = self._class_vector()
        inferer = SlidingWindowInfererAdapt(roi_size=self.patch_size, sw_batch_size=1,
                                            with_coord=True, padding_mode="replicate")  # fmt: skip
        with torch.no_grad():
            out = inferer(inp, self.network, transpose=True, point_coords=None,
                          point_labels=None, class_vector=cv, prompt_class=cv.clone(),
                          prev_mask=None, labels=None, label_set=None)  # fmt: skip
        assert isinstance(out, torch.Tensor)
        return torch.as_tensor(out).detach()

    def _class_points(self, inp: torch.Tensor) -> torch.Tensor:
        """``Vista3dInferer`` with the class and every click so far (the point labels through
        the bundle's ``VistaPreTransformd``), ``prev_mask`` the class-only logits; then the
        post-transform with ``label_prompt``: [X, Y, Z] float 0/1."""
        from monai.apps.vista3d.inferer import point_based_window_inferer
        from monai.apps.vista3d.transforms import VistaPreTransformd

        assert self._class is not None and self._class_logits is not None
        pre = VistaPreTransformd(keys="image")(
            {"label_prompt": [self._class], "point_labels": list(self._labels)}
        )
        cv = self._class_vector()
        coords = torch.tensor([self._points], dtype=torch.long, device=self.device)
        labels = torch.tensor([pre["point_labels"]], dtype=torch.long, device=self.device)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Setting affine")
            logits = point_based_window_inferer(
                inputs=inp, roi_size=self.patch_size, predictor=self.network,
                point_coords=coords, point_labels=labels, class_vector=cv,
                prompt_class=cv.clone(), prev_mask=self._class_logits, center_only=True,
                transpose=True,
            )  # fmt: skip
        return self._post(logits, coords, labels)

    def _post(self, logits: torch.Tensor, coords: torch.Tensor | None = None,
              labels: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """``VistaPostTransformd`` with the class as ``label_prompt`` (on a copy: it writes in
        place): [X, Y, Z] float 0/1 (the class's voxels)."""
        from monai.apps.vista3d.transforms import VistaPostTransformd

        data: dict[str, Any] = {"pred": torch.as_tensor(logits)[0].clone(),
                                "label_prompt": self._class_vector()}  # fmt: skip
        if coords is not None:
            data.update(points=coords, point_labels=labels)
        with torch.no_grad():
            pred = VistaPostTransformd(keys="pred")(data)["pred"]
        out = torch.as_tensor(pred)[0].float().cpu()
        return (torch.nan_to_num(out, nan=0.0) > 0).float()

    def _infer(self, inp: torch.Tensor) -> torch.Tensor:
        """point_based_window_inferer over every click, then the bundle's post-transform:
        [X, Y, Z] float 0/1 on the resampled grid (NaN -> 0)."""
        from monai.apps.vista3d.inferer import point_based_window_inferer
        from monai.apps.vista3d.transforms import VistaPostTransformd

        coords = torch.tensor([self._points], dtype=torch.long, device=self.device)
        labels = torch.tensor([self._labels], dtype=torch.long, device=self.device)
        with torch.no_grad(), warnings.catch_warnings():
            # MONAI's own notice when it wraps the stitched logits ("Setting affine, but ...")
            warnings.filterwarnings("ignore", message="Setting affine")
            logits = point_based_window_inferer(
                inputs=inp, roi_size=self.patch_size, predictor=self.network,
                point_coords=coords, point_labels=labels, class_vector=None,
                prompt_class=None, prev_mask=None, center_only=True, transpose=True,
            )  # fmt: skip
            data = {"pred": logits[0], "points": coords, "point_labels": labels}
            pred = VistaPostTransformd(keys="pred")(data)["pred"]
        out = torch.as_tensor(pred)[0].float().cpu()
        return torch.nan_to_num(out, nan=0.0)

    def _to_source(self, pred: torch.Tensor) -> np.ndarray:
        """The [X, Y, Z] 0/1 prediction on the source grid (nearest), slice-major bool."""
        assert self._affines is not None
        src, out = self._affines
        if tuple(pred.shape) != self._ras_shape or not np.allclose(src, out):
            from monai.data import MetaTensor
            from monai.transforms import SpatialResample

            mt = MetaTensor(pred[None], affine=torch.from_numpy(out))
            res = SpatialResample(mode="nearest")(mt, dst_affine=torch.from_numpy(src),
                                                  spatial_size=self._ras_shape)  # fmt: skip
            pred = torch.as_tensor(res)[0]
        ras = pred.numpy() > 0.5
        return np.ascontiguousarray(ras.transpose(np.argsort(self._axes)))


def build_vista3d_adapter(
    checkpoint: str | Path | None,
    device: str = "cpu",
    patch_size: tuple[int, int, int] = PATCH_SIZE,
) -> Vista3dAdapter:
    """``--model vista3d --checkpoint FILE``: the adapter over the user's VISTA3D weights
    (nothing is downloaded). OptionError when no file is given; CheckpointError naming the file
    when it cannot be loaded or is not a VISTA3D state dict. ``patch_size`` is the window
    around each click (the bundle's 128^3; tests use smaller)."""
    if checkpoint is None:
        raise OptionError(
            "--checkpoint",
            f"model 'vista3d' needs {EXPECTED} (nothing is downloaded; see docs/models-3d.md)",
        )
    net, arch, sha = load_vista3d(checkpoint)
    return Vista3dAdapter(net, Path(checkpoint), str(device), arch, sha, patch_size)
