"""SAM 3 through Hugging Face ``transformers`` (``--model sam3``) from a local folder.

The folder is a copy of ``facebook/sam3`` (or a fine-tune saved the same way): ``config.json``
of ``model_type`` ``sam3_video`` (a ``detector_config`` and a ``tracker_config``), the weights
(``model.safetensors`` or a sharded index), the processor (``processor_config.json`` holding the
image processor, or ``preprocessor_config.json``) and the CLIP tokenizer (``tokenizer.json``, or
``vocab.json`` + ``merges.txt``). It is opened with ``local_files_only=True``: nothing is
downloaded. One model, two heads, both transformers' own code:

- the **tracker head** (``Sam3TrackerModel`` + ``Sam3TrackerProcessor``, SAM 2's interface):
  points and boxes, so the paper's strategies S2-S6, prompt shift and clicks run unchanged
  (:class:`~sambench.models.hf_sam.HfSamAdapter`, kind ``sam3_tracker``);
- the **concept head** (``Sam3Model`` + ``Sam3Processor``): a noun phrase and/or exemplar boxes
  -> every instance (:meth:`Sam3Adapter.segment_concepts`): the processor tokenizes the text
  (padded to 32 tokens) and normalizes the boxes (XYXY pixels -> cxcywh in [0, 1]); the forward
  runs from the cached vision features (``vision_embeds``); ``post_process_instance_segmentation``
  keeps the queries whose score (sigmoid(logit) x sigmoid(presence)) exceeds
  :data:`SCORE_THRESHOLD` and binarizes their masks (bilinear to HxW, sigmoid > 0.5).

``embed`` runs both vision encoders (the tracker's, then the detector's: the published weights
share the ViT backbone, but the two transformers classes each hold a copy), so an image costs
two encoder passes. The detector's four FPN levels and their position encodings ride in the
embedding's ``extras`` (``concept_fpn_<i>``, ``concept_pos_<i>``), so the embedding cache keeps
them too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sambench.errors import OptionError
from sambench.models.base import Embedding, Instances, Prediction
from sambench.models.hf_sam import HfSamAdapter, _folder_sha256
from sambench.models.sam_family import as_rgb_uint8
from sambench.prompts.types import ConceptPrompt, Prompts
from sambench.version import __version__

MODEL_TYPE = "sam3_video"
"""``config.json`` ``model_type`` of a full SAM 3 folder (detector + tracker)."""
SCORE_THRESHOLD = 0.5
"""Instances kept by the concept head: score > 0.5, the default confidence threshold of the
authors' image predictor (``Sam3Processor(confidence_threshold=0.5)`` in facebookresearch/sam3)
and of transformers' SAM 3 examples."""
MASK_THRESHOLD = 0.5
"""Mask pixels kept: sigmoid(logit) > 0.5 (``post_process_instance_segmentation``'s default)."""
FPN_KEY = "concept_fpn_"
POS_KEY = "concept_pos_"


def missing_sam3_files(folder: Path) -> list[str]:
    """What a SAM 3 folder lacks, in words (empty when complete)."""
    have = {p.name for p in folder.iterdir() if p.is_file()}
    lacks = []
    if "config.json" not in have:
        lacks.append("config.json")
    if not ({"model.safetensors", "model.safetensors.index.json"} & have):
        lacks.append("model.safetensors (the weights)")
    image_proc = "preprocessor_config.json" in have
    if not image_proc and "processor_config.json" in have:
        try:
            cfg = json.loads((folder / "processor_config.json").read_text(encoding="utf-8"))
            image_proc = isinstance(cfg, dict) and "image_processor" in cfg
        except (json.JSONDecodeError, UnicodeDecodeError):
            image_proc = False
    if not image_proc:
        lacks.append("the image processor (processor_config.json or preprocessor_config.json)")
    if "tokenizer.json" not in have and not {"vocab.json", "merges.txt"} <= have:
        lacks.append("a tokenizer (tokenizer.json, or vocab.json + merges.txt)")
    return lacks


