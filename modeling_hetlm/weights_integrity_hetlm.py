"""Integrity of saved weights: safetensors only, a sha256 of each weights file, finite values, an exact match.

`save_pretrained` writes `weights_sha256.json` beside the weights (`{"model.safetensors": "<sha256>", ...}`,
one entry per `*.safetensors` file); loading a local folder recomputes the hashes first, so a flipped byte or a
truncated file is an `OSError` naming the file instead of different outputs. A folder saved without the file
(by an older HeTLM or by plain `transformers`) loads with a logged warning. Pickled weights
(`pytorch_model.bin`) are refused, and after loading every floating-point tensor must be finite (a NaN or inf is
a `ValueError` naming the tensor). The plain causal LMs of `hetlm pretrain` are saved and loaded with the same
functions (`inference.loading`).

This file is copied into saved folders (imported relatively by `hub_hetlm.py`), so it imports only `torch`.

Example:
    >>> import tempfile
    >>> from safetensors.torch import save_file
    >>> folder = Path(tempfile.mkdtemp())
    >>> save_file({"w": torch.ones(2)}, folder / "model.safetensors")
    >>> _ = write_weights_checksums(folder)
    >>> verify_weights_checksums(folder)
    >>> _ = (folder / "model.safetensors").write_bytes(b"{}")
    >>> try:
    ...     verify_weights_checksums(folder)
    ... except OSError as error:
    ...     print(str(error).split(" (")[0])
    model.safetensors: sha256 differs from weights_sha256.json
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

WEIGHTS_CHECKSUMS_FILE = "weights_sha256.json"
PICKLE_WEIGHTS_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
_CHUNK_BYTES = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file's bytes, read in 1 MiB chunks.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "empty"
        >>> _ = path.write_bytes(b"")
        >>> file_sha256(path)[:12]
        'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_weights_checksums(folder: str | os.PathLike) -> Path:
    """Write `weights_sha256.json`: the sha256 of every `*.safetensors` file of `folder` (see the module example)."""
    folder = Path(folder)
    checksums = {path.name: file_sha256(path) for path in sorted(folder.glob("*.safetensors"))}
    path = folder / WEIGHTS_CHECKSUMS_FILE
    path.write_text(json.dumps(checksums, indent=2) + "\n", encoding="utf-8")
    return path


def verify_weights_checksums(folder: str | os.PathLike) -> None:
    """Raise `OSError` naming the file unless every `*.safetensors` file of `folder` has the sha256 recorded in
    `weights_sha256.json` (and every recorded file exists); a folder without that file is logged, not refused.
    Pickled weights without safetensors ones are refused first (`refuse_pickle_weights`)."""
    folder = Path(folder)
    refuse_pickle_weights(folder)
    record = folder / WEIGHTS_CHECKSUMS_FILE
    if not record.is_file():
        logger.warning("%s: no %s, the weights' integrity cannot be verified", folder, WEIGHTS_CHECKSUMS_FILE)
        return
    try:
        checksums = json.loads(record.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise OSError(f"{WEIGHTS_CHECKSUMS_FILE}: not valid JSON ({error})") from None
    if not isinstance(checksums, dict) or not all(isinstance(value, str) for value in checksums.values()):
        raise OSError(f"{WEIGHTS_CHECKSUMS_FILE}: not a JSON object of file name -> sha256")
    present = {path.name for path in folder.glob("*.safetensors")}
    unrecorded = sorted(present - set(checksums))
    if unrecorded:
        raise OSError(f"{unrecorded[0]}: a weights file not recorded in {WEIGHTS_CHECKSUMS_FILE}")
    for name, expected in checksums.items():
        if name not in present:
            raise OSError(f"{name}: recorded in {WEIGHTS_CHECKSUMS_FILE} but missing")
        actual = file_sha256(folder / name)
        if actual != expected:
            raise OSError(
                f"{name}: sha256 differs from {WEIGHTS_CHECKSUMS_FILE} (the file is corrupted or was replaced; "
                f"{actual[:12]} != {expected[:12]})"
            )


def refuse_pickle_weights(folder: str | os.PathLike) -> None:
    """Raise `OSError` when `folder` holds pickled weights (`pytorch_model.bin`, `*.pt`, ...) and no safetensors:
    unpickling runs arbitrary code, so only safetensors weights are loaded.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "pytorch_model.bin").write_bytes(b"")
        >>> try:
        ...     refuse_pickle_weights(folder)
        ... except OSError as error:
        ...     print(str(error)[:52])
        pytorch_model.bin: pickled weights are refused (unpi
    """
    folder = Path(folder)
    if any(folder.glob("*.safetensors")):
        return
    pickles = sorted(path.name for path in folder.iterdir() if path.suffix in PICKLE_WEIGHTS_SUFFIXES)
    if pickles:
        raise OSError(
            f"{pickles[0]}: pickled weights are refused (unpickling runs arbitrary code); save the model as "
            "safetensors (save_pretrained's default)"
        )


def check_finite_weights(model: torch.nn.Module) -> None:
    """Raise `ValueError` naming the first floating-point parameter or buffer holding a NaN or an infinity.

    Example:
        >>> layer = torch.nn.Linear(2, 2)
        >>> check_finite_weights(layer)
        >>> with torch.no_grad():
        ...     layer.bias[0] = float("nan")
        >>> try:
        ...     check_finite_weights(layer)
        ... except ValueError as error:
        ...     print(error)
        weight bias has 1 non-finite values (NaN or inf)
    """
    tensors = [*model.named_parameters(), *model.named_buffers()]
    for name, tensor in tensors:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise ValueError(f"weight {name} has {bad} non-finite values (NaN or inf)")


def check_loading_info(info: dict) -> None:
    """Raise `OSError` listing the missing, unexpected or misshaped weights of `from_pretrained`'s loading info
    (`output_loading_info=True`), which `transformers` would otherwise only log (leaving random weights).

    Example:
        >>> check_loading_info({"missing_keys": [], "unexpected_keys": set(), "mismatched_keys": []})
        >>> try:
        ...     check_loading_info({"missing_keys": ["lm_head.weight"]})
        ... except OSError as error:
        ...     print(error)
        the weights do not match the model: {'missing_keys': ['lm_head.weight']}
    """
    problems = {name: info.get(name) for name in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {name: sorted(map(str, keys)) for name, keys in problems.items() if keys}
    if problems:
        raise OSError(f"the weights do not match the model: {problems}")


__all__ = [
    "WEIGHTS_CHECKSUMS_FILE",
    "check_finite_weights",
    "check_loading_info",
    "file_sha256",
    "refuse_pickle_weights",
    "verify_weights_checksums",
    "write_weights_checksums",
]
