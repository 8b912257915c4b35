"""``CheckedCocoDataset``: mmpose's ``CocoDataset`` that refuses defective files and says what
it leaves out.

mmpose drops instances it cannot use without a word (a zero-area box, a box outside the image:
200 labeled instances became 199), a wrong keypoint count crashes later in the head, and a
string or NaN coordinate fails deep in a transform or trains silently. This dataset checks the
file when it is loaded (``nk_train.data.coco_check``, JSON only): any defect raises
``DatasetDefectError`` naming the file and the annotations; the instances mmpose leaves out by
design (crowd, no labeled keypoint) are logged with their ids.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Optional

from mmengine.logging import print_log
from mmpose.datasets import CocoDataset
from mmpose.registry import DATASETS

from ..coco_keypoints import read_coco_file
from .coco_check import refuse_defects
from .splits import SplitPart

SHOWN = 10


@DATASETS.register_module()
class CheckedCocoDataset(CocoDataset):
    """Arguments of mmpose's ``CocoDataset``, plus ``split=dict(file=..., part=...)``: only
    that part's images of the file (``tools/make_val_split.py``, ``nk_train.data.splits``)."""

    def __init__(self, *args: Any, split: Optional[Mapping[str, str]] = None,
                 **kwargs: Any) -> None:
        self.split_cfg = None if split is None else dict(split)
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> list[dict]:
        names = [self.metainfo['keypoint_id2name'][i]
                 for i in range(self.metainfo['num_keypoints'])]
        warnings = refuse_defects(self.ann_file, names, require_keypoints=True)
        if warnings:
            print_log(f'{self.ann_file}: {len(warnings)} warning(s) (documented and handled; '
                      f'tools/check_dataset.py lists them), e.g. {warnings[0]}',
                      logger='current', level=logging.INFO)
        data_list = super().load_data_list()
        part = None
        if self.split_cfg is not None:
            part = SplitPart.from_config(self.split_cfg, self.ann_file)
            data_list = [d for d in data_list if int(d['img_id']) in part.image_ids]
            print_log(f'{self.ann_file}: split part {part.part!r} of {part.file}: '
                      f'{len(data_list)} instances', logger='current', level=logging.INFO)
        if not self.bbox_file:
            self._log_left_out({d['id'] for d in data_list}, part)
        return data_list

    def _log_left_out(self, kept: set, part: Optional[SplitPart]) -> None:
        anns = read_coco_file(self.ann_file)['annotations']
        if part is not None:
            anns = [a for a in anns if int(a['id']) in part.annotation_ids]
        left = [(a['id'], _why_left_out(a)) for a in anns if a['id'] not in kept]
        if left:
            shown = ', '.join(f'{i} ({why})' for i, why in left[:SHOWN])
            print_log(f'{self.ann_file}: {len(left)} of {len(anns)} instances not used '
                      f'(mmpose keeps only labeled, non-crowd instances): {shown}'
                      + (' ...' if len(left) > SHOWN else ''), logger='current',
                      level=logging.WARNING)


def _why_left_out(ann: dict) -> str:
    """mmpose's reason (``BaseCocoStyleDataset._is_valid_instance``) for a checked annotation."""
    if ann.get('iscrowd'):
        return 'crowd'
    flags = ann.get('keypoints', [])[2::3]
    if ann.get('num_keypoints', 1) == 0 or not any(v > 0 for v in flags):
        return 'no labeled keypoint'
    return 'box or keypoints empty after clipping to the image'
