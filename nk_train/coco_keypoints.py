"""COCO keypoint files: the one reader, and the project's rules for their ground truth.

Every part that reads labeled poses from a COCO file (KPS statistics, ddp_prior training,
benchmarks) uses :func:`read_coco_keypoints`, so one file gives the same poses everywhere and a
defect gets the same error naming the file and the annotation. The dataset check
(``nk_train.data.coco_check``) applies the same rules (:func:`keypoints_problem`,
:func:`bbox_problem`) but lists every problem instead of stopping at the first.

Ground truth for evaluation: SyRIP's ``area`` field is inconsistent between splits (0.05x to
16x the bbox area) and COCOeval treats annotation id 0 as "unmatched". COCO OKS scales by
``area``, so we evaluate with **area = bbox width x height** (the only quantity every split
has consistently; it is what val_test100 already stores) and with annotation ids renumbered
1..N in file order, so no instance is lost (:func:`normalize_coco_keypoint_gt`).
``tools/check_dataset.py`` reports files that deviate from this.

A leaf module: it imports nothing from ``nk_train``, so ``data`` and ``evaluation`` both use it.
"""
from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

VISIBILITY_FLAGS = (0, 1, 2)  # COCO v: not labeled, labeled but occluded, labeled and visible
CROWD = 'crowd'
TOO_FEW_LABELED = 'too few labeled keypoints'


class CocoFileError(ValueError):
    """A COCO file that cannot be read as the project needs it: ``path`` and ``problem``."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f'{path}: {problem}')
        self.path = str(path)
        self.problem = problem


def finite_number(value: Any) -> bool:
    """A JSON number that is finite (``True`` and ``'12.5'`` are not numbers)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def keypoints_problem(kpts: Any, num_keypoints: int) -> str | None:
    """Why ``kpts`` is not a list of ``num_keypoints`` COCO ``[x, y, v]`` triples, or None."""
    if not isinstance(kpts, list) or len(kpts) != 3 * num_keypoints:
        got = len(kpts) if isinstance(kpts, list) else type(kpts).__name__
        return f'expected {3 * num_keypoints} keypoint values (K={num_keypoints}), got {got}'
    bad = [i for i, v in enumerate(kpts) if not finite_number(v)]
    if bad:
        return (f'keypoint values must be finite numbers: entries {bad[:6]} are '
                f'{[kpts[i] for i in bad[:6]]}')
    unknown = sorted({v for v in kpts[2::3] if v not in VISIBILITY_FLAGS})
    if unknown:
        return f'visibility flags must be 0, 1 or 2, got {unknown}'
    return None


def bbox_problem(bbox: Any) -> str | None:
    """Why ``bbox`` is not a COCO box of four finite numbers, or None (its size is not judged)."""
    if isinstance(bbox, list) and len(bbox) == 4 and all(finite_number(v) for v in bbox):
        return None
    return f'bbox must be four finite numbers [x, y, w, h], got {bbox!r}'


def bbox_area(bbox: list[float]) -> float:
    """Area used for OKS: bbox width x height (COCO xywh)."""
    return float(bbox[2]) * float(bbox[3])


def normalize_coco_keypoint_gt(coco_dict: dict[str, Any]) -> dict[str, Any]:
    """Return a copy with ``area`` = bbox area and annotation ids 1..N (file order)."""
    out = copy.deepcopy(coco_dict)
    for new_id, ann in enumerate(out.get('annotations', []), start=1):
        ann['id'] = new_id
        ann['area'] = bbox_area(ann['bbox'])
    return out


def read_coco_file(path: str | Path, require_annotations: bool = True) -> dict[str, Any]:
    """The parsed JSON of a COCO file, with ``images`` and ``annotations`` lists.

    ``require_annotations=False`` accepts an images-only file (boxes from a detector) and
    gives it an empty ``annotations`` list. Raises ``CocoFileError``.
    """
    try:
        coco = json.loads(Path(path).read_bytes())
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError
        raise CocoFileError(path, f'cannot read annotation file: {err}') from err
    if isinstance(coco, dict) and not require_annotations:
        coco.setdefault('annotations', [])
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list)
                                             for k in ('images', 'annotations')):
        raise CocoFileError(path, 'not a COCO file: needs "images" and "annotations" lists')
    return coco


