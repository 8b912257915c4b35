"""How visible is each KPS corruption in 2D keypoints at all? A reference for the KPS AUROC.

    python benchmarks/kps_separability.py [--copies 20] [--steps 3000] [--seed 0]

The KPS is built without ever seeing a corrupted pose. This script asks what a detector that
*is* shown the corruption achieves: for each corruption of benchmarks/kps_auroc.py, a small
MLP is trained to tell the real poses of train_labeled (and their mirror images) from
corrupted copies of them, then tested like the KPS: real val_test100 poses vs the same
corrupted copies kps_auroc.py scores (same seed). Its inputs are the pose-frame coordinates,
visibility flags, log normalised limb lengths and joint-angle cosines. Where this supervised
specialist stays far below 0.95, the corruption is largely inside the natural variation of
2D poses (foreshortening, occlusion) at this amount of labeled data, and no 2D plausibility
score can be expected to reach 0.95 on it.

Prints the specialist's AUROC next to the KPS's (``len_prior`` from
benchmarks/results/kps_auroc.json, when present); writes benchmarks/results/kps_separability.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kps_auroc import GROSS, VAL_ANN, auroc, corruptions  # benchmarks/, on sys.path
from nk_train.ddp_prior.normalization import NormalizationConfig, pose_frame, to_normalized
from nk_train.coco_keypoints import read_coco_keypoints
from nk_train.kps import KinematicPlausibilityScore
from nk_train.skeleton import Skeleton, load_skeleton
from results_io import write_results

TRAIN_ANN = 'data/syrip/annotations/train_labeled.json'
KPS_RESULTS = 'benchmarks/results/kps_auroc.json'
KPS_VARIANT = 'len_prior'


def features(kps: KinematicPlausibilityScore, xy: np.ndarray, v: np.ndarray) -> torch.Tensor:
    """Per pose: coordinates in the ddp_prior's pose frame (visible mean, RMS spread),
    visibility, log normalised limb lengths and joint-angle cosines (0 where not measured) and
    their masks."""
    coords, vis = torch.from_numpy(xy).float(), torch.from_numpy(v) > 0
    r = kps(coords, visible=torch.from_numpy(v))
    normed = to_normalized(coords, vis, pose_frame(coords, vis, NormalizationConfig()))
    lengths = torch.log(r.limb_len.clamp(min=1e-3)) * r.limb_valid
    cosines = torch.cos(torch.deg2rad(r.joint_angles)) * r.joint_valid
    return torch.cat([normed.flatten(1), vis.float(), lengths,
                      r.limb_valid.float(), cosines, r.joint_valid.float()], 1)


def mirrored(xy: np.ndarray, v: np.ndarray, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
    """The mirror images of poses (x negated, left/right keypoints exchanged)."""
    flip = list(skeleton.flip_indices)
    out = xy[:, flip].copy()
    out[..., 0] = -out[..., 0]
    return out, v[:, flip]


def train_specialist(real: torch.Tensor, fake: torch.Tensor, steps: int,
                     seed: int) -> nn.Module:
    """A two-layer MLP (real = 1) trained with balanced batches; returns it in eval mode with
    the input standardisation folded in."""
    torch.manual_seed(seed)
    x = torch.cat([real, fake])
    y = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))])
    weight = torch.cat([torch.full((len(real),), 1 / len(real)),
                        torch.full((len(fake),), 1 / len(fake))])
    mean, std = x.mean(0), x.std(0) + 1e-3
    net = nn.Sequential(nn.Linear(x.shape[1], 256), nn.ReLU(), nn.Dropout(0.2),
                        nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 1))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    for _ in range(steps):
        idx = torch.multinomial(weight, 256, replacement=True)
        logits = net((x[idx] - mean) / std)[:, 0]
        loss = nn.functional.binary_cross_entropy_with_logits(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return nn.Sequential(_Standardise(mean, std), net)


class _Standardise(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer('mean', mean)
        self.register_buffer('std', std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--stats', default='stats/skeleton_stats.json')
    parser.add_argument('--copies', type=int, default=20,
                        help='corrupted training copies per train_labeled pose (and mirror)')
    parser.add_argument('--steps', type=int, default=3000, help='training steps per specialist')
    parser.add_argument('--seed', type=int, default=0, help='the val corruptions (as kps_auroc)')
    parser.add_argument('--val-copies', type=int, default=10, help='as kps_auroc --copies')
    parser.add_argument('--out', default='benchmarks/results/kps_separability.json')
    args = parser.parse_args(argv)

    skeleton = load_skeleton()
    kps = KinematicPlausibilityScore(args.stats, weights=dict(len=1.0)).eval()
    train = read_coco_keypoints(TRAIN_ANN, skeleton.num_keypoints)
    val = read_coco_keypoints(VAL_ANN, skeleton.num_keypoints)
    flip_xy, flip_v = mirrored(train.coords, train.visibility, skeleton)
    train_xy = np.concatenate([train.coords, flip_xy])
    train_v = np.concatenate([train.visibility, flip_v])
    train_boxes = np.concatenate([train.bboxes, train.bboxes])  # only sizes are used
    train_fake = corruptions(train_xy, train_v, train_boxes, skeleton, args.copies,
                             args.seed + 1)
    val_fake = corruptions(val.coords, val.visibility, val.bboxes, skeleton, args.val_copies,
                           args.seed)
    real_train = features(kps, train_xy, train_v)
    real_val = features(kps, val.coords, val.visibility)

    kps_auc = {}
    if Path(KPS_RESULTS).is_file():
        kps_auc = {name: row[KPS_VARIANT]
                   for name, row in json.loads(Path(KPS_RESULTS).read_text())['auroc'].items()}
    print(f'supervised specialist per corruption: trained on {TRAIN_ANN} (+ mirrors, '
          f'{args.copies} corrupted copies each), tested on {VAL_ANN} as in kps_auroc.py')
    print(f'{"corruption":20s}{"specialist":>12s}{"KPS " + KPS_VARIANT:>16s}')
    results = {}
    for i, (name, (xy, v)) in enumerate(val_fake.items()):
        net = train_specialist(real_train, features(kps, *train_fake[name]), args.steps,
                               args.seed + i)
        with torch.no_grad():
            score_real = net(real_val)[:, 0].numpy()
            score_fake = net(features(kps, xy, v))[:, 0].numpy()
        results[name] = round(auroc(score_real, score_fake), 4)
        ref = kps_auc.get(name)
        print(f'{name:20s}{results[name]:12.3f}' + (f'{ref:16.3f}' if ref is not None
                                                   else f'{"-":>16s}'), flush=True)
    write_results(args.out, dict(
        train_ann=TRAIN_ANN, val_ann=VAL_ANN, copies=args.copies, val_copies=args.val_copies,
        steps=args.steps, seed=args.seed, specialist_auroc=results,
        kps_auroc={KPS_VARIANT: kps_auc} if kps_auc else None, gross_corruptions=list(GROSS),
        environment=dict(python=platform.python_version(), torch=torch.__version__)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
