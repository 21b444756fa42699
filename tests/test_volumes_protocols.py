"""slicewise-gt and propagate on synthetic volumes with known answers (fake adapters), and the
evaluate-3d runner end to end: rows, flags, resume without duplicates, settings checks, masks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from sambench.errors import OptionError
from sambench.models.base import Embedding, Prediction
from sambench.prompts.types import Prompts
from sambench.volumes import Object3D, ProtocolConfig, Volume3D, get_protocol, load_protocols
from sambench.volumes.evaluate import Run3DConfig, evaluate_3d
from volume_data import prepare_synthetic as _prepare

from fakes import FakeModel


class ThresholdModel:
    """Predicts the prompt's box filled, intersected with the bright pixels (> 128) of the slice;
    records the prompts it got."""

    name = "threshold"

    def __init__(self) -> None:
        self.prompts: list[Prompts] = []
        self.embeds = 0

    def embed(self, image: np.ndarray) -> Embedding:
        self.embeds += 1
        return Embedding(
            torch.from_numpy(image.astype(np.float32))[None, None], image.shape, image.shape
        )

    def predict(
        self, embedding: Embedding, prompts: Sequence[Prompts], multimask_output: bool | None = None
    ) -> Prediction:
        img = embedding.features[0, 0].numpy()
        out = []
        for p in prompts:
            self.prompts.append(p)
            m = np.zeros(img.shape, bool)
            if p.box is not None:
                x0, y0, x1, y1 = (round(v) for v in p.box)
                m[y0 : y1 + 1, x0 : x1 + 1] = True
            else:
                assert p.points is not None
                m[:] = True  # a point: the whole bright region
            out.append(m & (img > 128))
        masks = np.stack(out)[:, None]
        n = len(prompts)
        return Prediction(
            masks, np.ones((n, 1), np.float32), np.full((n, 1, 4, 4), 0.5, np.float32)
        )


def _pyramid() -> tuple[Volume3D, Object3D]:
    """9 slices; squares of half-size 2, 4, 6, 4, 2 on slices 2..6 (the key slice is 4); bright."""
    lab = np.zeros((9, 32, 32), np.uint8)
    for z, h in zip(range(2, 7), (2, 4, 6, 4, 2), strict=True):
        lab[z, 16 - h : 16 + h, 16 - h : 16 + h] = 1
    vol = Volume3D("v", "d", "c", (lab * 200).astype(np.uint8), lab, (2.5, 0.5, 0.5))
    obj = Object3D("v", 1, "thing", int(lab.sum()), (2, 4, 4, 6, 27, 27), key_slice=4, n_slices=5)
    return vol, obj


def test_builtin_protocols_are_registered() -> None:
    assert {"slicewise-gt", "propagate"} <= set(load_protocols())


def test_propagate_follows_the_object_and_stops_when_it_vanishes() -> None:
    load_protocols()
    vol, obj = _pyramid()
    model = ThresholdModel()
    (step,) = get_protocol("propagate").fn(
        model, vol, obj, ProtocolConfig(), np.random.default_rng(0)
    )
    assert np.array_equal(step.mask, vol.label == 1)
    # key slice, 5, 6, 7 (empty: stop), then 3, 2, 1 (empty: stop): 7 decodes, 7 encodes
    assert step.n_slices_predicted == 7 and model.embeds == 7
    assert step.extras["z_first"] == 2 and step.extras["z_last"] == 6
    # after the first prompt (the GT box of the key slice) each prompt is the neighbour's box + logits
    first, second = model.prompts[0], model.prompts[1]
    assert first.box.tolist() == [10, 10, 21, 21] and first.mask_logits is None
    assert second.box.tolist() == [10, 10, 21, 21] and second.mask_logits is not None
    model2 = ThresholdModel()
    get_protocol("propagate").fn(
        model2, vol, obj, ProtocolConfig(use_mask_prompt=False), np.random.default_rng(0)
    )
    assert all(p.mask_logits is None for p in model2.prompts)


def test_slicewise_gt_prompts_each_object_slice_and_counts_false_positives() -> None:
    load_protocols()
    vol, obj = _pyramid()
    fake = FakeModel()  # fills the box: exact on squares, so every slice is perfect
    (step,) = get_protocol("slicewise-gt").fn(
        fake, vol, obj, ProtocolConfig(multimask=False), np.random.default_rng(0)
    )
    assert np.array_equal(step.mask, vol.label == 1) and step.n_slices_predicted == 5
    # a shifted box is no longer exact, reproducibly per generator
    cfg = ProtocolConfig(multimask=False, shift_range=(3, 4))
    a = get_protocol("slicewise-gt").fn(fake, vol, obj, cfg, np.random.default_rng(1))[0].mask
    b = get_protocol("slicewise-gt").fn(fake, vol, obj, cfg, np.random.default_rng(1))[0].mask
    assert np.array_equal(a, b) and not np.array_equal(a, vol.label == 1)


def test_propagate_with_a_box_filling_model_has_a_known_dsc() -> None:
    load_protocols()
    vol, obj = _pyramid()
    (step,) = get_protocol("propagate").fn(
        FakeModel(), vol, obj, ProtocolConfig(multimask=False), np.random.default_rng(0)
    )
    # the key slice's 12x12 box never shrinks or vanishes: all 9 slices hold it
    assert step.mask.sum() == 9 * 144 and step.n_slices_predicted == 9


def test_evaluate_3d_end_to_end_resume_and_masks(tmp_path: Path) -> None:
    prepared, lab = _prepare(tmp_path)
    run = tmp_path / "run"
    cfg = Run3DConfig(
        prepared=str(prepared),
        protocols=("slicewise-gt", "propagate"),
        protocol=ProtocolConfig(multimask=False),
        save_masks=True,
    )
    model = FakeModel()
    df = evaluate_3d(cfg, run, model=model)
    assert len(df) == 4 and set(df["protocol"]) == {"slicewise-gt", "propagate"}
    assert (df["status"] == "ok").all() and (df["step"] == 0).all()
    sw = df[(df.protocol == "slicewise-gt")].set_index("object_name")
    # squares filled from their own boxes: exact in 3D, HD95 0 mm
    assert sw.loc["Liver", "dice"] == pytest.approx(100) and sw.loc["Liver", "hd95"] == 0.0
    assert bool(sw.loc["Tumor", "one_slice"]) and not bool(sw.loc["Liver", "one_slice"])
    assert sw.loc["Liver", "spacing_z"] == pytest.approx(3.0)
    pr = df[(df.protocol == "propagate") & (df.object_name == "Liver")].iloc[0]
    # the 16x16 key box propagates through all 7 slices: DSC = 2*508 / (7*256 + 508)
    assert pr["dice"] == pytest.approx(100 * 2 * 508 / (7 * 256 + 508))
    assert pr["volume_error"] == pytest.approx(100 * (7 * 256 - 508) / 508)
    mask = sitk.ReadImage(str(run / pr["mask_path"]))
    src = sitk.ReadImage(str(tmp_path / "src/images/c1.nii.gz"))
    assert mask.GetSpacing() == pytest.approx(src.GetSpacing())
    assert mask.GetOrigin() == pytest.approx(src.GetOrigin())
    assert sitk.GetArrayFromImage(mask).sum() == 7 * 256
    sw_mask = sitk.GetArrayFromImage(sitk.ReadImage(str(run / sw.loc["Liver", "mask_path"])))
    assert np.array_equal(sw_mask.transpose(2, 1, 0), (lab == 1).astype(np.uint8))

    calls = model.predict_calls
    again = evaluate_3d(cfg, run, model=model)
    assert model.predict_calls == calls  # every volume was done: nothing re-run
    pd.testing.assert_frame_equal(again, df)
    assert len(list((run / "parts").glob("*.parquet"))) == 1
    other = Run3DConfig(prepared=str(prepared), protocols=("propagate",))
    with pytest.raises(OptionError, match=r"--out.*protocols"):
        evaluate_3d(other, run, model=model)


def test_bad_options_are_refused_before_writing(tmp_path: Path) -> None:
    prepared, _ = _prepare(tmp_path)
    with pytest.raises(OptionError, match=r"--protocol.*propagate"):
        evaluate_3d(
            Run3DConfig(str(prepared), protocols=("nope",)), tmp_path / "r", model=FakeModel()
        )
    with pytest.raises(OptionError, match="--nsd-tolerance-mm"):
        evaluate_3d(
            Run3DConfig(str(prepared), nsd_tolerance_mm=-1), tmp_path / "r", model=FakeModel()
        )
    with pytest.raises(OptionError, match="--prompt"):
        evaluate_3d(
            Run3DConfig(str(prepared), protocol=ProtocolConfig(prompt="lasso")),
            tmp_path / "r",
            model=FakeModel(),
        )
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        ({"protocol": ProtocolConfig(options={"foo": 1})}, r"--protocol-option: 'foo' is not an"),
        (
            {"protocols": ("interactive-3d",), "protocol": ProtocolConfig(options={"fo": 1})},
            r"'fo' is not an option of interactive-3d \(known: agree_dsc, class_map, initial_box",
        ),
        (
            {
                "protocols": ("interactive-3d",),
                "protocol": ProtocolConfig(options={"initial_box": "yes"}),
            },
            r"--protocol-option: initial_box: expected true or false, got 'yes'",
        ),
        (
            {
                "protocols": ("interactive-3d",),
                "protocol": ProtocolConfig(options={"agree_dsc": 2}),
            },
            r"--protocol-option: agree_dsc: expected a number in \(0, 1\]",
        ),
        ({"seed": -1}, r"--seed: expected an integer >= 0, got -1"),
        ({"assume_spacing": (1.0, 0.0, 1.0)}, r"--assume-spacing: expected Z,Y,X mm, each > 0"),
    ],
)
def test_every_value_is_checked_before_the_run_writes(
    tmp_path: Path, cfg: dict[str, object], match: str
) -> None:
    """An unknown protocol option (ignored before), a bad option value, a negative seed (a numpy
    error naming no option before, once config-3d.json was written): refused, nothing written,
    and the corrected command runs in the same folder."""
    prepared, _ = _prepare(tmp_path)
    run = tmp_path / "run"
    with pytest.raises(OptionError, match=match):
        evaluate_3d(Run3DConfig(str(prepared), **cfg), run, model=FakeModel())  # type: ignore[arg-type]
    assert not run.exists()
    good = Run3DConfig(str(prepared), protocol=ProtocolConfig(multimask=False))
    assert len(evaluate_3d(good, run, model=FakeModel())) == 2


def test_a_model_that_cannot_be_built_leaves_no_folder(tmp_path: Path) -> None:
    prepared, _ = _prepare(tmp_path)
    run = tmp_path / "run"
    with pytest.raises(OptionError, match="--model"):
        evaluate_3d(Run3DConfig(str(prepared), model="no_such_model"), run)
    assert not run.exists()


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--protocol", "nope"], "--protocol"),
        (["--shift", "3"], "--shift"),
        (["--shift", "5,2"], "--shift"),
        (["--assume-spacing", "1,2"], "--assume-spacing"),
        (["--prompt", "lasso"], "--prompt"),
        (["--protocol-option", "novalue"], "--protocol-option"),
    ],
)
def test_cli_bad_options_two_lines_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], option: str
) -> None:
    from sambench.cli import main

    prepared, _ = _prepare(tmp_path)
    out = tmp_path / "run"
    assert (
        main(["evaluate-3d", str(prepared), "--out", str(out), "--model", "grabcut", *extra]) == 2
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert 1 <= len(err) <= 2 and option in err[0], err
    assert not (out / "config-3d.json").exists()


def test_cli_on_a_2d_prepared_folder_says_it_has_no_3d_form(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from sambench.cli import main

    from fakes import make_prepared

    prepared = make_prepared(tmp_path / "png", n_images=1)
    assert main(["evaluate-3d", str(prepared), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert str(prepared) in err and "volumes3d.parquet" in err


def test_a_protocol_that_cannot_prompt_gives_skipped_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sambench.prompts.strategies import PromptError
    from sambench.volumes import register_protocol, types

    load_protocols()
    monkeypatch.setattr(types, "_REGISTRY", dict(types._REGISTRY))

    @register_protocol("never", "always fails to prompt")
    def never(model, volume, obj, config, rng):  # type: ignore[no-untyped-def]
        raise PromptError("empty_mask", "no prompt here")

    prepared, _ = _prepare(tmp_path)
    df = evaluate_3d(
        Run3DConfig(str(prepared), protocols=("never",)), tmp_path / "r", model=FakeModel()
    )
    assert (df["status"] == "skipped").all() and df["dice"].isna().all()
    assert df["skip_reason"].str.startswith("prompt: no prompt here").all()


def test_cli_protocol_errors_list_the_choices_and_sam2_video_names_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The four built-in protocols are reachable from the CLI: an unknown name lists them, and
    sam2-video with a model that has no video predictor names --model and the SAM 2 names."""
    from sambench.cli import main

    prepared, _ = _prepare(tmp_path)
    base = ["evaluate-3d", str(prepared), "--model", "grabcut"]
    assert main([*base, "--out", str(tmp_path / "a"), "--protocol", "slicewise,propagate"]) == 2
    err = capsys.readouterr().err
    for name in ("slicewise-gt", "propagate", "interactive-3d", "sam2-video"):
        assert f"'{name}'" in err
    assert main([*base, "--out", str(tmp_path / "b"), "--protocol", "sam2-video"]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert "--protocol" in first and "--model" in first and "sam2.1_hiera_t" in first, first
    assert not (tmp_path / "b" / "config-3d.json").exists()
