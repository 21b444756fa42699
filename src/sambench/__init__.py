"""sambench: benchmark, analyse and fine-tune promptable segmentation models on medical images.

Pipeline stages, one package each:

- ``sambench.data``: standardize datasets into 2D PNG pairs and a manifest (``sambench prepare``).
- ``sambench.prompts``: prompt strategies S1-S6 derived from ground-truth masks.
- ``sambench.models``: model adapters (LiteMedSAM, SAM ViT-B/L/H, MedSAM) behind one protocol.
- ``sambench.engine``: encode once, prompt many; results tables (``sambench evaluate``).
- ``sambench.metrics``: DICE, JAC, HD, HD95, ASSD, NSD.
- ``sambench.analysis``: summary tables in the paper's layout and statistics.
- ``sambench.finetune``: mask-decoder fine-tuning.
- ``sambench.report``: figures and the HTML report.
"""

__version__ = "0.1.0"
