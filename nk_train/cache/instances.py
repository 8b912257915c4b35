"""The instances of a split, in the order and with the filtering rules of mmpose's top-down
``CocoDataset``, read straight from the COCO file (no mmpose import, cheap in workers).

Cache rows are ``n * K + k`` over this list, and the reader maps sample ids (COCO annotation
``id``) back to ``n``, so a dataset that orders the same instances differently still reads
the right rows. Order: images in file order, each image's annotations in file order (mmpose's;
``UnlabeledCocoDataset`` walks the annotations in file order, the same order for files that
list annotations image by image, as SyRIP does). Boxes are clipped to the size the ``images``
entry states. Labeled splits (``require_keypoints=True``) follow mmpose's ``parse_data_info``
+ ``_is_valid_instance``: an instance is dropped when it has no ``bbox``/``keypoints``, is a
crowd, has a zero-width/height box after clipping, or has no labeled keypoint. The unlabeled
pool keeps every annotation with a box, as ``UnlabeledCocoDataset`` does, except a box with no
area inside the image. Dropped instances are listed with their reason (never silently).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Instance:
    sample_id: int  # COCO annotation id
    img_path: str
    file_name: str  # the image's ``file_name`` in the annotation file (the image table's key)
    bbox_xyxy: tuple[float, float, float, float]  # float32 values, clipped like mmpose


@dataclass(frozen=True)
class InstanceList:
    ann_file: str
    ann_sha256: str
    require_keypoints: bool
    instances: tuple[Instance, ...]
    excluded: tuple[tuple[int, str], ...] = ()
    subset: tuple[int, ...] | int | None = None

    def __len__(self) -> int:
        return len(self.instances)

    @property
    def sample_ids(self) -> list[int]:
        return [inst.sample_id for inst in self.instances]

    def select(self, indices: Sequence[int] | int | None) -> 'InstanceList':
        """mmengine ``BaseDataset(indices=...)`` semantics: an int keeps the first (last, if
        negative) N instances; a sequence keeps those positions in the given order."""
        if indices is None:
            return self
        if isinstance(indices, int):
            chosen = self.instances[:indices] if indices >= 0 else self.instances[indices:]
            subset: tuple[int, ...] | int = indices
        else:
            subset = tuple(int(i) for i in indices)
            for i in subset:
                if not -len(self.instances) <= i < len(self.instances):
                    raise IndexError(f'index {i} out of range for {len(self.instances)} '
                                     f'instances of {self.ann_file}')
            chosen = tuple(self.instances[i] for i in subset)
        return InstanceList(self.ann_file, self.ann_sha256, self.require_keypoints,
                            tuple(chosen), self.excluded, subset)


def list_instances(ann_file: str | Path, img_dir: str | Path,
                   require_keypoints: bool) -> InstanceList:
    """All usable instances of a COCO keypoint file (see the module docstring for the rules)."""
    ann_file = Path(ann_file)
    try:
        raw = ann_file.read_bytes()
        coco = json.loads(raw)
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f'cannot read annotation file {ann_file}: {err}') from err
    for key in ('images', 'annotations'):
        if not isinstance(coco.get(key), list):
            raise ValueError(f'{ann_file}: no "{key}" list')

    images: dict = {}
    for img in coco['images']:
        if img.get('id') in images:
            raise ValueError(f'{ann_file}: duplicate image id {img.get("id")}')
        images[img.get('id')] = img
    anns_by_image: dict = {img_id: [] for img_id in images}
    seen_ids: set = set()
    for ann in coco['annotations']:
        ann_id = ann.get('id')
        if not isinstance(ann_id, int) or isinstance(ann_id, bool) or ann_id < 0:
            raise ValueError(f'{ann_file}: annotation id must be a non-negative integer, '
                             f'got {ann_id!r}')
        if ann_id in seen_ids:
            raise ValueError(f'{ann_file}: duplicate annotation id {ann_id}')
        seen_ids.add(ann_id)
        if ann.get('image_id') not in anns_by_image:
            raise ValueError(f'{ann_file}: annotation {ann_id} refers to unknown image id '
                             f'{ann.get("image_id")!r}')
        anns_by_image[ann['image_id']].append(ann)

    kept: list[Instance] = []
    excluded: list[tuple[int, str]] = []
    for img_id, img in images.items():
        for ann in anns_by_image[img_id]:
            xyxy = _clipped_xyxy(ann['bbox'], img) if 'bbox' in ann else None
            reason = _exclusion_reason(ann, xyxy, require_keypoints)
            if reason is not None:
                excluded.append((ann['id'], reason))
                continue
            kept.append(Instance(sample_id=int(ann['id']),
                                 img_path=str(Path(img_dir) / img['file_name']),
                                 file_name=str(img['file_name']), bbox_xyxy=xyxy))
    return InstanceList(ann_file=str(ann_file), ann_sha256=hashlib.sha256(raw).hexdigest(),
                        require_keypoints=require_keypoints, instances=tuple(kept),
                        excluded=tuple(excluded))


def _clipped_xyxy(bbox: Sequence[float], img: dict) -> tuple[float, float, float, float]:
    """As mmpose: clip x1, y1, x2, y2 to [0, size - 1], then round to float32. (Python's
    min/max, the same values as ``np.clip`` on scalars at a fraction of its cost, which
    dominated opening a cache of 20k instances.)"""
    x, y, w, h = bbox
    x_max, y_max = img['width'] - 1, img['height'] - 1
    xyxy = np.array([min(max(x, 0), x_max), min(max(y, 0), y_max),
                     min(max(x + w, 0), x_max), min(max(y + h, 0), y_max)], dtype=np.float32)
    return tuple(float(v) for v in xyxy)


def _exclusion_reason(ann: dict, xyxy: tuple[float, float, float, float] | None,
                      require_keypoints: bool) -> str | None:
    if xyxy is None or (require_keypoints and 'keypoints' not in ann):
        return 'no bbox or keypoints field'
    if require_keypoints and ann.get('iscrowd', 0):
        return 'crowd annotation'
    if require_keypoints:
        kpts = np.asarray(ann['keypoints'], dtype=np.float32).reshape(-1, 3)
        num = ann['num_keypoints'] if 'num_keypoints' in ann else \
            int(np.count_nonzero(kpts[:, :2].max(axis=1)))
        if num == 0:
            return 'no labeled keypoints (num_keypoints == 0)'
    x1, y1, x2, y2 = xyxy  # float32 values: their float32 difference is <= 0 iff x2 <= x1
    if x2 <= x1 or y2 <= y1:
        return 'zero-width or zero-height bbox after clipping to the image'
    if require_keypoints and kpts[:, :2].max() <= 0:
        return 'all keypoint coordinates <= 0'
    return None