def check_sam3_folder(folder: str | Path | None) -> Path:
    """The ``--checkpoint`` folder of ``--model sam3``, checked to be a complete SAM 3 folder.

    Raises :class:`~sambench.errors.OptionError` naming ``--checkpoint``, the folder and every
    file it lacks (e.g. no tokenizer), or its ``model_type`` when it is not ``sam3_video``.
    """
    if folder is None:
        raise OptionError(
            "--checkpoint",
            "model 'sam3' needs a local copy of the Hugging Face folder facebook/sam3 "
            "(config.json, model.safetensors, processor and tokenizer); nothing is downloaded",
        )
    p = Path(folder)
    if not p.is_dir():
        what = "a file" if p.exists() else "no such folder"
        raise OptionError(
            "--checkpoint", f"{p}: {what}; model 'sam3' expects a copy of facebook/sam3"
        )
    lacks = missing_sam3_files(p)
    if lacks:
        raise OptionError(
            "--checkpoint",
            f"{p}: lacks {'; '.join(lacks)}; model 'sam3' expects a complete copy of facebook/sam3",
        )
    try:
        model_type = json.loads((p / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise OptionError(
            "--checkpoint", f"{p / 'config.json'}: not a readable JSON config ({e})"
        ) from None
    if model_type != MODEL_TYPE:
        raise OptionError(
            "--checkpoint",
            f"{p / 'config.json'}: model_type {model_type!r}, but model 'sam3' expects "
            f"{MODEL_TYPE!r} (facebook/sam3: detector + tracker)",
        )
    return p


class Sam3Adapter:
    """SAM 3's two heads over one embedding (see the module docstring).

    A :class:`~sambench.models.base.PromptableModel` (``embed``, ``predict`` through the tracker
    head) and a :class:`~sambench.models.base.ConceptModel` (``segment_concepts`` through the
    concept head). ``score_threshold`` / ``mask_threshold``: the concept head's instance and
    pixel thresholds.
    """

    takes_text = True

    def __init__(
        self,
        concept_model: Any,
        concept_processor: Any,
        tracker: HfSamAdapter,
        *,
        checkpoint_sha256: str | None = None,
        score_threshold: float = SCORE_THRESHOLD,
        mask_threshold: float = MASK_THRESHOLD,
    ) -> None:
        self.name = "sam3"
        self.tracker = tracker
        self.device = tracker.device
        self.concept_model = concept_model.to(self.device).eval()
        self.processor = concept_processor
        self.checkpoint_sha256 = checkpoint_sha256
        self.decoder_sha256: str | None = None
        self.score_threshold = float(score_threshold)
        self.mask_threshold = float(mask_threshold)
        self.preprocessing = tracker.preprocessing
        self.preprocessing.description += (
            f"; concept head: Sam3Processor resize to {int(concept_processor.target_size)}, "
            f"instances score > {self.score_threshold}, mask sigmoid > {self.mask_threshold}"
        )

    # ------------------------------------------------------------------ shared by the engine
    def decode_embedding(self, *args: Any, **kwargs: Any) -> Any:
        """S1's decoder call (:class:`~sambench.models.sam_family.ChunkedDecoding`), the
        tracker head's."""
        return self.tracker.decode_embedding(*args, **kwargs)

    def postprocess(self, low_res_logits: torch.Tensor, embedding: Embedding) -> torch.Tensor:
        """Low-res logits -> HxW logits, the tracker head's ``post_process_masks``."""
        return self.tracker.postprocess(low_res_logits, embedding)

    @property
    def decode_chunk(self) -> int:
        return self.tracker.decode_chunk

    @decode_chunk.setter
    def decode_chunk(self, value: int) -> None:
        self.tracker.decode_chunk = value

    def embed(self, image: np.ndarray) -> Embedding:
        """Encode one HxW or HxWx3 uint8 image with both heads' vision encoders."""
        rgb = as_rgb_uint8(image)
        emb = self.tracker.embed(rgb)
        inputs = self.processor(images=rgb, return_tensors="pt")
        with torch.inference_mode():
            vis = self.concept_model.get_vision_features(
                pixel_values=inputs["pixel_values"].to(self.device)
            )
        extras = dict(emb.extras)
        for i, t in enumerate(vis.fpn_hidden_states):
            extras[f"{FPN_KEY}{i}"] = t
        for i, t in enumerate(vis.fpn_position_encoding):
            extras[f"{POS_KEY}{i}"] = t
        return Embedding(emb.features, emb.original_size, emb.input_size, extras)

    def predict(
        self,
        embedding: Embedding,
        prompts: Sequence[Prompts],
        multimask_output: bool | None = None,
    ) -> Prediction:
        """Points / boxes / mask logits through the tracker head (SAM 2's interface)."""
        return self.tracker.predict(embedding, prompts, multimask_output=multimask_output)

    def to_model_coords(self, points: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        return self.tracker.to_model_coords(points, original_size)

    def to_model_boxes(self, boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
        return self.tracker.to_model_boxes(boxes, original_size)

    @property
    def mask_input_size(self) -> tuple[int, int]:
        return self.tracker.mask_input_size

    # ------------------------------------------------------------------ the concept head
    def _vision_embeds(self, embedding: Embedding) -> Any:
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        n = len([k for k in embedding.extras if k.startswith(FPN_KEY)])
        if n == 0:
            raise ValueError(
                "sam3: the embedding has no concept features (concept_fpn_*); "
                "it was not made by Sam3Adapter.embed"
            )
        dev = self.device
        fpn = tuple(embedding.extras[f"{FPN_KEY}{i}"].to(dev) for i in range(n))
        pos = tuple(embedding.extras[f"{POS_KEY}{i}"].to(dev) for i in range(n))
        return Sam3VisionEncoderOutput(fpn_hidden_states=fpn, fpn_position_encoding=pos)

    def concept_inputs(self, prompt: ConceptPrompt, original_size: tuple[int, int]) -> Any:
        """The processor's tensors for one concept prompt (``input_ids``, ``attention_mask``,
        and for exemplars ``input_boxes`` 1xMx4 cxcywh in [0, 1], ``input_boxes_labels`` 1xM)."""
        kw: dict[str, Any] = {}
        if prompt.boxes is not None:
            boxes = np.asarray(prompt.boxes, np.float64).reshape(-1, 4)
            labels = (
                np.ones(len(boxes), np.int64)
                if prompt.box_labels is None
                else np.asarray(prompt.box_labels, np.int64)
            )
            kw["input_boxes"] = [boxes.tolist()]
            kw["input_boxes_labels"] = [labels.tolist()]
        h, w = int(original_size[0]), int(original_size[1])
        return self.processor(text=prompt.text, original_sizes=[[h, w]], return_tensors="pt", **kw)

    def segment_concepts(
        self, embedding: Embedding, prompts: Sequence[ConceptPrompt]
    ) -> list[Instances]:
        """Every instance of each prompt's concept (one forward per prompt)."""
        vision = self._vision_embeds(embedding)
        h, w = (int(v) for v in embedding.original_size)
        out: list[Instances] = []
        for p in prompts:
            inputs = self.concept_inputs(p, (h, w))
            kw = {
                k: inputs[k].to(self.device)
                for k in ("input_ids", "attention_mask", "input_boxes", "input_boxes_labels")
                if k in inputs
            }
            with torch.inference_mode():
                res = self.concept_model(vision_embeds=vision, **kw)
            post = self.processor.post_process_instance_segmentation(
                res,
                threshold=self.score_threshold,
                mask_threshold=self.mask_threshold,
                target_sizes=[(h, w)],
            )[0]
            masks = post["masks"].cpu().numpy().astype(bool).reshape(-1, h, w)
            out.append(
                Instances(
                    masks=masks,
                    scores=post["scores"].float().cpu().numpy().reshape(-1),
                    boxes=post["boxes"].float().cpu().numpy().reshape(-1, 4),
                )
            )
        return out

    def signature(self) -> dict[str, str]:
        """Cache key: model, folder hash, preprocessing and sambench version."""
        return {
            "model": self.name,
            "checkpoint_sha256": self.checkpoint_sha256 or "unhashed",
            "decoder_sha256": "",
            "preprocessing": self.preprocessing.description,
            "sambench_version": __version__,
        }


def build_sam3_adapter(
    checkpoint: str | Path | None, *, device: str | torch.device | None = None
) -> Sam3Adapter:
    """``sam3``: both heads of a local SAM 3 folder (``from_pretrained(folder,
    local_files_only=True)``); :func:`check_sam3_folder` first."""
    folder = check_sam3_folder(checkpoint)
    try:
        import transformers
    except ImportError:
        raise OptionError(
            "--model",
            "'sam3' needs the optional package transformers: "
            'pip install -c constraints.txt "sambench[hf]"',
        ) from None
    try:
        concept = transformers.Sam3Model.from_pretrained(str(folder), local_files_only=True)
        processor = transformers.Sam3Processor.from_pretrained(str(folder), local_files_only=True)
        tracker = transformers.Sam3TrackerModel.from_pretrained(str(folder), local_files_only=True)
        tproc = transformers.Sam3TrackerProcessor.from_pretrained(
            str(folder), local_files_only=True
        )
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise OptionError(
            "--checkpoint", f"{folder}: cannot load SAM 3 (Sam3Model/Sam3TrackerModel) ({first})"
        ) from None
    sha = _folder_sha256(folder)
    head = HfSamAdapter(
        "sam3", tracker, tproc, "sam3_tracker", device=device, checkpoint_sha256=sha
    )
    return Sam3Adapter(concept, processor, head, checkpoint_sha256=sha)
