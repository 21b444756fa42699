"""Seconds per interaction and peak memory: nnInteractive and VISTA3D at their real architecture
sizes (random weights) against LiteMedSAM propagation, on the same volume, in one run.

Both models run ``evaluate-3d --protocol interactive-3d`` (the CVPR 2025 box, then ``--clicks``
clicks) on the spinal-cord MRI of ``tests/data/sct-spinalcord`` (55 x 60 x 52 voxels, 1 mm),
each in its own child process so that its peak resident memory (``ru_maxrss``) is its own; on
CUDA the peak allocated GPU memory is reported too. ``seconds`` are the model's own time per
step as evaluate-3d records it (nnInteractive: the session's call; LiteMedSAM: encoder passes
and decoding of the slices the step touched).

nnInteractive's network is nnU-Net's ResEnc-L U-Net (``ResidualEncoderUNet``, 6 stages,
32..320 features, 1/3/4/6/6/6 residual blocks: nnU-Net's ``nnUNetResEncUNetLPlans`` 3d_fullres
architecture, which the released checkpoint's configuration ``3d_fullres_ps192_bs24`` names)
with the released patch 192^3 by default (``--patch`` to change it), 8 input channels (image +
7 interaction channels), random weights: timing, not accuracy. The folder is built with the
package's own network builder, as in the tests.

VISTA3D is MONAI's ``vista3d132()`` (the released architecture) with random weights, saved as a
state dict and run through ``--model vista3d`` (the bundle's 128^3 window per click, 1.5 mm).
It takes no box, so its rows are clicks only (``box_s`` empty).

SAM-Med3D is medim's ``create_model("SAM-Med3D", pretrained=False)`` (the released ViT-B at
128^3, 1.5 mm) with random weights, saved as ``{"model_state_dict": ...}`` as the authors'
checkpoints are; a box is given as a click at its centre (the authors' rule).

Usage: python benchmarks/bench_native3d.py [--patch 192] [--clicks 2] [--device cpu]
       [--models litemedsam,nninteractive,vista3d,sam_med3d]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
CORD = HERE.parent / "tests" / "data" / "sct-spinalcord"


def resenc_l_plans(patch: int) -> dict:
    """plans.json with nnU-Net's ResEnc-L 3D U-Net at an isotropic ``patch``."""
    arch = {
        "network_class_name": "dynamic_network_architectures.architectures.unet.ResidualEncoderUNet",
        "arch_kwargs": {
            "n_stages": 6,
            "features_per_stage": [32, 64, 128, 256, 320, 320],
            "conv_op": "torch.nn.modules.conv.Conv3d",
            "kernel_sizes": [[3, 3, 3]] * 6,
            "strides": [[1, 1, 1]] + [[2, 2, 2]] * 5,
            "n_blocks_per_stage": [1, 3, 4, 6, 6, 6],
            "n_conv_per_stage_decoder": [1, 1, 1, 1, 1],
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
    cfg = {
        "data_identifier": "bench", "preprocessor_name": "DefaultPreprocessor", "batch_size": 1,
        "patch_size": [patch] * 3, "median_image_size_in_voxels": [patch] * 3,
        "spacing": [1.0, 1.0, 1.0], "normalization_schemes": ["ZScoreNormalization"],
        "use_mask_for_norm": [False], "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, "order_z": 0},
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, "order_z": 0},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, "order_z": 0},
        "architecture": arch, "batch_dice": False,
    }  # fmt: skip
    return {
        "dataset_name": "Dataset000_bench", "plans_name": "nnUNetResEncUNetLPlans",
        "original_median_spacing_after_transp": [1.0, 1.0, 1.0],
        "original_median_shape_after_transp": [patch] * 3, "image_reader_writer": "SimpleITKIO",
        "transpose_forward": [0, 1, 2], "transpose_backward": [0, 1, 2],
        "configurations": {"3d_fullres_bench": cfg}, "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {},
    }  # fmt: skip


def make_folder(folder: Path, patch: int) -> tuple[Path, int]:
    """The model folder (random weights); returns it and the parameter count."""
    from nnInteractive.trainer.nnInteractiveTrainer import nnInteractiveTrainer_stub
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    folder.mkdir(parents=True, exist_ok=True)
    plans = resenc_l_plans(patch)
    (folder / "plans.json").write_text(json.dumps(plans))
    (folder / "dataset.json").write_text(json.dumps(
        {"channel_names": {"0": "MRI"}, "labels": {"background": 0, "object": 1},
         "numTraining": 0, "file_ending": ".nii.gz"}))  # fmt: skip
    (folder / "inference_info.json").write_text(
        json.dumps({"inference_class": "nnInteractiveInferenceSession"})
    )
    (folder / "LICENSE").write_text("random weights (benchmark)\n")
    pm = PlansManager(plans)
    torch.manual_seed(0)
    net = nnInteractiveTrainer_stub.build_network_architecture(
        pm, pm.get_configuration("3d_fullres_bench"), 8, 2, enable_deep_supervision=False
    )
    (folder / "fold_0").mkdir(exist_ok=True)
    ckpt = {"network_weights": net.state_dict(), "trainer_name": "nnInteractiveTrainer_stub",
            "init_args": {"configuration": "3d_fullres_bench"}}  # fmt: skip
    torch.save(ckpt, folder / "fold_0" / "checkpoint_final.pth")
    return folder, sum(p.numel() for p in net.parameters())


