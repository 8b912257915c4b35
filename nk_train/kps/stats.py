"""Skeleton statistics from labeled COCO keypoints, and the file that holds them.

``tools/compute_kps_stats.py`` writes ``stats/skeleton_stats.json`` with
:func:`compute_skeleton_stats` + :func:`dumps_stats`; the KPS and the CMGC depth loss read it
with :func:`load_skeleton_stats`. Lengths are in the normalised units of
:mod:`nk_train.kps.geometry` (``median_limb_ratio``), angles in degrees.

Visibility: COCO ``v=0`` keypoints (not labeled) are excluded from every statistic and
counted; ``v=1`` (labeled, occluded) and ``v=2`` keypoints are used, because their position
is annotated. A limb or angle is measured only when all of its keypoints are used.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..coco_keypoints import CROWD, TOO_FEW_LABELED, CocoKeypoints
from ..skeleton import Skeleton
from .geometry import (fit_length_template, joint_angles_deg, limb_lengths, normalised_lengths,
                       reference_scale)

SCHEMA_VERSION = 1
NORMALISATION = 'median_limb_ratio'
# Quantile levels stored for every limb length and joint angle (numpy 'linear' method).
QUANTILE_LEVELS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99,
                   0.995)
DEFAULT_MIN_LIMBS = 3
FLOAT_DECIMALS = 6


def quantile_key(level: float) -> str:
    """The JSON key of a quantile level (``0.025 -> '0.025'``)."""
    return format(level, 'g')


def _r(x: float) -> float | None:
    x = float(x)
    return round(x, FLOAT_DECIMALS) + 0.0 if math.isfinite(x) else None


def _summary(values: np.ndarray) -> dict:
    """mean, std (ddof=1), min, max and quantiles; None where undefined (too few values)."""
    n = len(values)
    out = dict(mean=_r(values.mean()) if n else None,
               std=_r(values.std(ddof=1)) if n >= 2 else None,
               min=_r(values.min()) if n else None,
               max=_r(values.max()) if n else None)
    qs = np.quantile(values, QUANTILE_LEVELS) if n else [math.nan] * len(QUANTILE_LEVELS)
    out['quantiles'] = {quantile_key(q): _r(x) for q, x in zip(QUANTILE_LEVELS, qs)}
    return out


def compute_skeleton_stats(poses: CocoKeypoints, skeleton: Skeleton, source: dict,
                           min_limbs: int = DEFAULT_MIN_LIMBS) -> dict:
    """The statistics document (schema ``SCHEMA_VERSION``) for ``poses``.

    ``source`` is recorded as given (annotation path, its sha256, dataset_info path, ...).
    Computed in float64 on CPU so the same input gives the same bytes.
    """
    if poses.coords.shape[1] != skeleton.num_keypoints:
        raise ValueError(f'{poses.ann_file}: {poses.coords.shape[1]} keypoints per instance, '
                         f'the skeleton {skeleton.source} has {skeleton.num_keypoints}')
    coords = torch.from_numpy(poses.coords)
    visible = torch.from_numpy(poses.visibility > 0)
    limbs, normalisation = _limb_stats(coords, visible, skeleton, min_limbs)
    return dict(
        schema_version=SCHEMA_VERSION,
        source=source,
        skeleton=dict(keypoint_names=list(skeleton.keypoint_names),
                      edges=[list(e) for e in skeleton.edges],
                      edge_names=list(skeleton.edge_names),
                      joint_angles=[list(t) for t in skeleton.joint_angles()]),
        visibility=_visibility_counts(poses, skeleton.keypoint_names),
        normalisation=normalisation,
        units=dict(length='normalised (median_limb_ratio)', angle='degrees in [0, 180]'),
        quantile_levels=[quantile_key(q) for q in QUANTILE_LEVELS],
        quantile_method='numpy linear',
        limbs=limbs,
        joint_angles=_angle_stats(coords, visible, skeleton),
    )


def _limb_stats(coords: torch.Tensor, visible: torch.Tensor, skeleton: Skeleton,
                min_limbs: int) -> tuple[list[dict], dict]:
    """Per-limb normalised length summaries, and how the poses were normalised."""
    edges = torch.tensor(skeleton.edges, dtype=torch.long)
    lengths, limb_valid = limb_lengths(coords, visible, edges)
    template, iters = fit_length_template(lengths, limb_valid, min_limbs)
    scale, scale_valid = reference_scale(lengths, limb_valid, template, min_limbs)
    norm, norm_valid = normalised_lengths(lengths, limb_valid, scale, scale_valid)
    limbs = []
    for e, (i, j) in enumerate(skeleton.edges):
        values = norm[:, e][norm_valid[:, e]].numpy()
        limbs.append(dict(
            name=skeleton.edge_names[e], edge=[i, j], count=int(len(values)),
            missing=int((~limb_valid[:, e]).sum()),
            no_scale=int((limb_valid[:, e] & ~scale_valid).sum()),
            template=_r(template[e]), **_summary(values)))
    normalisation = dict(
        method=NORMALISATION, min_limbs=min_limbs, template_iterations=iters,
        instances_with_scale=int(scale_valid.sum()),
        instances_without_scale=int((~scale_valid).sum()),
        description='length / median over measured limbs e of (length_e / template_e); '
                    'template has geometric mean 1')
    return limbs, normalisation


def _angle_stats(coords: torch.Tensor, visible: torch.Tensor, skeleton: Skeleton) -> list[dict]:
    """Per-joint-angle summaries in degrees (``degenerate``: visible, an arm too short)."""
    names = skeleton.keypoint_names
    triples = torch.tensor(skeleton.joint_angles(), dtype=torch.long)
    angles, angle_valid = joint_angles_deg(coords, visible, triples)
    all_visible = visible[:, triples].all(-1)
    joints = []
    for t, (a, c, b) in enumerate(skeleton.joint_angles()):
        values = angles[:, t][angle_valid[:, t]].numpy()
        joints.append(dict(
            name=f'{names[a]}-{names[c]}-{names[b]}', triple=[a, c, b],
            count=int(len(values)), missing=int((~all_visible[:, t]).sum()),
            degenerate=int((all_visible[:, t] & ~angle_valid[:, t]).sum()), **_summary(values)))
    return joints


def _visibility_counts(poses: CocoKeypoints, names: tuple[str, ...]) -> dict:
    """Which instances and keypoints the statistics use, and how many were left out."""
    v = poses.visibility
    return dict(
        rule='v=0 keypoints are excluded (not labeled); v=1 and v=2 are used',
        instances_used=int(len(v)), instances_skipped_crowd=poses.left_out_count(CROWD),
        instances_skipped_unlabeled=poses.left_out_count(TOO_FEW_LABELED),
        keypoints_v0=int((v == 0).sum()), keypoints_v1=int((v == 1).sum()),
        keypoints_v2=int((v == 2).sum()),
        excluded_per_keypoint={n: int((v[:, k] == 0).sum()) for k, n in enumerate(names)})


def dumps_stats(stats: dict) -> str:
    """Canonical text of a statistics document: sorted keys, fixed indent, final newline."""
    return json.dumps(stats, sort_keys=True, indent=1, allow_nan=False) + '\n'


@dataclass(frozen=True)
class SkeletonStats:
    """What the scorers need from a statistics file, as float tensors (NaN = no data)."""

    path: str
    keypoint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    joint_angles: tuple[tuple[int, int, int], ...]
    min_limbs: int
    template: torch.Tensor  # E
    len_mean: torch.Tensor  # E
    len_std: torch.Tensor  # E
    quantile_levels: tuple[str, ...]
    len_quantiles: dict[str, torch.Tensor]  # level key -> E
    angle_quantiles: dict[str, torch.Tensor]  # level key -> A
    raw: dict

    def rom_interval(self, lo: float, hi: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-joint-angle ROM interval ``[q_lo, q_hi]`` in degrees (A each)."""
        keys = quantile_key(lo), quantile_key(hi)
        for key in keys:
            if key not in self.angle_quantiles:
                raise KeyError(f'{self.path}: quantile level {key} not stored '
                               f'(available: {", ".join(self.quantile_levels)})')
        if not lo < hi:
            raise ValueError(f'ROM quantiles must satisfy lo < hi, got ({lo}, {hi})')
        return self.angle_quantiles[keys[0]], self.angle_quantiles[keys[1]]


