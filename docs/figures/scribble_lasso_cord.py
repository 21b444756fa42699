"""docs/img/scribble-lasso-cord.png: the simulated lasso and scribble on the key slice of the
spinal-cord MRI (tests/data/sct-spinalcord), seeds 0..2. From the repository root:

    PYTHONPATH=src python docs/figures/scribble_lasso_cord.py tests/data/sct-spinalcord \
        docs/img/scribble-lasso-cord.png
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np

from sambench.prompts.scribbles import key_slice, simulate_lasso, simulate_scribble

root = Path(sys.argv[1])
img = nib.as_closest_canonical(nib.load(root / "images" / "t2.nii.gz"))
lab = nib.as_closest_canonical(nib.load(root / "labels" / "t2.nii.gz"))
# canonical RAS (x, y, z) -> axial slice-major (z, y, x), as sambench's prepared volumes
vol = np.asanyarray(img.dataobj).transpose(2, 1, 0).astype(np.float32)
gt = np.asanyarray(lab.dataobj).transpose(2, 1, 0) > 0
z = key_slice(gt)
print(
    "shape", gt.shape, "key slice", z, "area", int(gt[z].sum()), "spacing", img.header.get_zooms()
)
ys, xs = np.nonzero(gt[z])
pad = 14
y0, y1 = max(0, ys.min() - pad), min(gt.shape[1], ys.max() + pad + 1)
x0, x1 = max(0, xs.min() - pad), min(gt.shape[2], xs.max() + pad + 1)
fig, axes = plt.subplots(1, 3, figsize=(9, 3.4), constrained_layout=True)
for seed, ax in enumerate(axes):
    rng = np.random.default_rng(seed)
    lasso = simulate_lasso(gt, rng)
    scrib = simulate_scribble(gt, rng)
    ax.imshow(vol[z, y0:y1, x0:x1], cmap="gray", origin="lower", interpolation="nearest")
    ax.contour(gt[z, y0:y1, x0:x1], levels=[0.5], colors="#ffd700", linewidths=1.0)
    p = np.array(lasso.points_yx + lasso.points_yx[:1])
    ax.plot(p[:, 1] - x0, p[:, 0] - y0, "-", color="#00bfff", lw=1.6, label="lasso")
    s = np.array(scrib.points_yx)
    ax.plot(s[:, 1] - x0, s[:, 0] - y0, "o-", color="#ff3030", lw=1.6, ms=3, label="scribble")
    ax.set_title(
        f"seed {seed}: lasso {len(lasso.points_yx)} vertices,\nscribble {len(scrib.points_yx)} vertices",
        fontsize=9,
    )
    ax.set_xticks([])
    ax.set_yticks([])
axes[0].legend(loc="lower left", fontsize=8, framealpha=0.8)
fig.suptitle(
    f"Simulated lasso (blue) and scribble (red) around/inside the cord (yellow: ground truth); "
    f"axial key slice z={z}, pixels",
    fontsize=9,
)
fig.savefig(sys.argv[2], dpi=130)
