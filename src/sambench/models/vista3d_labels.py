"""VISTA3D's class indices (torch-free): which labels a class prompt may name, and the default
target name -> class index map of ``--start-with class``.

Sources (Project-MONAI/model-zoo, ``models/vista3d``, the bundle sambench follows):
:data:`LABEL_DICT_SOURCE` (the 132 class names and indices), ``configs/inference.json``
(``subclass``: the groups), ``scripts/evaluator.py`` ``check_prompts_format`` and
``docs/README.md`` (the five classes not offered as class prompts).
"""

from __future__ import annotations

from sambench.errors import OptionError

LABEL_DICT_SOURCE = (
    "Project-MONAI/model-zoo models/vista3d/configs/metadata.json (bundle 0.5.7, commit "
    "289353b4bea776ad9f291815f8e70bc48801c3f4): network_data_format.outputs.pred.channel_def"
)
"""Where VISTA3D's class indices are defined (the same 132 names as ``docs/labels.json``)."""
INFERER_SOURCE = (
    "Project-MONAI/model-zoo models/vista3d/scripts/inferer.py (commit "
    "b4aefe0eafab09440f06d1ee26d47c81cdfe2998, bundle 0.5.7: padding_mode='replicate')"
)
UNSUPPORTED_CLASSES = frozenset({16, 18, 129, 130, 131})
"""Classes the bundle refuses as class prompts (``Vista3dEvaluator.check_prompts_format``;
README: "prostate or uterus", "rectum", "kidney mass", "liver tumor", "vertebrae L6")."""
GROUP_CLASSES: dict[int, tuple[int, ...]] = {
    2: (14, 5),
    20: (28, 29, 30, 31, 32),
    21: (*range(33, 57), *range(63, 98), 114, 120, 122),
}
"""The bundle's ``subclass`` (``configs/inference.json``): kidney, lung and bone are segmented
as their parts; refused here (with clicks the bundle refuses them too: prompt a part)."""
CLASS_PROMPT_LABELS = frozenset(range(1, 133)) - UNSUPPORTED_CLASSES - frozenset(GROUP_CLASSES)
"""The VISTA3D class indices a :class:`~sambench.models.volume_base.ClassInteraction` may name (124)."""
DEFAULT_CLASS_MAP: dict[str, int] = {
    "liver": 1,
    "spleen": 3,
    "pancreas": 4,
    "right kidney": 5,
    "aorta": 6,
    "inferior vena cava": 7,
    "right adrenal gland": 8,
    "left adrenal gland": 9,
    "gallbladder": 10,
    "esophagus": 11,
    "stomach": 12,
    "duodenum": 13,
    "left kidney": 14,
    "bladder": 15,
    "portal vein and splenic vein": 17,
    "lung tumor": 23,
    "pancreatic tumor": 24,
    "hepatic vessel": 25,
    "hepatic tumor": 26,
    "colon cancer primaries": 27,
    "heart": 115,
    "prostate": 118,
}
"""Target name -> VISTA3D class index for the common CT targets (the abdominal organs of BTCV /
AbdomenCT-1K / MSD Spleen, Liver and Pancreas, and the MSD tumour / vessel classes under the
names VISTA3D gives them), each name and index exactly as in :data:`LABEL_DICT_SOURCE`. MSD's
own ambiguous names ("cancer", "Tumour", "Vessel") are not guessed: map them with
``--class-map``."""


def check_class_label(label: int) -> int:
    """``label`` when VISTA3D takes it as a class prompt (:data:`CLASS_PROMPT_LABELS`), else
    an OptionError naming ``--class-map`` and what is expected."""
    lab = int(label)
    if lab in GROUP_CLASSES:
        parts = ", ".join(str(v) for v in GROUP_CLASSES[lab][:5])
        more = ", ..." if len(GROUP_CLASSES[lab]) > 5 else ""
        raise OptionError(
            "--class-map",
            f"VISTA3D class {lab} is a group the bundle splits into its parts ({parts}{more}); "
            "map the target to one part",
        )
    if lab not in CLASS_PROMPT_LABELS:
        raise OptionError(
            "--class-map",
            f"VISTA3D class {lab} is not one it segments by class prompt (expected 1..132 "
            f"except {', '.join(str(v) for v in sorted(UNSUPPORTED_CLASSES | set(GROUP_CLASSES)))};"
            " see docs/models-3d.md)",
        )
    return lab
