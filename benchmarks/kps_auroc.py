"""How well the KPS separates real infant poses from corrupted copies of them.

    python benchmarks/kps_auroc.py [--poses test100|val] [--stats stats/skeleton_stats.json]
        [--copies 10] [--seed 0] [--prior work_dirs/ddp_prior/ddp_prior.pth]

Real poses (``--poses``): the ground truth of data/syrip/annotations/val_test100.json
(``test100``, the default: a description of the KPS, compared with kps_separability.py on
the same poses), or the validation part of train_labeled (``val``: the poses the gate's
``thr_kps`` is derived from, written to results/kps_auroc_val.json; the protocol tunes on
validation only). Neither is used by the statistics or the ddp_prior, which come from the
train part of train_labeled. Each corruption makes ``--copies`` seeded copies of every pose:

* swap_wrist / swap_ankle: the left and right wrist (ankle) exchange coordinates;
* swap_arm / swap_leg: elbow+wrist (knee+ankle) exchange with the other side;
* displace_10 / displace_25: one random labeled keypoint moves by 10% / 25% of the GT bbox
  size sqrt(w * h), in a random direction;
* stretch_limb_1.5: one random measured limb gets 1.5x longer; the side of the skeleton cut
  off by that limb moves with its endpoint, so only this limb's length changes (for a limb
  on a cycle, e.g. the torso, only the endpoint moves);
* stretch_joint_1.5: the same, but only the limb's endpoint moves (its other limbs change);
* random: every labeled keypoint uniform in the GT bbox.

Prints AUROC (real = positive) for the length, ROM and ddp_prior terms and the equal-weight
combinations len+rom and len+prior (confidence is undefined for ground truth), then where
the adult poses of data/coco_mini/test_coco.json fall under the infant statistics (len+prior).
The prior term needs a ddp_prior checkpoint (``tools/train_ddp_prior.py``; trained on
train_labeled only). Writes benchmarks/results/kps_auroc.json. For what these corruptions
leave visible in 2D at all, see benchmarks/kps_separability.py; for how the terms rank real
pseudo-labels, benchmarks/kps_pseudo_labels.py.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata

from nk_train.coco_keypoints import read_coco_keypoints
from nk_train.data.splits import labeled_part
from nk_train.kps import KinematicPlausibilityScore
from nk_train.skeleton import Skeleton, load_skeleton

VAL_ANN = 'data/syrip/annotations/val_test100.json'
LABELED_ANN = 'data/syrip/annotations/train_labeled.json'
SPLIT_FILE = 'stats/splits/syrip_labeled.json'
ADULT_ANN = 'data/coco_mini/test_coco.json'
VARIANTS = dict(len=dict(len=1.0), rom=dict(rom=1.0), prior=dict(prior=1.0),
                len_rom=dict(len=1.0, rom=1.0), len_prior=dict(len=1.0, prior=1.0))
COMBINED = 'len_prior'  # the variant the adult comparison reports
GROSS = ('displace_25', 'stretch_limb_1.5', 'stretch_joint_1.5', 'random')
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a real pose > score of a corrupted one), ties counted half."""
    ranks = rankdata(np.concatenate([pos, neg]))
    n1, n0 = len(pos), len(neg)
    return float((ranks[:n1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def moving_side(skeleton: Skeleton, edge: int) -> tuple[int, int, list[int]]:
    """``(moved endpoint, fixed endpoint, keypoints that move)`` for stretching ``edge``:
    the smaller side of the skeleton once the edge is cut, or only the endpoint when the
    edge lies on a cycle."""
    i, j = skeleton.edges[edge]

    def component(start: int) -> set[int]:
        seen, stack = {start}, [start]
        while stack:
            x = stack.pop()
            for f, (a, b) in enumerate(skeleton.edges):
                if f != edge and x in (a, b):
                    y = b if x == a else a
                    if y not in seen:
                        seen.add(y)
                        stack.append(y)
        return seen

    side_j = component(j)
    if i in side_j:
        return j, i, [j]
    side_i = component(i)
    return (j, i, sorted(side_j)) if len(side_j) <= len(side_i) else (i, j, sorted(side_i))


def corruptions(coords: np.ndarray, vis: np.ndarray, bboxes: np.ndarray,
                skeleton: Skeleton, copies: int, seed: int) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    names = skeleton.keypoint_names
    xy0, v0 = np.repeat(coords, copies, 0), np.repeat(vis, copies, 0)
    box = np.repeat(bboxes, copies, 0)
    size = np.sqrt(box[:, 2] * box[:, 3])
    out = {}

    def swap(side_names: list[str]) -> tuple:
        xy, v = xy0.copy(), v0.copy()
        for name in side_names:
            a = names.index(name)
            b = skeleton.flip_indices[a]
            xy[:, [a, b]], v[:, [a, b]] = xy[:, [b, a]], v[:, [b, a]]
        return xy, v

    out['swap_wrist'] = swap(['left_wrist'])
    out['swap_arm'] = swap(['left_elbow', 'left_wrist'])
    out['swap_ankle'] = swap(['left_ankle'])
    out['swap_leg'] = swap(['left_knee', 'left_ankle'])
    for pct in (10, 25):
        xy = xy0.copy()
        for n in range(len(xy)):
            k = rng.choice(np.flatnonzero(v0[n] > 0))
            theta = rng.uniform(0, 2 * np.pi)
            xy[n, k] += pct / 100 * size[n] * np.array([np.cos(theta), np.sin(theta)])
        out[f'displace_{pct}'] = (xy, v0)
    for kind in ('limb', 'joint'):
        xy = xy0.copy()
        for n in range(len(xy)):
            measured = [e for e, (i, j) in enumerate(skeleton.edges)
                        if v0[n, i] > 0 and v0[n, j] > 0]
            moved, fixed, members = moving_side(skeleton, int(rng.choice(measured)))
            shift = 0.5 * (xy[n, moved] - xy[n, fixed])
            xy[n, members if kind == 'limb' else [moved]] += shift
        out[f'stretch_{kind}_1.5'] = (xy, v0)
    out['random'] = (box[:, None, :2] + rng.uniform(size=xy0.shape) * box[:, None, 2:], v0)
    return out


def score(kps: dict[str, KinematicPlausibilityScore], xy: np.ndarray,
          v: np.ndarray) -> dict[str, np.ndarray]:
    coords = torch.from_numpy(xy).float()
    visible = torch.from_numpy(v)
    return {name: m(coords, visible=visible).kps.numpy().astype(np.float64)
            for name, m in kps.items()}


def left_right_ratios(coords: np.ndarray, vis: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Per pose, the largest length ratio between a body limb (face edges excluded) and its
    mirror limb, both labeled: how far apart two limbs of the same true length already are in
    real 2D poses."""
    face = [i for i, n in enumerate(skeleton.keypoint_names)
            if any(part in n for part in ('nose', 'eye', 'ear'))]
    edges = [tuple(e) for e in skeleton.edges if not set(e) & set(face)]
    flip = skeleton.flip_indices
    pairs = {tuple(sorted((e, edges.index(m)))) for e in range(len(edges))
             for m in [(flip[edges[e][0]], flip[edges[e][1]]), (flip[edges[e][1]],
                                                                flip[edges[e][0]])]
             if m in edges and edges.index(m) != e}
    worst = np.ones(len(coords))
    for a, b in pairs:
        (i, j), (k, m) = edges[a], edges[b]
        ok = (vis[:, [i, j, k, m]] > 0).all(1)
        la = np.linalg.norm(coords[:, i] - coords[:, j], axis=1)
        lb = np.linalg.norm(coords[:, k] - coords[:, m], axis=1)
        ratio = np.maximum(la, lb) / np.maximum(np.minimum(la, lb), 1e-6)
        worst = np.where(ok, np.maximum(worst, ratio), worst)
    return worst


def distribution(x: np.ndarray) -> dict[str, float]:
    return {f'q{int(q * 100):02d}': round(float(np.quantile(x, q)), 4) for q in QUANTILES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--stats', default='stats/skeleton_stats.json')
    parser.add_argument('--copies', type=int, default=10, help='corrupted copies per pose')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--prior', default='work_dirs/ddp_prior/ddp_prior.pth')
    parser.add_argument('--poses', choices=('test100', 'val'), default='test100')
    parser.add_argument('--out', default=None, help='default: benchmarks/results/kps_auroc.json '
                        '(test100) or kps_auroc_val.json (val)')
    args = parser.parse_args(argv)
    prior = dict(checkpoint=args.prior)
    suffix = '' if args.poses == 'test100' else '_val'
    args.out = args.out or f'benchmarks/results/kps_auroc{suffix}.json'

    skeleton = load_skeleton()
    kps = {name: KinematicPlausibilityScore(args.stats, weights=w, prior=prior).eval()
           for name, w in VARIANTS.items()}
    module = kps[COMBINED]
    with tempfile.TemporaryDirectory() as tmp:
        poses_ann, split = ((VAL_ANN, None) if args.poses == 'test100' else
                            labeled_part(LABELED_ANN, SPLIT_FILE, 'val', tmp))
        val = read_coco_keypoints(poses_ann, skeleton.num_keypoints)
    poses_name = VAL_ANN if split is None else f'{LABELED_ANN} (validation part of {SPLIT_FILE})'
    real = score(kps, val.coords, val.visibility)

    results = {}
    print(f'KPS AUROC, {len(val.coords)} real poses of {poses_name} vs {args.copies} corrupted '
          f'copies each (seed {args.seed}); stats {args.stats}')
    print(f'{"corruption":20s}' + ''.join(f'{v:>10s}' for v in VARIANTS))
    for name, (xy, v) in corruptions(val.coords, val.visibility, val.bboxes, skeleton,
                                     args.copies, args.seed).items():
        fake = score(kps, xy, v)
        results[name] = {var: round(auroc(real[var], fake[var]), 4) for var in VARIANTS}
        print(f'{name:20s}' + ''.join(f'{results[name][var]:10.3f}' for var in VARIANTS))
    gross_min = {var: min(results[c][var] for c in GROSS) for var in VARIANTS}
    print(f'min over gross corruptions {GROSS}: ' +
          ', '.join(f'{var} {x:.3f}' for var, x in gross_min.items()))

    correction, _ = kps['prior'].prior.correction_size(torch.from_numpy(val.coords).float(),
                                                       torch.from_numpy(val.visibility))
    real_correction = distribution(correction.numpy().astype(np.float64))
    print(f'real poses: largest ddp_prior correction (pose-frame units) {real_correction}')
    ratios = left_right_ratios(val.coords, val.visibility, skeleton)
    natural = dict(worst_left_right_limb_ratio=distribution(ratios),
                   share_of_poses_with_a_pair_ratio_ge_1_5=round(float((ratios >= 1.5).mean()), 4))
    print(f'real poses: largest left/right limb length ratio {natural["worst_left_right_limb_ratio"]}'
          f'; {natural["share_of_poses_with_a_pair_ratio_ge_1_5"]:.0%} already have a mirror pair '
          'differing by >= 1.5x (foreshortening), so a x1.5 stretch is within natural 2D variation')

    adult = read_coco_keypoints(ADULT_ANN, skeleton.num_keypoints)
    adult_scores = score(kps, adult.coords, adult.visibility)
    adult_res = dict(
        instances=len(adult.coords),
        labeled_keypoints_median=float(np.median((adult.visibility > 0).sum(1))),
        auroc_infant_vs_adult={var: round(auroc(real[var], adult_scores[var]), 4)
                               for var in VARIANTS},
        infant_val=dict(distribution(real[COMBINED])),
        adult=dict(distribution(adult_scores[COMBINED])),
        adult_scores=[round(float(x), 4) for x in adult_scores[COMBINED]],
        adult_below_infant_q05=int((adult_scores[COMBINED]
                                    < np.quantile(real[COMBINED], 0.05)).sum()))
    print(f'\nadult poses ({ADULT_ANN}, {adult_res["instances"]} instances with keypoints, '
          f'median {adult_res["labeled_keypoints_median"]:.0f} labeled keypoints) under the '
          f'infant statistics, KPS {COMBINED}:')
    print(f'  infant {args.poses:10s}: {adult_res["infant_val"]}')
    print(f'  adult coco_mini   : {adult_res["adult"]}')
    print(f'  adults below the infant 5% quantile: {adult_res["adult_below_infant_q05"]} of '
          f'{adult_res["instances"]}; AUROC infant vs adult: '
          f'{adult_res["auroc_infant_vs_adult"]}')

    report = dict(
        stats_file=args.stats, poses=args.poses, val_ann=poses_name, split=split,
        adult_ann=ADULT_ANN, seed=args.seed,
        copies=args.copies, real_poses=len(val.coords),
        kps_config=dict(weights=VARIANTS, rom_quantiles=list(module.rom_quantiles),
                        rom_margin_deg=module.rom_margin_deg, prior=args.prior,
                        prior_tau=module.prior_tau,
                        empty_score=module.empty_score),
        auroc=results, gross_corruptions=list(GROSS), gross_min_auroc=gross_min,
        natural_variation=natural, real_prior_correction=real_correction,
        goal='AUROC >= 0.95 on the gross corruptions',
        real_kps_distribution={var: distribution(real[var]) for var in VARIANTS},
        adult=adult_res,
        environment=dict(python=platform.python_version(), torch=torch.__version__,
                         numpy=np.__version__))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1, sort_keys=True) + '\n')
    print(f'\nwrote {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
