"""The image files a cache was computed from: sha256 of their bytes, checked cheaply.

A precompute task hashes the very bytes it decodes (``image_entry``), so the manifest's image
table says exactly which file contents the maps came from. Checking the table again later
costs one ``stat`` per distinct image: an image whose size and modification time (ns) equal
the recorded ones keeps its recorded hash (as git's index and make do); any other is re-hashed
and compared. A same-size replacement that also restores the old mtime (``touch -r``,
``rsync -t`` from another copy) passes that shortcut: ``tools/check_cache.py --full``
re-hashes every image. ``read_image_hashed`` decodes an image and hashes the same bytes.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping

import cv2
import numpy as np

from ..utils import sha256_file
from .instances import InstanceList

HASH_THREADS = 4  # hashlib releases the GIL on large buffers


def image_entry(data: bytes, st: os.stat_result) -> list:
    """[sha256, size, mtime_ns] of an image file whose bytes are ``data``."""
    return [hashlib.sha256(data).hexdigest(), st.st_size, st.st_mtime_ns]


def read_image(path: str) -> np.ndarray:
    """Decode like mmcv's ``LoadImage`` (cv2 backend, ``IMREAD_COLOR``, BGR), but refuse
    truncated JPEG/PNG files, which OpenCV decodes silently with a grey lower part."""
    return read_image_hashed(path)[0]


def read_image_hashed(path: str) -> tuple[np.ndarray, list]:
    """The decoded image (as ``read_image``) and the [sha256, size, mtime_ns] of the bytes
    it was decoded from."""
    with open(path, 'rb') as f:
        st = os.fstat(f.fileno())
        data = f.read()
    return _decode(data), image_entry(data, st)


def _decode(data: bytes) -> np.ndarray:
    truncated = _truncation(data)
    if truncated:
        raise ValueError(f'truncated image file: {truncated}')
    img = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    if img is None:
        raise ValueError('cannot decode image (corrupt or not an image)')
    return img


def _truncation(data: bytes) -> str | None:
    """Why ``data`` looks cut short, or None. JPEG: no end-of-image marker after the last
    start-of-scan (0xFFD9 cannot occur inside entropy-coded data); PNG: no IEND chunk."""
    if data[:2] == b'\xff\xd8':
        sos = data.rfind(b'\xff\xda')
        if sos < 0 or data.find(b'\xff\xd9', sos) < 0:
            return 'JPEG without an end-of-image marker after its last scan'
    elif data[:8] == b'\x89PNG\r\n\x1a\n' and data.rfind(b'IEND') < 0:
        return 'PNG without an IEND chunk'
    return None


def current_images(instances: InstanceList, recorded: Mapping[str, list],
                   rehash: bool = False) -> tuple[dict[str, list], dict[str, str]]:
    """(file name -> [sha256, size, mtime_ns] now, file name -> why it cannot be read) for
    the distinct images of ``instances`` that ``recorded`` lists."""
    paths = {inst.file_name: inst.img_path for inst in instances.instances
             if inst.file_name in recorded}
    table: dict[str, list] = {}
    errors: dict[str, str] = {}
    to_hash = []
    for name, path in paths.items():
        try:
            st = os.stat(path)
        except OSError as err:
            errors[name] = f'{path}: {err.strerror or err}'
            continue
        old = recorded[name]
        if not rehash and [st.st_size, st.st_mtime_ns] == list(old[1:]):
            table[name] = list(old)
        else:
            to_hash.append((name, path, st))
    with ThreadPoolExecutor(HASH_THREADS) as pool:
        digests = pool.map(lambda item: _try_hash(item[1]), to_hash)
        for (name, path, st), (digest, error) in zip(to_hash, digests):
            if error is None:
                table[name] = [digest, st.st_size, st.st_mtime_ns]
            else:
                errors[name] = f'{path}: {error}'
    return table, errors


def _try_hash(path: str) -> tuple[str | None, str | None]:
    try:
        return sha256_file(path), None
    except OSError as err:
        return None, err.strerror or str(err)


def image_differences(recorded: Mapping[str, list], current: Mapping[str, list],
                      errors: Mapping[str, str], limit: int = 20) -> list[str]:
    """One line per image whose bytes differ from those the cache was computed from."""
    lines = [f'image {name}: cannot be read ({why})' for name, why in sorted(errors.items())]
    for name in sorted(current):
        old, new = recorded[name], current[name]
        if old[0] != new[0]:
            lines.append(f'image {name}: sha256 {old[0][:12]}... ({old[1]} bytes) when the '
                         f'cache was computed, now {new[0][:12]}... ({new[1]} bytes): the '
                         'file was replaced or edited')
    if len(lines) > limit:
        lines = lines[:limit] + [f'... and {len(lines) - limit} more images']
    return lines
