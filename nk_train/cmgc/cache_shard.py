"""One precompute task of the geometric cache: the teacher's maps of one shard's views.

Lives in an importable module because dask spawns its worker processes (a function defined
in a script fed on stdin cannot be unpickled there). The teacher is loaded once per worker
process (``get_teacher`` caches it by its config). A task owns its shard: it decodes the
images, warps every view straight to the teacher's input size (the same region as the
student crop, so nothing is upsampled twice) in ``prep_threads`` threads that work up to
``PREP_LOOKAHEAD`` batches ahead of the teacher, runs the teacher in batches and takes its
outputs to the map grid (``teacher_maps``: depth, normals and the validity of the crop's
inside-the-image pixels and the teacher's foreground; the ``forward`` timing includes that),
and hands the rows to the cache writer (``nk_train.cache.writer``). Bad input (unreadable
image, degenerate box, non-finite teacher output) fails the shard with every bad sample
named, and nothing of that shard is written. A failed write (disk full, read-only file
system) is reported as ``io_error`` naming the path, so the coordinator stops the run instead
of failing every remaining shard the same way.
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

from ..cache.fingerprint import canonical_json
from ..cache.images import read_image_hashed
from ..cache.instances import Instance
from ..cache.normal_codec import encode_normal
from ..cache.settings import GeoCacheSettings
from ..cache.writer import write_shard
from ..crop_geometry import (bbox_center_scale, crop_inside, crop_region, region_affine,
                             sample_geometry, warp_crop)
from .geometric_teacher import GeometricTeacher, build_geometric_teacher
from .teacher_maps import teacher_maps

PREP_LOOKAHEAD = 2  # batches prepared ahead of the one in the teacher
_TEACHERS: dict[str, GeometricTeacher] = {}


@dataclass(frozen=True)
class ShardTask:
    """Everything one task needs (picklable; paths absolute, workers may run elsewhere)."""

    settings: GeoCacheSettings
    teacher: dict  # settings.teacher with absolute file paths
    split_dir: str
    shard: int
    rows: tuple[int, int]
    num_seeds: int
    first_instance: int  # instance index n of ``instances[0]``
    instances: tuple[Instance, ...]  # the instances the rows cover, in order
    device: str = 'auto'
    torch_threads: int = 1


@dataclass
class _Computed:
    """A shard's maps as the teacher gave them (float32), before storage."""

    depth: np.ndarray
    normal: np.ndarray
    valid: np.ndarray
    affine: np.ndarray
    done: np.ndarray  # rows whose view was computed
    errors: dict[int, str]  # sample id -> why it failed
    images: dict[str, list]  # file name -> [sha256, size, mtime_ns] of the bytes used


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


def compute_shard(task: ShardTask) -> dict[str, Any]:
    """Compute, write and hash shard ``task.shard``; return its record or its errors."""
    t_start = time.perf_counter()
    torch.set_num_threads(task.torch_threads)
    cv2.setNumThreads(1)  # parallel preparation = prep_threads, not nested OpenCV threads
    device = resolve_device(task.device)
    teacher = get_teacher(task.teacher, device)
    timings = dict(load_teacher=time.perf_counter() - t_start)
    computed = _compute_maps(task, teacher, device, timings)
    stored = _stored_rows(task, computed)
    errors = computed.errors or _unusable_rows(task, computed, stored)
    t_computed = time.perf_counter()

    def result(status: str, record: dict | None = None, errors: list[str] = ()) -> dict:
        return dict(shard=task.shard, status=status, record=record, errors=list(errors),
                    pid=os.getpid(), timings=dict(timings, total=time.perf_counter() - t_start))

    if errors:
        return result('failed', errors=[errors[s] for s in sorted(errors)])
    split_dir = Path(task.split_dir)
    try:
        record = write_shard(split_dir, task.shard, task.rows, stored, computed.images)
    except OSError as err:
        return result('io_error', errors=[f'cannot write shard {task.shard} under {split_dir}: '
                                          f'{err}'])
    timings['write'] = time.perf_counter() - t_computed
    return result('ok', record)


def _compute_maps(task: ShardTask, teacher: GeometricTeacher, device: str,
                  timings: dict[str, float]) -> _Computed:
    """Run the teacher over the shard's views, preparing batches ahead in threads; keep
    preparing after a bad sample so that every bad sample is named."""
    r0, r1 = task.rows
    n_rows, (mw, mh) = r1 - r0, task.settings.map_size
    out = _Computed(depth=np.zeros((n_rows, 1, mh, mw), np.float32),
                    normal=np.zeros((n_rows, 3, mh, mw), np.float32),
                    valid=np.zeros((n_rows, 1, mh, mw), np.float32),
                    affine=np.zeros((n_rows, 2, 3), np.float64),
                    done=np.zeros(n_rows, bool), errors={}, images={})
    timings.update(forward=0.0, wait_prepare=0.0)
    teacher_wh = (teacher.input_size[1], teacher.input_size[0])
    size = task.settings.batch_size
    batches = [list(range(b, min(b + size, r1))) for b in range(r0, r1, size)]
    with ThreadPoolExecutor(max_workers=task.settings.prep_threads) as pool:
        pending: dict[int, list] = {}
        for i in range(len(batches)):
            for j in range(i, min(i + 1 + PREP_LOOKAHEAD, len(batches))):
                if j not in pending:  # prepare ahead while the teacher runs
                    pending[j] = [pool.submit(_prepare_instance, task, n, rows, teacher_wh)
                                  for n, rows in _instance_groups(batches[j], task.num_seeds)]
            t0 = time.perf_counter()
            prepared = [f.result() for f in pending.pop(i)]
            timings['wait_prepare'] += time.perf_counter() - t0
            _note_images(task, batches[i], prepared, out)
            if out.errors:
                continue  # the shard fails anyway
            views = [v for group, _, _ in prepared for v in group]
            idx = np.asarray([v[0] for v in views]) - r0
            t0 = time.perf_counter()
            out.depth[idx], out.normal[idx], out.valid[idx] = _teacher_batch(
                teacher, views, device, task.settings.map_size)
            timings['forward'] += time.perf_counter() - t0
            out.affine[idx] = np.stack([v[2] for v in views])
            out.done[idx] = True
    return out


