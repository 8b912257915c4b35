"""Small helpers shared by the packages: file and tensor hashes, plain (JSON-able) config
values."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 22) -> str:
    """sha256 of a file's bytes, read in chunks (checkpoints can be gigabytes)."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def tensors_digest(named: Iterable[tuple[str, torch.Tensor]]) -> str:
    """SHA-256 over named tensors sorted by name: names, dtypes, shapes and raw bytes."""
    h = hashlib.sha256()
    for name, value in sorted(named, key=lambda item: item[0]):
        t = value.detach().cpu().contiguous()
        h.update(f'{name}|{t.dtype}|{tuple(t.shape)}|'.encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return h.hexdigest()


def to_plain(obj: Any) -> Any:
    """ConfigDicts / tuples -> plain dicts and lists (JSON-able, comparable)."""
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj
