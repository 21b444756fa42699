"""Cost of the Human Correction Effort per mask, side by side with the other metrics of a row.

On the seed-sample labels (../shared/data/seed-samples, every object resized to 256x256 by
nearest neighbour) against four perturbed predictions each (eroded by 3 px, shifted by (4, -6) px,
salt-and-pepper noise 0.3 %, a centre disc of radius 20 = a poor one-click mask): milliseconds per
(pred, gt) pair for

1. ``human_correction_effort`` (sambench.metrics.hce);
2. the rest of ``segmentation_metrics`` (DICE, JAC, HD, HD95, ASSD, NSD) without HCE;
3. the DIS reference transcription (tests/dis_hce_reference.py), and ``pysodmetrics`` if
   importable, for comparison; the counts are checked equal on the way.

Usage: PYTHONPATH=src:tests python benchmarks/bench_hce.py [--seed-dir PATH] [--repeat R]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from sambench.metrics import human_correction_effort
from sambench.metrics.distance import (
    assd_from_distances,
    hd95_from_distances,
    hd_from_distances,
    nsd_from_distances,
    surface_distances,
)
from sambench.metrics.overlap import confusion_counts, dice_from_counts, jaccard_from_counts


def _other_metrics(p: np.ndarray, g: np.ndarray) -> None:
    tp, fp, fn = confusion_counts(p, g)
    dice_from_counts(tp, fp, fn), jaccard_from_counts(tp, fp, fn)
    d1, d2 = surface_distances(p, g, (1.0, 1.0))
    hd_from_distances(d1, d2), hd95_from_distances(d1, d2), assd_from_distances(d1, d2)
    nsd_from_distances(d1, d2, 2.0)


def _pairs(seed_dir: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    out = []
    for f in sorted(seed_dir.glob("*/labels/*.png")):
        lab = np.asarray(Image.open(f).resize((256, 256), Image.Resampling.NEAREST))
        for v in np.unique(lab)[1:]:
            g = lab == v
            if g.sum() < 50:
                continue
            cy, cx = (int(c) for c in np.argwhere(g).mean(0))
            for p in (
                ndi.binary_erosion(g, iterations=3),
                np.roll(g, (4, -6), axis=(0, 1)),
                g ^ (rng.random(g.shape) < 0.003),
                (yy - cy) ** 2 + (xx - cx) ** 2 <= 400,
            ):
                if p.any():  # the distance metrics need a non-empty prediction
                    out.append((p, g))
    return out


def _ms(fn: Callable[[np.ndarray, np.ndarray], object], pairs: list, repeat: int) -> float:
    best = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for p, g in pairs:
            fn(p, g)
        best.append((time.perf_counter() - t0) / len(pairs))
    return 1e3 * min(best)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = Path(__file__).resolve().parents[1]
    ap.add_argument("--seed-dir", type=Path, default=here.parent / "shared/data/seed-samples")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    pairs = _pairs(args.seed_dir)
    if not pairs:
        raise SystemExit(f"--seed-dir: no label PNGs under {args.seed_dir}/*/labels")
    from dis_hce_reference import reference_hce

    for p, g in pairs:
        r = human_correction_effort(p, g)
        assert (r.fp_points, r.fp_regions, r.fn_points, r.fn_regions) == reference_hce(p, g)
    rows = {
        "sambench HCE": _ms(human_correction_effort, pairs, args.repeat),
        "other metrics (DICE..NSD)": _ms(_other_metrics, pairs, args.repeat),
        "DIS reference HCE": _ms(reference_hce, pairs, args.repeat),
    }
    try:
        import py_sod_metrics

        m = py_sod_metrics.HumanCorrectionEffortMeasure()
        rows["pysodmetrics HCE"] = _ms(m.cal_hce, pairs, args.repeat)
    except ImportError:
        pass
    hces = [human_correction_effort(p, g).hce for p, g in pairs]
    print(f"{len(pairs)} (pred, gt) pairs of 256x256, best of {args.repeat} runs; counts equal")
    print(f"HCE over the pairs: median {np.median(hces):.0f}, max {max(hces)}")
    base = rows["sambench HCE"]
    for k, v in rows.items():
        print(f"{k:28s} {v:7.2f} ms/mask  ({v / base:4.2f}x sambench HCE)")


if __name__ == "__main__":
    main()