def _note_images(task: ShardTask, batch: list[int], prepared: list, out: _Computed) -> None:
    """Record each prepared instance's image entry, or its error; an image whose bytes
    differ between two reads of this shard is an error too."""
    for (n, _), (_, entry, error) in zip(_instance_groups(batch, task.num_seeds), prepared):
        if error is not None:
            out.errors[error[0]] = error[1]
            continue
        inst = task.instances[n - task.first_instance]
        if out.images.setdefault(inst.file_name, entry)[0] != entry[0]:
            out.errors[inst.sample_id] = (f'sample {inst.sample_id} ({inst.img_path}): the '
                                          'image file changed while this shard read it')


def _stored_rows(task: ShardTask, computed: _Computed) -> dict[str, np.ndarray]:
    """The shard's rows as the cache stores them (``layout.ROW_ARRAYS``)."""
    rows = np.arange(*task.rows)
    first = task.first_instance
    return dict(
        sample_id=np.array([task.instances[r // task.num_seeds - first].sample_id for r in rows],
                           np.int64),
        seed_k=(rows % task.num_seeds).astype(np.int32),
        affine=computed.affine,
        depth=computed.depth.astype(task.settings.depth_dtype),
        normal=encode_normal(computed.normal, task.settings.normal_encoding),
        valid=computed.valid.astype(np.uint8))


def _unusable_rows(task: ShardTask, computed: _Computed, stored: dict[str, np.ndarray]
                   ) -> dict[int, str]:
    """Rows not computed, or whose maps are not finite as computed or as stored (float16
    overflow), by sample id."""
    n_rows = len(stored['sample_id'])

    def finite(a: np.ndarray) -> np.ndarray:
        return np.isfinite(a).reshape(n_rows, -1).all(1)

    good = (finite(stored['depth']) & finite(computed.normal)
            & finite(stored['normal'].astype(np.float32)))
    errors: dict[int, str] = {}
    for i in np.flatnonzero(~good | ~computed.done):
        sid, k = int(stored['sample_id'][i]), int(stored['seed_k'][i])
        errors.setdefault(sid, f'sample {sid} view {k} (row {task.rows[0] + i}): teacher output '
                               f'is not finite (or overflows {task.settings.depth_dtype})')
    return errors


def _instance_groups(rows: list[int], num_seeds: int) -> list[tuple[int, list[int]]]:
    groups: dict[int, list[int]] = {}
    for r in rows:
        groups.setdefault(r // num_seeds, []).append(r)
    return list(groups.items())


def _prepare_instance(task: ShardTask, n: int, rows: list[int], teacher_wh: tuple[int, int]
                      ) -> tuple[list[tuple[int, np.ndarray, np.ndarray, np.ndarray]],
                                 list | None, tuple[int, str] | None]:
    """Decode instance ``n`` once and crop its views ``rows``: ([(row, crop, affine,
    inside-image mask)], image entry, None), or ([], None, (sample id, error naming the
    sample)). Runs in the preparation threads (cv2 releases the GIL)."""
    inst = task.instances[n - task.first_instance]
    s = task.settings
    try:
        img, entry = read_image_hashed(inst.img_path)
        center, scale = bbox_center_scale(inst.bbox_xyxy, s.bbox_padding)
        out = []
        for r in rows:
            geometry = sample_geometry(inst.sample_id, r % task.num_seeds, s.aug, s.global_seed)
            region = crop_region(center, scale, geometry, s.input_size, s.min_bbox_size,
                                 sample=str(inst.sample_id))
            to_teacher = region_affine(region, teacher_wh)
            out.append((r, warp_crop(img, to_teacher, teacher_wh),
                        region_affine(region, s.input_size),
                        crop_inside(img.shape[:2], to_teacher, teacher_wh)))
        return out, entry, None
    except (OSError, ValueError) as err:  # DegenerateBBoxError is a ValueError
        return [], None, (inst.sample_id, f'sample {inst.sample_id} ({inst.img_path}): {err}')


def _teacher_batch(teacher: GeometricTeacher, views: list, device: str,
                   map_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth, normals and validity on the map grid of a batch of prepared views."""
    crops = torch.from_numpy(np.stack([v[1] for v in views])).permute(0, 3, 1, 2)
    inside = torch.from_numpy(np.stack([v[3] for v in views]))
    maps = teacher_maps(teacher, crops.to(device), inside.to(device), map_size)
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return tuple(m.cpu().numpy() for m in maps)
