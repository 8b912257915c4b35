"""Skeleton statistics and the Kinematic Plausibility Score (KPS).

``stats``: computing / reading ``stats/skeleton_stats.json``; ``geometry``: limb lengths,
scale normalisation and joint angles (shared with the CMGC losses); ``score``: the KPS and
the per-keypoint heatmap peaks; ``hybrid_gate``: the Teacher A / Teacher B gate built on them.
``KinematicPlausibilityScore`` and ``HybridGate`` are registered in mmpose's ``MODELS``
registry.
"""
from mmpose.registry import MODELS

from .geometry import (fit_length_template, joint_angles_deg, limb_lengths, masked_median,
                       normalised_lengths, reference_scale)
from .hybrid_gate import GateDecision, HybridGate
from .score import (KinematicPlausibilityScore, KPSResult, heatmap_peaks, score_conf,
                    score_len, score_rom)
from .stats import (SCHEMA_VERSION, SkeletonStats, compute_skeleton_stats, dumps_stats,
                    load_skeleton_stats)
from ..utils import sha256_file

MODELS.register_module(module=KinematicPlausibilityScore)

__all__ = [
    'GateDecision', 'HybridGate',
    'KinematicPlausibilityScore', 'KPSResult', 'heatmap_peaks', 'score_conf', 'score_len',
    'score_rom', 'SCHEMA_VERSION', 'SkeletonStats', 'compute_skeleton_stats',
    'dumps_stats', 'load_skeleton_stats', 'sha256_file',
    'fit_length_template', 'joint_angles_deg', 'limb_lengths', 'masked_median',
    'normalised_lengths', 'reference_scale'
]