@dataclass(frozen=True)
class CocoKeypoints:
    """The labeled instances of one COCO keypoint file, as arrays (N instances, K keypoints)."""

    ann_file: str
    coords: np.ndarray  # N x K x 2 float64, pixels
    visibility: np.ndarray  # N x K int64 (COCO v: 0, 1, 2)
    bboxes: np.ndarray  # N x 4 float64 (x, y, w, h)
    ann_ids: tuple[int, ...]
    left_out: dict[int, str]  # annotation id -> CROWD or TOO_FEW_LABELED, in file order

    def left_out_count(self, reason: str) -> int:
        """How many annotations were left out for ``reason``."""
        return sum(why == reason for why in self.left_out.values())


def read_coco_keypoints(path: str | Path, num_keypoints: int,
                        min_labeled: int = 1) -> CocoKeypoints:
    """The instances of a COCO keypoint file with at least ``min_labeled`` labeled keypoints.

    Labeled means COCO ``v > 0`` (its position is annotated). Crowd instances and instances
    with fewer labeled keypoints are left out and listed in ``left_out``. Malformed input
    raises ``CocoFileError`` naming the file and the annotation id; so does a file in which
    no instance is left.
    """
    coco = read_coco_file(path)
    files = {img.get('id'): img.get('file_name', '?') for img in coco['images']}
    coords, vis, boxes, ids = [], [], [], []
    left_out: dict[int, str] = {}
    seen: set[int] = set()
    for n, ann in enumerate(coco['annotations']):
        ann_id = _annotation_id(path, n, ann, files)
        if ann_id in seen:
            raise CocoFileError(path, f'annotation id {ann_id} used twice')
        seen.add(ann_id)
        where = f'annotation id {ann_id} (image {files.get(ann.get("image_id"), "?")})'
        if ann.get('iscrowd', 0):
            left_out[ann_id] = CROWD
            continue
        problem = keypoints_problem(ann.get('keypoints'), num_keypoints)
        if problem:
            raise CocoFileError(path, f'{where}: {problem}')
        k = np.asarray(ann['keypoints'], dtype=np.float64).reshape(num_keypoints, 3)
        if (k[:, 2] > 0).sum() < min_labeled:
            left_out[ann_id] = TOO_FEW_LABELED
            continue
        problem = bbox_problem(ann.get('bbox'))
        if problem:
            raise CocoFileError(path, f'{where}: {problem}')
        coords.append(k[:, :2])
        vis.append(k[:, 2].astype(np.int64))
        boxes.append(ann['bbox'])
        ids.append(ann_id)
    if not coords:
        crowd = list(left_out.values()).count(CROWD)
        raise CocoFileError(path, f'no annotation has >= {min_labeled} labeled keypoints '
                                  f'({crowd} crowd, {len(left_out) - crowd} with fewer)')
    return CocoKeypoints(str(path), np.stack(coords), np.stack(vis),
                         np.asarray(boxes, np.float64), tuple(ids), left_out)


def _annotation_id(path: str | Path, n: int, ann: Any, files: dict) -> int:
    """The id of the ``n``-th annotation (file order), refused unless it is an integer."""
    if not isinstance(ann, dict):
        raise CocoFileError(path, f'annotation #{n} is {type(ann).__name__}, not an object')
    ann_id = ann.get('id')
    if not isinstance(ann_id, int) or isinstance(ann_id, bool):
        image = files.get(ann.get('image_id'), '?')
        raise CocoFileError(path, f'annotation #{n} (image {image}): id must be an integer, '
                                  f'got {ann_id!r}')
    return ann_id
