"""Unlabeled top-down crops: images plus one box per instance, no keypoints.

mmpose's ``CocoDataset`` is no use for this split: in training mode it drops every instance
without keypoints (all of them here) and it refuses ``bbox_file`` outside test mode. This
dataset keeps every box, from the annotations or from a detector result file, and gives each
crop zero keypoints with visibility 0, so the standard transforms and ``PackPoseInputs`` work
unchanged. Bad input (a missing box, an unknown image, a box with no area inside the image)
raises an error naming the file and the entry: the annotation file is checked when it is
loaded (``coco_check.refuse_defects``), detector boxes one by one.
"""
from __future__ import annotations

import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
from mmengine.fileio import exists, get_local_path, load
from mmpose.datasets.datasets.base import BaseCocoStyleDataset
from mmpose.registry import DATASETS
from xtcocotools.coco import COCO

from .coco_check import refuse_defects


@DATASETS.register_module()
class UnlabeledCocoDataset(BaseCocoStyleDataset):
    """COCO-style images with person boxes, one sample per box, keypoints all invisible.

    Args:
        ann_file: COCO json with ``images`` (and ``annotations`` with ``bbox`` unless
            ``bbox_file`` is given); keypoints in it are ignored.
        bbox_file: optional detector results (COCO results format: ``image_id``, ``bbox``
            xywh, ``score``, ``category_id``); replaces the annotation boxes.
        person_category_id: detections of other categories are not persons and are left out.
        min_bbox_score: detections below this score are left out (None keeps all).
        Other arguments as mmpose's ``BaseCocoStyleDataset`` (topdown only).
    """

    def __init__(self, ann_file: str = '', bbox_file: Optional[str] = None,
                 person_category_id: int = 1, min_bbox_score: Optional[float] = None,
                 data_mode: str = 'topdown', metainfo: Optional[dict] = None,
                 data_root: Optional[str] = None, data_prefix: dict = dict(img=''),
                 indices: Optional[Union[int, Sequence[int]]] = None,
                 serialize_data: bool = True, pipeline: list = [], test_mode: bool = False,
                 lazy_init: bool = False, max_refetch: int = 1000) -> None:
        if data_mode != 'topdown':
            raise ValueError(f'UnlabeledCocoDataset supports data_mode="topdown" only, '
                             f'got {data_mode!r}')
        if metainfo is None:
            raise ValueError('UnlabeledCocoDataset needs metainfo (the keypoint set), e.g. '
                             'metainfo=dict(from_file=...infant_coco17.py)')
        # Set before the base __init__, which loads the data list; the base class's own
        # bbox_file is left None because it only accepts one in test mode.
        self.unlabeled_bbox_file = bbox_file
        self.person_category_id = person_category_id
        self.min_bbox_score = min_bbox_score
        super().__init__(ann_file=ann_file, bbox_file=None, data_mode=data_mode,
                         metainfo=metainfo, data_root=data_root, data_prefix=data_prefix,
                         indices=indices, serialize_data=serialize_data, pipeline=pipeline,
                         test_mode=test_mode, lazy_init=lazy_init, max_refetch=max_refetch)

    def _resolve(self, path: str) -> str:
        if self.data_root and not osp.isabs(path) and not exists(path):
            return osp.join(self.data_root, path)
        return path

    def load_data_list(self) -> list[dict]:
        if not exists(self.ann_file):
            raise FileNotFoundError(f'UnlabeledCocoDataset: ann_file {self.ann_file} not found')
        names = [self.metainfo['keypoint_id2name'][i]
                 for i in range(self.metainfo['num_keypoints'])]
        refuse_defects(self.ann_file, names, require_keypoints=False,
                       require_annotations=not self.unlabeled_bbox_file)
        with get_local_path(self.ann_file) as local_path:
            coco = COCO(local_path)
        if 'categories' in coco.dataset:  # as the base class does, so ConcatDataset metainfo agree
            self._metainfo['CLASSES'] = coco.loadCats(coco.getCatIds())
        if self.unlabeled_bbox_file:
            boxes = self._boxes_from_detections(coco, self._resolve(self.unlabeled_bbox_file))
        else:
            boxes = self._boxes_from_annotations(coco)
        num_keypoints = self.metainfo['num_keypoints']
        data_list = []
        for img_id, box, score, inst_id, where in boxes:
            img = coco.imgs[img_id]
            bbox = self._clip_box(box, img, where)
            data_list.append({
                'img_id': img_id,
                'img_path': osp.join(self.data_prefix['img'], img['file_name']),
                'bbox': bbox,
                'bbox_score': np.array([score], dtype=np.float32),
                'keypoints': np.zeros((1, num_keypoints, 2), dtype=np.float32),
                'keypoints_visible': np.zeros((1, num_keypoints), dtype=np.float32),
                'num_keypoints': 0,
                'iscrowd': 0,
                'id': inst_id,
                'category_id': np.array(self.person_category_id),
            })
        if not data_list:
            source = self.unlabeled_bbox_file or self.ann_file
            raise ValueError(f'UnlabeledCocoDataset: no boxes found in {source}')
        return data_list

    def _boxes_from_annotations(self, coco: COCO) -> list[tuple]:
        """Every annotation's box (the file passed ``refuse_defects``: boxes are well formed
        and refer to known images)."""
        return [(ann['image_id'], ann['bbox'], 1.0, ann['id'],
                 f'{self.ann_file}: annotation id {ann["id"]}')
                for ann in coco.dataset.get('annotations', [])]

    def _boxes_from_detections(self, coco: COCO, bbox_file: str) -> list[tuple]:
        if not exists(bbox_file):
            raise FileNotFoundError(f'UnlabeledCocoDataset: bbox_file {bbox_file} not found')
        dets = load(bbox_file)
        if not isinstance(dets, list) or not all(isinstance(d, dict) for d in dets):
            raise ValueError(f'{bbox_file}: expected a list of COCO detection results (dicts)')
        boxes = []
        for i, det in enumerate(dets):
            where = f'{bbox_file}: detection #{i}'
            missing = {'image_id', 'bbox', 'category_id'} - det.keys()
            if missing or len(det['bbox']) < 4:
                raise ValueError(f'{where} lacks {sorted(missing) or "a 4-number bbox"}')
            if det['category_id'] != self.person_category_id:
                continue
            score = float(det.get('score', 1.0))
            if self.min_bbox_score is not None and score < self.min_bbox_score:
                continue
            if det['image_id'] not in coco.imgs:
                raise ValueError(f'{where} refers to image_id {det["image_id"]}, which is not '
                                 f'in the images of {self.ann_file}')
            boxes.append((det['image_id'], det['bbox'][:4], score, i, where))
        return boxes

    @staticmethod
    def _clip_box(box: Sequence[float], img: dict, where: str) -> np.ndarray:
        """xywh -> clipped xyxy (1, 4), as mmpose parses COCO boxes; an empty box is an error."""
        for key in ('width', 'height', 'file_name'):
            if key not in img:
                raise ValueError(f'{where}: its image entry (id {img.get("id")}) has no "{key}"')
        x, y, w, h = (float(v) for v in box)
        x1, x2 = np.clip([x, x + w], 0, img['width'] - 1)
        y1, y2 = np.clip([y, y + h], 0, img['height'] - 1)
        if not (np.isfinite([x, y, w, h]).all() and x2 > x1 and y2 > y1):
            raise ValueError(f'{where}: bbox {list(box)} has no area inside the '
                             f'{img["width"]}x{img["height"]} image {img["file_name"]}')
        return np.array([[x1, y1, x2, y2]], dtype=np.float32)
