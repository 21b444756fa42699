"""A tiny random nnInteractive model folder, built with the package's own network builder.

The layout is the one ``nnInteractiveInferenceSession.initialize_from_trained_model_folder``
reads: ``plans.json``, ``dataset.json``, ``inference_info.json`` and
``fold_0/checkpoint_final.pth``. The network is nnU-Net's ``PlainConvUNet`` (two stages, 4 and
8 features, patch 64^3: the session refines with a 24-voxel margin, so a patch must exceed 48), built by ``nnInteractiveTrainer_stub.build_network_architecture`` from
the plans (``dynamic_network_architectures`` through nnU-Net's plans manager), seeded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

CONFIGURATION = "3d_tiny"
PATCH = [64, 64, 64]
N_INTERACTION_CHANNELS = 7  # prev_seg + (pos, neg) for bbox/lasso, points, scribble


def tiny_plans(patch: list[int] | None = None) -> dict:
    """plans.json of the tiny configuration (nnU-Net v2 plans format)."""
    arch = {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {
            "n_stages": 2,
            "features_per_stage": [4, 8],
            "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3], [3, 3, 3]],
            "strides": [[1, 1, 1], [2, 2, 2]],
            "n_conv_per_stage": [1, 1],
            "n_conv_per_stage_decoder": [1],
            "conv_bias": True,
            "norm_op": "torch.nn.modules.instancenorm.InstanceNorm3d",
            "norm_op_kwargs": {"eps": 1e-05, "affine": True},
            "dropout_op": None,
            "dropout_op_kwargs": None,
            "nonlin": "torch.nn.LeakyReLU",
            "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }
    return {
        "dataset_name": "Dataset999_sambenchTiny",
        "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": [32, 32, 32],
        "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2],
        "transpose_backward": [0, 1, 2],
        "configurations": {
            CONFIGURATION: {
                "data_identifier": "nnUNetPlans_3d_tiny",
                "preprocessor_name": "DefaultPreprocessor",
                "batch_size": 2,
                "patch_size": list(patch or PATCH),
                "median_image_size_in_voxels": [32, 32, 32],
                "spacing": [1.0, 1.0, 1.0],
                "normalization_schemes": ["ZScoreNormalization"],
                "use_mask_for_norm": [False],
                "resampling_fn_data": "resample_data_or_seg_to_shape",
                "resampling_fn_seg": "resample_data_or_seg_to_shape",
                "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0},
                "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0},
                "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
                "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0},
                "architecture": arch,
                "batch_dice": False,
            }
        },
        "experiment_planner_used": "sambench tests",
        "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
    }


DATASET_JSON = {
    "channel_names": {"0": "CT"},
    "labels": {"background": 0, "object": 1},
    "numTraining": 0,
    "file_ending": ".nii.gz",
}


def make_tiny_folder(
    folder: Path,
    seed: int = 0,
    license_text: str | None = None,
    bbox3d: bool = True,
    extra: dict | None = None,
    background_margin: float | None = 0.5,
) -> Path:
    """Write the tiny random model folder under ``folder`` (created) and return it.

    ``bbox3d``: the weights declare 3D boxes (``inference_info.json``); ``license_text``: the
    first line of ``LICENSE`` (None: no file); ``extra``: further checkpoint entries (nnU-Net's
    training log holds numpy scalars, as here by default). ``background_margin``: the output
    layer's bias is shifted so that an input of zeros (the padding around a volume smaller than
    the patch) is background by this logit margin: the patch's faces then stay unchanged and the
    session does not zoom out (each interaction is one forward pass, fast on a CPU); None keeps
    the random bias (the session zooms out and refines: slow)."""
    from nnInteractive.trainer.nnInteractiveTrainer import nnInteractiveTrainer_stub
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    folder.mkdir(parents=True, exist_ok=True)
    plans = tiny_plans()
    (folder / "plans.json").write_text(json.dumps(plans, indent=1))
    (folder / "dataset.json").write_text(json.dumps(DATASET_JSON, indent=1))
    (folder / "inference_info.json").write_text(
        json.dumps({"inference_class": "nnInteractiveInferenceSession", "point_radius": 2,
                    "interaction_decay": 0.9, "preferred_scribble_thickness": [1, 2, 2],
                    "supported_interactions": {"bbox3d": bbox3d}})
    )  # fmt: skip
    if license_text is not None:
        (folder / "LICENSE").write_text(license_text + "\n")
    pm = PlansManager(plans)
    cm = pm.get_configuration(CONFIGURATION)
    torch.manual_seed(seed)
    net = nnInteractiveTrainer_stub.build_network_architecture(
        pm, cm, 1 + N_INTERACTION_CHANNELS, 2, enable_deep_supervision=False
    )
    if background_margin is not None:
        net.eval()
        with torch.no_grad():
            out = net(torch.zeros(1, 1 + N_INTERACTION_CHANNELS, *PATCH))[0, :, 32, 32, 32]
            seg = net.decoder.seg_layers[-1]
            seg.bias[0] += float(out[1] - out[0]) + background_margin
    ckpt = {
        "network_weights": net.state_dict(),
        "trainer_name": "nnInteractiveTrainer_stub",
        "init_args": {"configuration": CONFIGURATION, "fold": 0, "device": torch.device("cpu")},
        "current_epoch": 0,
        "logging": {"mean_fg_dice": [np.float64(0.5)], "epoch_end_timestamps": [1.0]},
        **(extra or {}),
    }
    (folder / "fold_0").mkdir(exist_ok=True)
    torch.save(ckpt, folder / "fold_0" / "checkpoint_final.pth")
    return folder
