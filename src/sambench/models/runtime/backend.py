"""ONNX Runtime / OpenVINO sessions behind the SAM family adapter's encoder and decoder calls.

:class:`RuntimeEncoder` replaces ``SamFamilyAdapter.image_encoder`` (an ``nn.Module`` taking the
1x3xSxS float32 model input, returning 1x256x64x64 features on the adapter's device);
:class:`RuntimeDecoder` is ``SamFamilyAdapter.runtime_decoder``, used by ``decode_logits`` when no
gradient is needed (fine-tuning keeps the eager decoder). Both run on the CPU.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sambench.models.precision import openvino_hint
from sambench.models.runtime.graphs import graph_inputs


class Session:
    """One compiled ONNX file: ``session(inputs) -> outputs`` (numpy in, numpy out, in order)."""

    def __init__(self, path: Path, runtime: str, precision: str = "fp32") -> None:
        self.runtime = runtime
        self.path = Path(path)
        self.precision = precision
        if runtime == "onnxruntime":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            # no busy-waiting threads between calls: they would take the CPU from the rest
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._ort = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            self.input_names = [i.name for i in self._ort.get_inputs()]
        elif runtime == "openvino":
            import openvino as ov

            core = ov.Core()
            # f32 unless bf16 is asked for: OpenVINO's CPU default may be bf16 on CPUs that have
            # it (logits off by ~0.5, sambench.models.precision)
            hint = openvino_hint(precision)
            if hint == "bf16" and "BF16" not in core.get_property(
                "CPU", "OPTIMIZATION_CAPABILITIES"
            ):
                warnings.warn(
                    "--precision bf16: this CPU has no bf16 support in OpenVINO; it runs f32",
                    stacklevel=2,
                )
            self._ov = core.compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": hint})
            self.input_names = [i.get_any_name() for i in self._ov.inputs]
        else:
            raise ValueError(f"runtime: expected onnxruntime or openvino, got {runtime!r}")

    def __call__(self, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        feed = {k: np.ascontiguousarray(inputs[k]) for k in self.input_names}
        if self.runtime == "onnxruntime":
            return [np.asarray(o) for o in self._ort.run(None, feed)]
        res = self._ov(feed)
        return [np.asarray(res[o]) for o in self._ov.outputs]


class RuntimeEncoder(nn.Module):
    """The image encoder as an exported graph (same call as the eager module)."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session({"image": x.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out).to(x.device)


class RuntimeDecoder:
    """Prompt encoder + mask decoder as an exported :class:`~.graphs.DecoderGraph`.

    :meth:`decode` has ``decode_logits``' arguments (model coordinates) and returns None when
    the prompts cannot go through the graph (a mask prompt alone): the caller decodes eagerly.
    """

    def __init__(self, session: Session, mask_size: tuple[int, int], chunk: int = 64) -> None:
        self.session = session
        self.mask_size = mask_size
        self.chunk = chunk

    def decode(
        self,
        features: torch.Tensor,
        image_pe: torch.Tensor,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        mask_inputs: torch.Tensor | None,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(BxKx256x256 low-res logits, BxK IoU) on ``features.device``, or None."""
        if points is None and boxes is None:
            return None
        if features.shape[0] != 1:
            return None  # one embedding per prompt set (fine-tuning batches): eager path
        feed = graph_inputs(points, boxes, mask_inputs, self.mask_size)
        feed["image_embeddings"] = features.detach().float().cpu().numpy()
        feed["image_pe"] = image_pe.detach().float().cpu().numpy()
        b = feed["point_coords"].shape[0]
        lows, ious = [], []
        for s in range(0, b, self.chunk):
            part = dict(feed)
            part["point_coords"] = feed["point_coords"][s : s + self.chunk]
            part["point_labels"] = feed["point_labels"][s : s + self.chunk]
            if feed["has_mask_input"][0] > 0:
                part["mask_input"] = feed["mask_input"][s : s + self.chunk]
            low, iou = self.session(part)
            lows.append(low)
            ious.append(iou)
        low_t = torch.from_numpy(np.concatenate(lows)).to(features.device)
        iou_t = torch.from_numpy(np.concatenate(ious)).to(features.device)
        sl = slice(1, None) if multimask_output else slice(0, 1)
        return low_t[:, sl], iou_t[:, sl]
