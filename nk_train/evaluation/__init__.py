"""Evaluation with the project's COCO ground-truth rules."""
from .coco_metric import InfantCocoMetric

__all__ = ['InfantCocoMetric']
