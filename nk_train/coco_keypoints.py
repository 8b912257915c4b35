"""COCO keypoint files: the project's rules for their ground truth.

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
from typing import Any


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
