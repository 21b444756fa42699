"""Volumetric (3D) evaluation: whole volumes, 3D objects, protocols, metrics in mm.

Records (:mod:`sambench.volumes.types`)
--------------------------------------
- :class:`Volume3D`: one prepared volume. ``image`` SxHxW uint8 (the standardized slices, equal
  to the prepared PNGs), ``label`` SxHxW uint8 (numpy for NIfTI; lazy, read slice by slice, for a
  zarr-prepared volume), ``spacing`` (slice, row, column) mm, plus the
  source geometry (``slice_axis``, ITK ``origin`` and ``direction``) and paths. Axis 0 is the
  axis prepare sliced along; for an axial volume the arrays are exactly (z, y, x).
- :class:`Object3D`: one label value of one volume (``volumes3d.parquet`` row): voxel count,
  bbox (z0, y0, x0, z1, y1, x1) inclusive, key slice (largest area), slices holding it.
- :class:`ProtocolConfig`: the options handed to every protocol (first prompt ``box``/``point``,
  shift range, multimask, mask prompt on/off, number of steps, protocol-specific ``options``).
- :class:`StepResult`: one step of a protocol: ``step`` (0 = first prompt, then clicks),
  ``mask`` SxHxW bool over the whole volume (dense, or a :class:`~sambench.volumes.sparse.
  SparseMask` of the predicted slices), ``seconds``, ``n_slices_predicted``, ``extras``
  (further result columns).

Protocols and their registry
----------------------------
A protocol is a function ``(model, volume, obj, config, rng) -> list[StepResult]`` (the
:class:`~sambench.volumes.types.ProtocolFn` type; ``model`` is any
:class:`~sambench.models.base.PromptableModel`, ``rng`` a ``numpy.random.Generator`` seeded per
(volume, object) by the runner). It returns its steps in order; the runner scores each step's
mask in 3D against the object (:func:`sambench.volumes.masks.score_object`: the metrics of
:func:`sambench.metrics.volume.volume_metrics` on the ground-truth + prediction crop), writes
one row per (volume, object, model, protocol, step) and saves masks. To add a protocol, add a
module to :mod:`sambench.volumes.protocols` that decorates its function::

    from sambench.volumes.types import register_protocol

    @register_protocol("my-protocol", "one line for --help", requires=None)
    def my_protocol(model, volume, obj, config, rng): ...

:func:`~sambench.volumes.types.load_protocols` imports every module of that package, so the
runner (:mod:`sambench.volumes.evaluate`) and ``sambench evaluate-3d --protocol`` know it with no
other edit. ``requires(model) -> str | None`` refuses models that cannot run it (the reason).

Slices are predicted through :class:`sambench.volumes.slices.SlicePredictor` (encode each slice
once, decode many; highest-scored candidate kept); in ``evaluate-3d`` its embeddings come from the
volume's :class:`sambench.volumes.embeddings.SliceEmbeddings`, one per slice for every object and
protocol (a memory budget, the on-disk cache). Reading and writing the prepared 3D form:
:mod:`sambench.volumes.io`; building it during ``sambench prepare``:
:mod:`sambench.data.volumes3d`. See docs/volumes.md for protocols, columns, units and decisions.
"""

from sambench.volumes.types import (
    Object3D,
    Protocol,
    ProtocolConfig,
    ProtocolFn,
    ProtocolSpec,
    StepResult,
    Volume3D,
    get_protocol,
    load_protocols,
    protocol_names,
    register_protocol,
)

__all__ = [
    "Object3D",
    "Protocol",
    "ProtocolConfig",
    "ProtocolFn",
    "ProtocolSpec",
    "StepResult",
    "Volume3D",
    "get_protocol",
    "load_protocols",
    "protocol_names",
    "register_protocol",
]