def child(args: argparse.Namespace) -> None:
    """One model's run (in its own process): print one JSON line of its numbers."""
    from sambench.volumes.evaluate import Run3DConfig, evaluate_3d
    from sambench.volumes.types import ProtocolConfig

    cfg = Run3DConfig(prepared=args.prepared, model=args.model, checkpoint=args.checkpoint,
                      device=args.device, protocols=("interactive-3d",),
                      protocol=ProtocolConfig(steps=args.clicks))  # fmt: skip
    df = evaluate_3d(cfg, args.out)
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    cuda_mib = torch.cuda.max_memory_allocated() / 2**20 if args.device.startswith("cuda") else None
    print(json.dumps({
        "model": args.model,
        "box_s": float(df.loc[df["step"] == 0, "seconds"].iloc[0]) if (df["step"] == 0).any()
        else None,
        "click_s_mean": float(df.loc[df["step"] > 0, "seconds"].mean()),
        "final_dice_pct": float(df["dice"].iloc[-1]),
        "peak_rss_mib": peak_rss_mib, "peak_cuda_mib": cuda_mib,
    }))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patch", type=int, default=192)
    ap.add_argument("--clicks", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", default="litemedsam,nninteractive,vista3d,sam_med3d",
                    help="comma list; litemedsam is always run (the ratios' base)")  # fmt: skip
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for a in ("--prepared", "--model", "--checkpoint", "--out"):
        ap.add_argument(a, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    from sambench.data.prepare import prepare_dataset

    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="bench_native3d_"))
    try:
        src = tmp / "src"
        shutil.copytree(CORD, src)
        prepare_dataset(src, tmp / "prepared", config=src / "dataset.yaml", progress=False)
        wanted = set(args.models.split(",")) | {"litemedsam"}
        runs: list[tuple[str, Path | None]] = [("litemedsam", None)]
        n_params = 0
        if "nninteractive" in wanted:
            folder, n_params = make_folder(tmp / "nnInteractive_bench", args.patch)
            runs.append(("nninteractive", folder))
        if "vista3d" in wanted:
            from monai.networks.nets import vista3d132

            torch.manual_seed(0)
            torch.save(vista3d132().state_dict(), tmp / "vista3d132_random.pt")
            runs.append(("vista3d", tmp / "vista3d132_random.pt"))
        if "sam_med3d" in wanted:
            from sambench.models.sam_med3d import build_network

            torch.manual_seed(0)
            torch.save({"model_state_dict": build_network().state_dict()},
                       tmp / "sam_med3d_random.pth")  # fmt: skip
            runs.append(("sam_med3d", tmp / "sam_med3d_random.pth"))
        rows = []
        for model, ckpt in runs:
            cmd = [sys.executable, __file__, "--child", "--prepared", str(tmp / "prepared"),
                   "--model", model, "--out", str(tmp / f"run_{model}"), "--device", args.device,
                   "--clicks", str(args.clicks)] + (["--checkpoint", str(ckpt)] if ckpt else [])  # fmt: skip
            out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
        df = pd.DataFrame(rows)
        base = df.set_index("model").loc["litemedsam"]
        df["click_s_ratio_vs_litemedsam"] = df["click_s_mean"] / base["click_s_mean"]
        df["peak_rss_ratio_vs_litemedsam"] = df["peak_rss_mib"] / base["peak_rss_mib"]
        print(f"device {args.device}, torch threads {torch.get_num_threads()}, nnInteractive "
              f"ResEnc-L patch {args.patch}^3, {n_params / 1e6:.1f} M parameters, "
              f"{args.clicks} clicks after the box (VISTA3D: clicks only, vista3d132; SAM-Med3D: "
              "ViT-B 128^3); volume "
              "55x60x52 (spinal-cord MRI)")  # fmt: skip
        print(df.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        print(
            f"load average (1 min) on {os.cpu_count()} CPUs: {load_before:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end; numpy {np.__version__}, torch {torch.__version__}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
