"""AP from per-image OKS equals COCOeval's on real Test100 ground truth, and the paired
bootstrap interval behaves on hand-checkable cases."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from xtcocotools.coco import COCO
from xtcocotools.cocoeval import COCOeval

from nk_train.coco_keypoints import normalize_coco_keypoint_gt
from nk_train.evaluation.paired_bootstrap import coco_ap, instance_oks, paired_bootstrap
from nk_train.skeleton import load_skeleton

SIGMAS = np.asarray(load_skeleton().sigmas)


@pytest.fixture(scope='module')
def gt(syrip_root):
    return normalize_coco_keypoint_gt(
        json.loads((syrip_root / 'annotations/val_test100.json').read_text()))


def _predictions(gt: dict, noise: float, seed: int) -> list[dict]:
    """Every instance's labeled keypoints moved by Gaussian noise (``noise`` x the box size,
    a different size per image) with a random score: a prediction file in COCO results form."""
    rng = np.random.default_rng(seed)
    preds = []
    for ann in gt['annotations']:
        k = np.asarray(ann['keypoints'], dtype=np.float64).reshape(-1, 3)
        size = np.sqrt(ann['bbox'][2] * ann['bbox'][3])
        k[:, :2] += rng.normal(0, noise * size * rng.uniform(0.2, 2.0), (len(k), 2))
        k[:, 2] = 1.0
        preds.append(dict(image_id=ann['image_id'], category_id=1,
                          keypoints=k.reshape(-1).tolist(), score=float(rng.uniform())))
    return preds


def _cocoeval(gt: dict, preds: list[dict]) -> dict[str, float]:
    """As mmpose's CocoMetric runs it (xtcocotools, the dataset sigmas, use_area)."""
    coco = COCO()
    coco.dataset = copy.deepcopy(gt)
    coco.createIndex()
    ev = COCOeval(coco, coco.loadRes(copy.deepcopy(preds)), 'keypoints', SIGMAS, use_area=True)
    ev.params.useSegm = None
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return dict(AP=ev.stats[0], AP50=ev.stats[1], AP75=ev.stats[2], AR=ev.stats[5])


@pytest.mark.parametrize('noise, seed', [(0.02, 0), (0.05, 1), (0.12, 2)])
def test_ap_from_instance_oks_equals_cocoeval(gt, noise, seed):
    preds = _predictions(gt, noise, seed)
    scores = instance_oks(gt, preds, SIGMAS)
    ours, theirs = coco_ap(scores.oks, scores.score), _cocoeval(gt, preds)
    for key in ours:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-9), key


def test_identical_predictions_give_a_zero_width_interval_at_zero(gt):
    runs = [instance_oks(gt, _predictions(gt, 0.05, s), SIGMAS) for s in range(3)]
    interval = paired_bootstrap(runs, runs, samples=200)
    assert interval.mean == interval.low == interval.high == 0.0


def test_a_known_improvement_has_the_right_sign(gt):
    """Method a predicts with half the error of method b on every image: a is better and the
    interval lies above zero; swapped, below."""
    better = [instance_oks(gt, _predictions(gt, 0.03, s), SIGMAS) for s in range(3)]
    worse = [instance_oks(gt, _predictions(gt, 0.06, s), SIGMAS) for s in range(3)]
    up = paired_bootstrap(better, worse, samples=300)
    down = paired_bootstrap(worse, better, samples=300)
    assert 0 < up.low < up.mean < up.high
    assert down.low < down.mean < down.high < 0
    assert up.mean == pytest.approx(-down.mean)


def test_refuses_what_the_shortcut_does_not_cover(gt):
    preds = _predictions(gt, 0.05, 0)
    with pytest.raises(ValueError, match='one instance and one prediction per image'):
        instance_oks(gt, preds[:-1], SIGMAS)
