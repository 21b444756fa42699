"""The concept task on a hand-made image with a scripted concept model: which prompts are asked
(T, T-para, T-neg, E), and how the answers are scored (union metrics, instance metrics)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from sambench.engine.concept_task import ConceptTask, exemplar_box
from sambench.engine.context import ImageContext, ObjectTarget
from sambench.metrics import MetricConfig
from sambench.models.base import Embedding, Instances
from sambench.prompts.phrases import PhraseTable, TargetPhrases
from sambench.prompts.types import ConceptPrompt

H, W = 40, 50


def _rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


BOX_A, BOX_B = _rect(2, 10, 2, 10), _rect(20, 34, 20, 34)  # two instances of "box" (B larger)
DISC = _rect(2, 8, 40, 48)
INVENTED = _rect(30, 35, 2, 7)


class ScriptedConcepts:
    """Answers each prompt from a script: phrase (or "exemplar") -> instance masks."""

    name = "scripted"
    device = "cpu"

    def __init__(self, script: dict[str, list[np.ndarray]]) -> None:
        self.script = script
        self.asked: list[ConceptPrompt] = []

    def segment_concepts(
        self, embedding: Embedding, prompts: Sequence[ConceptPrompt]
    ) -> list[Instances]:
        out = []
        for p in prompts:
            self.asked.append(p)
            masks = self.script.get(p.text or "exemplar", [])
            arr = np.stack(masks) if masks else np.zeros((0, H, W), bool)
            out.append(Instances(arr, np.linspace(0.9, 0.6, len(arr)), np.zeros((len(arr), 4))))
        return out


def _row(name: str, value: int) -> dict[str, object]:
    return {"dataset": "d", "image_id": "img", "object_name": name, "label_value": value}


def _context(model: ScriptedConcepts) -> ImageContext:
    label = np.zeros((H, W), np.uint8)
    label[BOX_A | BOX_B] = 85
    label[DISC] = 170
    label[38:40, 48:50] = 250  # "Gone": in the label, not a manifest object here
    objects = [ObjectTarget(_row("Box", 85), BOX_A | BOX_B), ObjectTarget(_row("Disc", 170), DISC)]
    emb = Embedding(torch.zeros(1, 1, 2, 2), (H, W), (H, W))
    return ImageContext(
        image=np.zeros((H, W), np.uint8),
        objects=objects,
        embedding=emb,
        model=model,  # type: ignore[arg-type]
        metric_config=MetricConfig(),
        multimask=None,
        embed_seconds=0.0,
        embedding_cached=False,
        label=label,
    )


@pytest.fixture()
def table() -> PhraseTable:
    rows = {
        "box": TargetPhrases("Box", ("box", "square"), True),
        "disc": TargetPhrases("Disc", ("disc",), False),
        "cyst": TargetPhrases("Cyst", ("cyst",), True),
        "gone": TargetPhrases("Gone", ("gone",), False),
    }
    return PhraseTable(rows)


def test_prompts_and_scores(table: PhraseTable) -> None:
    model = ScriptedConcepts(
        {
            "box": [BOX_A, _rect(20, 27, 20, 34)],  # A exact; half of B (IoU 0.5: a match)
            "square": [],
            "disc": [DISC],
            "cyst": [INVENTED],
            "exemplar": [BOX_B],
        }
    )
    targets = {"d": {"Box": 85, "Disc": 170, "Cyst": 200, "Gone": 250}}
    task = ConceptTask(("T", "T-para", "T-neg", "E"), table, targets)
    rows = task(_context(model))
    by = {(r["strategy"], r["object_name"], r["phrase_index"]): r for r in rows}
    # asked: T x2, T-para (box, square, disc), E x2, T-neg only Cyst (Gone is in the label)
    assert sorted(k[:2] for k in by) == sorted(
        [
            ("T", "Box"),
            ("T", "Disc"),
            ("T-para", "Box"),
            ("T-para", "Box"),
            ("T-para", "Disc"),
            ("E", "Box"),
            ("E", "Disc"),
            ("T-neg", "Cyst"),
        ]
    )
    t_box = by[("T", "Box", 0)]
    union = BOX_A | _rect(20, 27, 20, 34)
    gt = BOX_A | BOX_B
    inter = int((union & gt).sum())
    assert t_box["dice"] == pytest.approx(100 * 2 * inter / (union.sum() + gt.sum()))
    assert t_box["pred_area"] == int(union.sum()) and t_box["n_instances"] == 2
    assert (t_box["inst_tp"], t_box["inst_fp"], t_box["inst_fn"]) == (2, 0, 0)
    assert t_box["inst_dice_tp"] == pytest.approx(100 * (1.0 + 2 * 98 / (98 + 196)) / 2)
    assert by[("T", "Disc", 0)]["dice"] == pytest.approx(100.0)
    assert np.isnan(by[("T", "Disc", 0)]["inst_f1"])  # not instance-type
    square = by[("T-para", "Box", 1)]
    assert square["phrase"] == "square" and square["n_instances"] == 0 and square["dice"] == 0
    neg = by[("T-neg", "Cyst", 0)]
    assert neg["present"] is False and neg["label_value"] == 200
    assert neg["pred_area"] == 25 and neg["max_instance_score"] == pytest.approx(0.9)
    assert np.isnan(neg["dice"])
    e_box = by[("E", "Box", 0)]
    assert json.loads(str(e_box["prompt"])) == {"boxes": [[20, 20, 33, 33]], "box_labels": [1]}
    assert e_box["phrase"] == "" and e_box["inst_tp"] == 1 and e_box["inst_fn"] == 1


def test_exemplar_box_is_the_largest_component() -> None:
    assert exemplar_box(BOX_A | BOX_B).tolist() == [20, 20, 33, 33]
    assert exemplar_box(DISC).tolist() == [40, 2, 47, 7]
    with pytest.raises(ValueError, match="empty"):
        exemplar_box(np.zeros((3, 3), bool))
