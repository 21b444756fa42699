"""``effort``: the interactive-3d loop recorded after 1, 3, 5 ... interactions (box = one), for a
2D model lifted by propagation and for a native 3D model alike."""

from __future__ import annotations

import numpy as np
import pytest

from sambench.errors import OptionError
from sambench.models.volume_base import (
    BoxInteraction,
    Interaction,
    PointInteraction,
    VolumeImage,
)
from sambench.volumes.protocols.effort import effort
from sambench.volumes.protocols.interactive_3d import interactive_3d
from sambench.volumes.types import ProtocolConfig
from test_interactive_3d import _synthetic
from threshold_model import ThresholdModel


class BallModel:
    """A deterministic native 3D model: a box fills, a click adds (removes) a ball of radius 3."""

    name = "ball"
    model_kind = "3d"
    supports = frozenset({"point", "box2d", "box3d"})
    max_shape = None

    def info(self) -> dict[str, str]:
        return {"model": self.name}

    def open(self, image: VolumeImage) -> None:
        self.shape = image.shape
        self.m = np.zeros(self.shape, bool)

    def reset(self, seed: int | None = None) -> None:
        self.m = np.zeros(self.shape, bool)

    def apply(self, i: Interaction) -> np.ndarray:
        if isinstance(i, BoxInteraction):
            self.m[i.z_min : i.z_max + 1, i.y_min : i.y_max + 1, i.x_min : i.x_max + 1] = True
        elif isinstance(i, PointInteraction):
            zz, yy, xx = np.indices(self.shape)
            ball = (zz - i.z) ** 2 + (yy - i.y) ** 2 + (xx - i.x) ** 2 <= 9
            self.m = self.m | ball if i.positive else self.m & ~ball
        return self.m.copy()


def _pair(model, vol, obj, budgets, initial_box=True):
    opts = {"budgets": list(budgets), "initial_box": initial_box}
    got = effort(model, vol, obj, ProtocolConfig(options=opts), np.random.default_rng(5))
    clicks = budgets[-1] - 1 if initial_box else budgets[-1]
    ref = interactive_3d(model, vol, obj, ProtocolConfig(steps=clicks, options=opts),
                         np.random.default_rng(5))  # fmt: skip
    return got, ref


@pytest.mark.parametrize("native", [False, True])
@pytest.mark.parametrize("initial_box", [True, False])
def test_effort_rows_are_the_loop_after_each_budget(native: bool, initial_box: bool) -> None:
    vol, obj = _synthetic()
    model = BallModel() if native else ThresholdModel()
    if native:
        model.open(VolumeImage(np.asarray(vol.image, np.float32), vol.spacing))
    budgets = (1, 3, 5)
    got, ref = _pair(model, vol, obj, budgets, initial_box)
    assert [st.step for st in got] == list(budgets)
    assert [st.extras["interactions"] for st in got] == list(budgets)
    by_step = {st.step: st for st in ref}
    for st in got:
        r = by_step[st.step - 1 if initial_box else st.step]  # the box is interaction 1
        np.testing.assert_array_equal(np.asarray(st.mask), np.asarray(r.mask))
        assert st.extras["challenge_dsc"] == r.extras["challenge_dsc"]
    # the predictions change with the interactions (the comparison can fail)
    assert len({np.asarray(st.mask).tobytes() for st in got}) >= 2


@pytest.mark.parametrize("bad", [[3, 1], [0, 2], [], "1,3", [1, 2.5]])
def test_bad_budgets(bad: object) -> None:
    vol, obj = _synthetic()
    with pytest.raises(OptionError, match="budgets"):
        effort(ThresholdModel(), vol, obj, ProtocolConfig(options={"budgets": bad}),
               np.random.default_rng(0))  # fmt: skip
