"""Evaluation with the project's COCO ground-truth rules."""
from .coco_gt import bbox_area, normalize_coco_keypoint_gt
from .coco_metric import InfantCocoMetric

__all__ = ['bbox_area', 'normalize_coco_keypoint_gt', 'InfantCocoMetric']
