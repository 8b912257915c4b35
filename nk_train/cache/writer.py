"""Compute and write one shard of the geometric cache: the body of a precompute task.

Lives in an importable module because dask spawns its worker processes (a function defined
in a script fed on stdin cannot be unpickled there). The teacher is loaded once per worker
process (``get_teacher`` caches it by its config). A task owns its shard: it decodes the
images, warps every view straight to the teacher's input size (the same region as the
student crop, so nothing is upsampled twice) in ``prep_threads`` threads that work up to
``PREP_LOOKAHEAD`` batches ahead of the teacher, runs the teacher in batches and takes its
outputs to the map grid (``nk_train.cmgc.teacher_maps``: depth, normals and the validity of
the crop's inside-the-image pixels and the teacher's foreground; the ``forward`` timing
includes that), and writes each array's shard in a single call. Bad input (unreadable image,
degenerate box, non-finite teacher output) fails the shard with every bad sample named, and
nothing of that shard is written. A failed write (disk full, read-only file system) is
reported as ``io_error`` naming the path, so the coordinator stops the run instead of failing
every remaining shard the same way. The record (``records.py``) is built from the files just
written, with the sha256 of the exact image bytes the maps were computed from.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..cmgc.geometric_teacher import GeometricTeacher, build_geometric_teacher
from ..cmgc.teacher_maps import teacher_maps
from ..data.seeded_aug import (bbox_center_scale, crop_inside, crop_region, region_affine,
                               sample_geometry, warp_crop)
from .fingerprint import canonical_json
from .images import image_entry
from .instances import Instance
from .layout import (MAP_ARRAYS, NORMAL_INT8_SCALE, ROW_ARRAYS, data_sha256, encode_normal,
                     open_split_arrays, shard_file_keys)
from .records import file_record


@dataclass(frozen=True)
class ShardTask:
    """Everything one task needs (picklable; paths absolute, workers may run elsewhere)."""

    split_dir: str
    shard: int
    rows: tuple[int, int]
    num_seeds: int
    first_instance: int  # instance index n of ``instances[0]``
    instances: tuple[Instance, ...]  # the instances the rows cover, in order
    input_size: tuple[int, int]
    map_size: tuple[int, int]
    aug: dict
    global_seed: int
    bbox_padding: float
    min_bbox_size: float
    depth_dtype: str
    normal_encoding: str
    batch_size: int
    teacher: dict
    prep_threads: int = 1  # threads decoding/cropping ahead of the teacher
    device: str = 'auto'
    torch_threads: int = 1
    fault_exit: bool = False  # testing only: the process exits mid-write of this shard


_TEACHERS: dict[str, GeometricTeacher] = {}
PREP_LOOKAHEAD = 2  # batches prepared ahead of the one in the teacher


def resolve_device(device: str) -> str:
    if device == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    return device


def get_teacher(cfg: dict, device: str) -> GeometricTeacher:
    """The teacher of this worker process, built on first use and kept (keyed by config)."""
    key = canonical_json(dict(cfg=cfg, device=device))
    if key not in _TEACHERS:
        if device.startswith('cuda'):
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        _TEACHERS[key] = build_geometric_teacher(cfg, device=device)
    return _TEACHERS[key]


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


def _prepare_instance(task: ShardTask, n: int, rows: list[int], teacher_wh: tuple[int, int]
                      ) -> tuple[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
                                 list | None, tuple[int, str] | None]:
    """Decode instance ``n`` once and crop its views ``rows``: ([(row, crop, affine,
    inside-image mask)], image entry, None), or ([], None, (sample id, error naming the
    sample)). Runs in the preparation threads (cv2 releases the GIL)."""
    inst = task.instances[n - task.first_instance]
    try:
        img, entry = read_image_hashed(inst.img_path)
        center, scale = bbox_center_scale(inst.bbox_xyxy, task.bbox_padding)
        out = []
        for r in rows:
            geometry = sample_geometry(inst.sample_id, r % task.num_seeds, task.aug,
                                       task.global_seed)
            region = crop_region(center, scale, geometry, task.input_size, task.min_bbox_size,
                                 sample=str(inst.sample_id))
            to_teacher = region_affine(region, teacher_wh)
            out.append((r, warp_crop(img, to_teacher, teacher_wh),
                        region_affine(region, task.input_size),
                        crop_inside(img.shape[:2], to_teacher, teacher_wh)))
        return out, entry, None
    except (OSError, ValueError) as err:  # DegenerateBBoxError is a ValueError
        return [], None, (inst.sample_id, f'sample {inst.sample_id} ({inst.img_path}): {err}')


def _instance_groups(rows: list[int], num_seeds: int) -> list[tuple[int, list[int]]]:
    groups: dict[int, list[int]] = {}
    for r in rows:
        groups.setdefault(r // num_seeds, []).append(r)
    return list(groups.items())


def compute_shard(task: ShardTask) -> dict[str, Any]:
    """Compute, write and hash shard ``task.shard``; return its record or its errors."""
    t_start = time.perf_counter()
    torch.set_num_threads(task.torch_threads)
    cv2.setNumThreads(1)  # parallel preparation = prep_threads, not nested OpenCV threads
    device = resolve_device(task.device)
    teacher = get_teacher(task.teacher, device)
    t_loaded = time.perf_counter()
    r0, r1 = task.rows
    n_rows = r1 - r0
    mw, mh = task.map_size
    out_maps = dict(depth=np.zeros((n_rows, 1, mh, mw), np.float32),
                    normal=np.zeros((n_rows, 3, mh, mw), np.float32),
                    valid=np.zeros((n_rows, 1, mh, mw), np.float32))
    affine = np.zeros((n_rows, 2, 3), np.float64)
    done = np.zeros(n_rows, bool)
    errors: dict[int, str] = {}
    images: dict[str, list] = {}  # file name -> [sha256, size, mtime_ns] of the bytes used
    t_forward = t_wait = 0.0
    teacher_wh = (teacher.input_size[1], teacher.input_size[0])

    batches = [list(range(b, min(b + task.batch_size, r1))) for b in range(r0, r1, task.batch_size)]
    with ThreadPoolExecutor(max_workers=task.prep_threads) as pool:
        pending: dict[int, list] = {}
        for i in range(len(batches)):
            for j in range(i, min(i + 1 + PREP_LOOKAHEAD, len(batches))):
                if j not in pending:  # prepare ahead while the teacher runs
                    pending[j] = [pool.submit(_prepare_instance, task, n, rows, teacher_wh)
                                  for n, rows in _instance_groups(batches[j], task.num_seeds)]
            t0 = time.perf_counter()
            groups = _instance_groups(batches[i], task.num_seeds)
            prepared = [f.result() for f in pending.pop(i)]
            t_wait += time.perf_counter() - t0
            for (n, _), (_, entry, error) in zip(groups, prepared):
                if error is not None:
                    errors[error[0]] = error[1]
                    continue
                inst = task.instances[n - task.first_instance]
                if images.setdefault(inst.file_name, entry)[0] != entry[0]:
                    errors[inst.sample_id] = (f'sample {inst.sample_id} ({inst.img_path}): the '
                                              'image file changed while this shard read it')
            if errors:
                continue  # the shard fails anyway; keep preparing to name every bad sample
            views = [v for group, _, _ in prepared for v in group]
            idx = np.asarray([v[0] for v in views]) - r0
            t0 = time.perf_counter()
            maps = _teacher_batch(teacher, views, device, task.map_size)
            t_forward += time.perf_counter() - t0
            for name, values in zip(('depth', 'normal', 'valid'), maps):
                out_maps[name][idx] = values
            affine[idx] = np.stack([v[2] for v in views])
            done[idx] = True

    rows_np = np.arange(r0, r1)
    stored = dict(
        sample_id=np.array([task.instances[r // task.num_seeds - task.first_instance].sample_id
                            for r in rows_np], np.int64),
        seed_k=(rows_np % task.num_seeds).astype(np.int32),
        affine=affine,
        depth=out_maps['depth'].astype(task.depth_dtype),
        normal=encode_normal(out_maps['normal'], task.normal_encoding),
        valid=out_maps['valid'].astype(np.uint8),
    )
    if not errors:
        bad = ~(np.isfinite(stored['depth']).reshape(n_rows, -1).all(1)
                & np.isfinite(out_maps['normal']).reshape(n_rows, -1).all(1)
                & np.isfinite(stored['normal'].astype(np.float32)).reshape(n_rows, -1).all(1))
        for i in np.flatnonzero(bad | ~done):
            sid, k = int(stored['sample_id'][i]), int(stored['seed_k'][i])
            errors.setdefault(sid, f'sample {sid} view {k} (row {r0 + i}): teacher output is '
                                   f'not finite (or overflows {task.depth_dtype})')
    t_computed = time.perf_counter()
    timings = dict(load_teacher=t_loaded - t_start, forward=t_forward, wait_prepare=t_wait)
    if errors:
        return dict(shard=task.shard, status='failed', record=None,
                    errors=[errors[s] for s in sorted(errors)], pid=os.getpid(),
                    timings=dict(timings, total=time.perf_counter() - t_start))

    split_dir = Path(task.split_dir)
    try:
        files = _write_shard(split_dir, task, stored)
    except OSError as err:
        return dict(shard=task.shard, status='io_error', record=None, pid=os.getpid(),
                    errors=[f'cannot write shard {task.shard} under {split_dir}: {err}'],
                    timings=dict(timings, total=time.perf_counter() - t_start))
    stored_normal = stored['normal'].astype(np.float32)
    if task.normal_encoding == 'int8':
        stored_normal /= NORMAL_INT8_SCALE
    norms = np.sqrt((stored_normal ** 2).sum(axis=1))
    record = dict(
        rows=[r0, r1], data_sha256=data_sha256(stored), files=files, nonfinite=0, images=images,
        depth_min=float(stored['depth'].min()), depth_max=float(stored['depth'].max()),
        normal_norm_min=float(norms.min()), normal_norm_max=float(norms.max()),
        valid_fraction=float(stored['valid'].mean()))
    t_end = time.perf_counter()
    timings.update(write=t_end - t_computed, total=t_end - t_start)
    return dict(shard=task.shard, status='ok', record=record, errors=[], pid=os.getpid(),
                timings=timings)


def _teacher_batch(teacher: GeometricTeacher, views: list, device: str,
                   map_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth, normals and validity on the map grid of a batch of prepared views."""
    crops = torch.from_numpy(np.stack([v[1] for v in views])).permute(0, 3, 1, 2)
    inside = torch.from_numpy(np.stack([v[3] for v in views]))
    maps = teacher_maps(teacher, crops.to(device), inside.to(device), map_size)
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return tuple(m.cpu().numpy() for m in maps)


def _write_shard(split_dir: Path, task: ShardTask, stored: dict[str, np.ndarray]
                 ) -> dict[str, dict]:
    """Write every array's part of the shard (one call each) and return the file records."""
    r0, r1 = task.rows
    arrays = open_split_arrays(split_dir, mode='r+')
    for name in ROW_ARRAYS:
        if task.fault_exit and name == ROW_ARRAYS[-1]:
            os._exit(17)  # testing only: a worker dying with its shard half written
        arrays[name][r0:r1] = stored[name]
    keys = shard_file_keys(arrays, task.shard)
    rows_per_shard = int(arrays[MAP_ARRAYS[0]].shards[0])
    return {name: file_record(split_dir, keys[name], r1 - r0,
                              rows_per_shard if name in MAP_ARRAYS else None)
            for name in ROW_ARRAYS}
