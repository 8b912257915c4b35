"""How unit normals are stored in the cache (``geo_cache.normal_encoding``) and read back.

One codec for the writer, the reader and the checks: ``int8`` keeps ``round(n * 127)``
(quantisation error <= 1/254 per component), ``float16``/``float32`` keep the values.
"""
from __future__ import annotations

import numpy as np

NORMAL_ENCODINGS = ('int8', 'float16', 'float32')
INT8_SCALE = 127.0


def encode_normal(normal: np.ndarray, encoding: str) -> np.ndarray:
    """Unit normals (float32) -> stored values."""
    if encoding == 'int8':
        return np.rint(np.clip(normal, -1.0, 1.0) * INT8_SCALE).astype(np.int8)
    return normal.astype(encoding)


def dequantize_normal(stored: np.ndarray) -> np.ndarray:
    """Stored values -> float32 vectors as stored (not renormalised: the checks measure how
    far from unit length they are)."""
    n = stored.astype(np.float32)
    if stored.dtype == np.int8:
        n /= INT8_SCALE
    return n


def decode_normal(stored: np.ndarray) -> np.ndarray:
    """Stored values -> unit normals (float32), renormalised over the channel axis (-3)."""
    n = dequantize_normal(stored)
    norm = np.sqrt((n * n).sum(axis=-3, keepdims=True))
    return n / np.maximum(norm, 1e-6)