def _floats(values: list) -> torch.Tensor:
    return torch.tensor([math.nan if x is None else float(x) for x in values],
                        dtype=torch.float64)


def load_skeleton_stats(path: str | Path, skeleton: Skeleton | None = None) -> SkeletonStats:
    """Read a statistics file; with ``skeleton``, check it was made for the same skeleton."""
    path = str(path)
    try:
        with open(path, 'rb') as f:
            doc = json.loads(f.read())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f'{path}: cannot read skeleton statistics: {err}') from err
    if doc.get('schema_version') != SCHEMA_VERSION:
        raise ValueError(f'{path}: schema_version {doc.get("schema_version")!r}, '
                         f'this code reads {SCHEMA_VERSION}')
    if doc['normalisation']['method'] != NORMALISATION:
        raise ValueError(f'{path}: unknown normalisation {doc["normalisation"]["method"]!r}')
    sk = doc['skeleton']
    names = tuple(sk['keypoint_names'])
    edges = tuple(tuple(e) for e in sk['edges'])
    triples = tuple(tuple(t) for t in sk['joint_angles'])
    if skeleton is not None:
        if names != skeleton.keypoint_names or edges != skeleton.edges:
            raise ValueError(f'{path}: keypoints/edges differ from dataset_info '
                             f'{skeleton.source}; regenerate with tools/compute_kps_stats.py')
        if triples != skeleton.joint_angles():
            raise ValueError(f'{path}: joint angle triples differ from {skeleton.source}')
    limbs, joints = doc['limbs'], doc['joint_angles']
    if [tuple(x['edge']) for x in limbs] != list(edges) or \
            [tuple(x['triple']) for x in joints] != list(triples):
        raise ValueError(f'{path}: limbs/joint_angles lists do not follow skeleton order')
    levels = tuple(doc['quantile_levels'])
    return SkeletonStats(
        path=path, keypoint_names=names, edges=edges, joint_angles=triples,
        min_limbs=int(doc['normalisation']['min_limbs']),
        template=_floats([x['template'] for x in limbs]),
        len_mean=_floats([x['mean'] for x in limbs]),
        len_std=_floats([x['std'] for x in limbs]),
        quantile_levels=levels,
        len_quantiles={q: _floats([x['quantiles'][q] for x in limbs]) for q in levels},
        angle_quantiles={q: _floats([x['quantiles'][q] for x in joints])
                         for q in levels},
        raw=doc)
