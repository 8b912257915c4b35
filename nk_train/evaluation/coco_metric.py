"""COCO keypoint AP with the project's ground-truth rules (``nk_train.coco_keypoints``)."""
from __future__ import annotations

from typing import Mapping, Optional

from mmengine.fileio import get_local_path
from mmpose.evaluation.metrics import CocoMetric
from mmpose.registry import METRICS
from xtcocotools.coco import COCO

from ..coco_keypoints import normalize_coco_keypoint_gt, read_coco_file
from ..data.splits import SplitPart


@METRICS.register_module()
class InfantCocoMetric(CocoMetric):
    """``CocoMetric`` that evaluates against normalised ground truth.

    Same arguments as mmpose's ``CocoMetric``, plus ``split=dict(file=..., part=...)``: the
    ground truth is that part of the file (the dataset's ``split``). The annotation file is read
    once and passed through :func:`normalize_coco_keypoint_gt` (area = bbox area, ids 1..N)
    before COCOeval sees it; predictions are matched by image id, so renumbering annotation ids
    is safe.
    """

    def __init__(self, ann_file: str, split: Optional[Mapping[str, str]] = None,
                 **kwargs) -> None:
        if not ann_file:
            raise ValueError('InfantCocoMetric needs ann_file: the ground truth is always '
                             'normalised from the annotation file, never rebuilt from samples')
        super().__init__(ann_file=None, **kwargs)
        self.ann_file = ann_file
        with get_local_path(ann_file) as local_path:
            gt = read_coco_file(local_path)
        if split is not None:
            gt = SplitPart.from_config(split, ann_file).select(gt)
        if not gt.get('annotations'):
            raise ValueError(f'{ann_file}: no annotations to evaluate against')
        self.coco = COCO()
        self.coco.dataset = normalize_coco_keypoint_gt(gt)
        self.coco.createIndex()
