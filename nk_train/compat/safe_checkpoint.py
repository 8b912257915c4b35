"""Load mmengine checkpoints under torch >= 2.6 without turning ``weights_only`` off.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True`` and refuses any global not on
its allow-list. mmengine 0.10.7 calls plain ``torch.load`` and its checkpoints carry numpy
scalars/arrays (in ``meta`` and the message hub's history buffers), so loading or resuming
fails. We allow exactly the globals those checkpoints need; anything else (an arbitrary
pickled object) is still refused by torch.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..utils import tensors_digest


def _numpy_globals() -> list:
    """numpy objects that appear in mmengine checkpoints (scalars, arrays, dtypes)."""
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray
    dtype_classes = [type(np.dtype(t)) for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, np.float32, np.float64)]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *dtype_classes]


def _history_buffer_getattr(obj, name: str):
    """``getattr`` restricted to ``HistoryBuffer``'s statistics methods.

    mmengine's ``HistoryBuffer`` pickles its ``statistics_methods`` (``min``, ``max``,
    ``current``, ``mean`` and registered ones) as ``getattr(HistoryBuffer, name)``. Allowing
    the real builtin would let a checkpoint reach any attribute of any allowed object, so the
    unpickler gets this stand-in, which resolves only those methods and refuses the rest.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    if obj is HistoryBuffer and isinstance(name, str) and not name.startswith('_'):
        method = HistoryBuffer.__dict__.get(name)
        if callable(method):
            return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}): only HistoryBuffer statistics '
        'methods are allowed')


def _mmengine_globals() -> list:
    from mmengine.logging.history_buffer import HistoryBuffer

    return [HistoryBuffer, (_history_buffer_getattr, 'builtins.getattr')]


MMENGINE_CHECKPOINT_GLOBALS: list = []


def allow_mmengine_checkpoints() -> list:
    """Register the allow-list with ``torch.serialization`` (idempotent); return it."""
    if not MMENGINE_CHECKPOINT_GLOBALS:
        MMENGINE_CHECKPOINT_GLOBALS.extend(_numpy_globals() + _mmengine_globals())
    if hasattr(torch.serialization, 'add_safe_globals'):
        torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_GLOBALS)
    return MMENGINE_CHECKPOINT_GLOBALS


def checkpoint_weights_sha256(path: str | Path) -> str:
    """SHA-256 of the tensors a checkpoint's ``state_dict`` holds (``tensors_digest``): the
    model, not the file. mmengine also saves the run's timestamped name, config and message
    hub in the file, so two checkpoints of bit-identical weights have different file digests;
    this one tells whether two runs started from the same model."""
    allow_mmengine_checkpoints()
    ckpt = torch.load(str(path), map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict') if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f'{path}: not an mmengine checkpoint (no state_dict of tensors)')
    return tensors_digest(state.items())
