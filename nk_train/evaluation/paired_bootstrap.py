"""COCO keypoint AP from per-image OKS, and paired bootstrap intervals of AP differences.

Top-down evaluation on ground-truth boxes gives exactly one prediction per ground-truth
instance, so COCOeval's matching reduces to "prediction i matches instance i iff OKS_i >= t"
and AP can be recomputed from two numbers per instance (its OKS and the prediction's score),
thousands of times, on resampled test sets. ``instance_oks`` computes OKS exactly as
xtcocotools' ``COCOeval.computeOks`` (mmpose's ``CocoMetric``) with the project's ground-truth
rules (``nk_train.coco_keypoints``: area = bbox area), and ``coco_ap`` the AP / AP50 / AP75 /
AR that COCOeval reports for that case (101 recall points, precision made monotone; the tests
compare both with ``InfantCocoMetric`` on real predictions).

``paired_bootstrap`` draws test images with replacement (and, with ``resample_seeds``, seeds
too), the same draw for both methods, and returns the mean difference over seeds of the AP on
the drawn set with its percentile interval: the image-to-image (and seed-to-seed) spread
that a single test number hides.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..coco_keypoints import bbox_area

THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class InstanceScores:
    """Per ground-truth instance (in ``image_ids`` order): its prediction's OKS and score."""

    image_ids: np.ndarray  # N
    oks: np.ndarray  # N
    score: np.ndarray  # N


def instance_oks(gt: Mapping, predictions: Sequence[Mapping], sigmas: Sequence[float]
                 ) -> InstanceScores:
    """OKS and score of the one prediction of each ground-truth instance (COCO results
    format: ``image_id``, ``keypoints`` [x, y, v] * K, ``score``). An image with another
    count of instances or predictions is refused (this shortcut holds for one each)."""
    anns: dict[int, list] = {}
    for ann in gt['annotations']:
        anns.setdefault(int(ann['image_id']), []).append(ann)
    preds: dict[int, list] = {}
    for p in predictions:
        preds.setdefault(int(p['image_id']), []).append(p)
    bad = [i for i in anns if len(anns[i]) != 1 or len(preds.get(i, [])) != 1]
    extra = sorted(set(preds) - set(anns))
    if bad or extra:
        raise ValueError(f'paired bootstrap needs one instance and one prediction per image; '
                         f'images {sorted(bad)[:10] + extra[:10]} differ')
    ids = np.array(sorted(anns), dtype=np.int64)
    var = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2
    oks, score = np.zeros(len(ids)), np.zeros(len(ids))
    for n, image_id in enumerate(ids):
        ann, pred = anns[int(image_id)][0], preds[int(image_id)][0]
        g = np.asarray(ann['keypoints'], dtype=np.float64).reshape(-1, 3)
        d = np.asarray(pred['keypoints'], dtype=np.float64).reshape(-1, 3)
        if (g[:, 2] > 0).sum() == 0:
            raise ValueError(f'image {image_id}: an instance without labeled keypoints')
        e = ((d[:, 0] - g[:, 0]) ** 2 + (d[:, 1] - g[:, 1]) ** 2) / var / \
            (bbox_area(ann['bbox']) + np.spacing(1)) / 2
        oks[n] = np.exp(-e[g[:, 2] > 0]).mean()
        score[n] = float(pred['score'])
    return InstanceScores(image_ids=ids, oks=oks, score=score)


def coco_ap(oks: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """AP, AP50, AP75 and AR of one prediction per instance (rows may repeat: a bootstrap
    draw)."""
    order = np.argsort(-score, kind='mergesort')
    matched = oks[order][None, :] >= THRESHOLDS[:, None]  # T x N
    tp = np.cumsum(matched, axis=1)
    fp = np.cumsum(~matched, axis=1)
    n = oks.shape[0]
    recall = tp / n
    precision = tp / np.maximum(tp + fp, np.spacing(1))
    precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    ap = np.zeros(len(THRESHOLDS))
    for t in range(len(THRESHOLDS)):
        idx = np.searchsorted(recall[t], RECALL_POINTS, side='left')
        ok = idx < n
        ap[t] = np.where(ok, precision[t][np.minimum(idx, n - 1)], 0.0).mean()
    ar = recall[:, -1]
    return dict(AP=float(ap.mean()), AP50=float(ap[0]), AP75=float(ap[5]),
                AR=float(ar.mean()))


@dataclass(frozen=True)
class Interval:
    mean: float  # the difference on the test set as it is (mean over seeds)
    low: float
    high: float
    samples: int

    def as_dict(self) -> dict:
        return dict(mean=self.mean, low=self.low, high=self.high, samples=self.samples)


def paired_bootstrap(a: Sequence[InstanceScores], b: Sequence[InstanceScores],
                     metric: str = 'AP', samples: int = 2000, seed: int = 0,
                     resample_seeds: bool = True, level: float = 0.95) -> Interval:
    """Interval of mean_s(metric(a_s) - metric(b_s)) over draws of the test images (the same
    draw for every run; ``a[s]`` and ``b[s]`` are the runs of seed s on the same images)."""
    if len(a) != len(b) or not a:
        raise ValueError('paired_bootstrap needs the same (non-zero) number of seeds per method')
    ids = a[0].image_ids
    if any(not np.array_equal(r.image_ids, ids) for r in (*a, *b)):
        raise ValueError('paired_bootstrap: the runs were not evaluated on the same images')

    def diff(rows: np.ndarray, runs: np.ndarray) -> float:
        return float(np.mean([coco_ap(a[s].oks[rows], a[s].score[rows])[metric]
                              - coco_ap(b[s].oks[rows], b[s].score[rows])[metric]
                              for s in runs]))

    rng = np.random.default_rng(seed)
    everything = np.arange(len(ids))
    seeds = np.arange(len(a))
    draws = np.array([diff(rng.integers(0, len(ids), len(ids)),
                           rng.integers(0, len(a), len(a)) if resample_seeds else seeds)
                      for _ in range(samples)])
    tail = (1.0 - level) / 2
    return Interval(mean=diff(everything, seeds), low=float(np.quantile(draws, tail)),
                    high=float(np.quantile(draws, 1 - tail)), samples=samples)
