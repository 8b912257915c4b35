"""How much the ddp_prior corrects corrupted poses, and how much it moves clean ones.

    .venv/bin/python benchmarks/ddp_prior_denoise.py \
        [--checkpoint work_dirs/ddp_prior/ddp_prior.pth] [--repeats 10]

On the poses of ``val_test100.json`` (never seen in training) each pose is corrupted
``--repeats`` times, seeded:

* ``clean``: unchanged (what we measure is how far the prior moves a correct pose);
* ``gauss5`` / ``gauss10``: Gaussian noise on every coordinate, std 5% / 10% of the bbox
  size ``sqrt(w * h)``;
* ``outlier25``: one random joint moved by 25% of the bbox size in a random direction.

Errors are mean per-joint Euclidean distances to the labels in % of the bbox size. Every
inference setting (mode, noise level, steps, samples) is applied to the same corrupted poses.
Goals: >= 30% error reduction on ``gauss10`` while clean poses move < 2%. The latency of each
mode for a batch of 256 poses is timed on this machine's CPU. Results go to
``benchmarks/results/ddp_prior_denoise.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from nk_train.coco_keypoints import read_coco_keypoints  # noqa: E402
from nk_train.ddp_prior import DDPPrior, sha256_file  # noqa: E402

SETTINGS = [
    dict(mode='x0', noise_level='auto'),
    dict(mode='x0', noise_level=0.1),
    dict(mode='x0', noise_level=0.2),
    dict(mode='x0', noise_level=0.3),
    dict(mode='x0', noise_level=0.4),
    dict(mode='sdedit', noise_level='auto', num_steps=4, num_samples=1),
    dict(mode='sdedit', noise_level='auto', num_steps=4, num_samples=4),
    dict(mode='sdedit', noise_level=0.2, num_steps=4, num_samples=1),
    dict(mode='sdedit', noise_level=0.2, num_steps=4, num_samples=4),
]
GOAL_REDUCTION_GAUSS10 = 30.0   # percent
GOAL_CLEAN_MOVE = 2.0           # percent of bbox size


def _name(s: dict) -> str:
    extra = f"/steps{s['num_steps']}/samples{s['num_samples']}" if s['mode'] == 'sdedit' else ''
    return f"{s['mode']}/noise={s['noise_level']}{extra}"


def corrupt(gt: torch.Tensor, size: torch.Tensor, seed: int) -> dict[str, dict]:
    """The corrupted copies; ``outlier25`` also records which joint was moved."""
    g = torch.Generator().manual_seed(seed)
    unit = size[:, None, None]
    out = {'clean': dict(coords=gt.clone())}
    for pct in (5, 10):
        noise = torch.randn(gt.shape, generator=g)
        out[f'gauss{pct}'] = dict(coords=gt + noise * (pct / 100) * unit)
    B, K = gt.shape[:2]
    joint = torch.randint(K, (B,), generator=g)
    angle = torch.rand(B, generator=g) * 2 * math.pi
    shift = torch.stack([angle.cos(), angle.sin()], -1) * 0.25 * size[:, None]
    moved = gt.clone()
    moved[torch.arange(B), joint] += shift
    out['outlier25'] = dict(coords=moved, joint=joint)
    return out


def errors(pred: torch.Tensor, gt: torch.Tensor, visible: torch.Tensor, size: torch.Tensor,
           joint: torch.Tensor | None) -> dict[str, float]:
    per_joint = (pred - gt).norm(dim=-1) / size[:, None] * 100
    res = {'mean_joint_error_pct': float(per_joint[visible].mean())}
    if joint is not None:
        res['moved_joint_error_pct'] = float(per_joint[torch.arange(len(joint)), joint].mean())
        others = visible.clone()
        others[torch.arange(len(joint)), joint] = False
        res['other_joints_error_pct'] = float(per_joint[others].mean())
    return res


def latency_ms(prior: DDPPrior, coords: torch.Tensor, visible: torch.Tensor, setting: dict,
               runs: int) -> float:
    prior.denoise(coords, visible, **setting)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        prior.denoise(coords, visible, **setting)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--checkpoint', default='work_dirs/ddp_prior/ddp_prior.pth')
    p.add_argument('--ann', default='data/syrip/annotations/val_test100.json')
    p.add_argument('--repeats', type=int, default=10)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--latency-runs', type=int, default=20)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--out', default='benchmarks/results/ddp_prior_denoise.json')
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ckpt_path = REPO_ROOT / args.checkpoint
    prior = DDPPrior.from_checkpoint(ckpt_path)
    ann_path = REPO_ROOT / args.ann
    if prior.meta['training'].get('annotation_sha256') == sha256_file(ann_path):
        raise ValueError(f'{args.checkpoint} was trained on {args.ann}: evaluate on held-out '
                         'poses')
    poses = read_coco_keypoints(ann_path, prior.num_keypoints, prior.normalization.min_visible)
    if poses.left_out:
        print(f'excluded annotation ids (crowd / too few labeled joints): '
              f'{list(poses.left_out)}')
    clean = torch.from_numpy(poses.coords).float()
    clean_vis = torch.from_numpy(poses.visibility > 0)
    size = torch.from_numpy(poses.bboxes[:, 2] * poses.bboxes[:, 3]).sqrt().float()
    N, R = len(poses.ann_ids), args.repeats
    gt, visible, size = clean.repeat(R, 1, 1), clean_vis.repeat(R, 1), size.repeat(R)
    cases = corrupt(gt, size, args.seed)

    before = {name: errors(c['coords'], gt, visible, size, c.get('joint'))
              for name, c in cases.items()}
    print(f'{N} poses x {R} repeats; error before, % of bbox size:')
    print('  ' + '  '.join(f"{n}={v['mean_joint_error_pct']:.2f}" for n, v in before.items()))
    results = []
    for setting in SETTINGS:
        after = {name: errors(prior.denoise(c['coords'], visible, seed=args.seed, **setting),
                              gt, visible, size, c.get('joint')) for name, c in cases.items()}
        red = {name: 100 * (1 - after[name]['mean_joint_error_pct']
                            / before[name]['mean_joint_error_pct'])
               for name in cases if name != 'clean'}
        clean_move = after['clean']['mean_joint_error_pct']
        row = dict(setting=setting, name=_name(setting), after=after,
                   reduction_pct=red, clean_displacement_pct=clean_move,
                   meets_goals=bool(red['gauss10'] >= GOAL_REDUCTION_GAUSS10
                                    and clean_move < GOAL_CLEAN_MOVE))
        results.append(row)
        print(f"{row['name']:<40} clean moved {clean_move:5.2f} | "
              + ' | '.join(f"{n} {after[n]['mean_joint_error_pct']:5.2f} ({red[n]:+.1f}% red.)"
                           for n in red)
              + f" | outlier joint {after['outlier25']['moved_joint_error_pct']:.2f}"
              + (' | GOALS MET' if row['meets_goals'] else ''))

    batch = clean.repeat(math.ceil(256 / N), 1, 1)[:256]
    batch_vis = clean_vis.repeat(math.ceil(256 / N), 1)[:256]
    default = dict(mode=prior.default_mode, noise_level=prior.default_noise_level)
    timed = [default, dict(mode='x0', noise_level=0.2),
             dict(mode='sdedit', noise_level='auto', num_steps=4, num_samples=1),
             dict(mode='sdedit', noise_level='auto', num_steps=4, num_samples=4)]
    latency = []
    for setting in timed:
        ms = latency_ms(prior, batch, batch_vis, setting, args.latency_runs)
        latency.append(dict(setting=setting, batch=256, median_ms=ms))
        print(f'latency, batch 256, {setting}: {ms:.2f} ms (median of {args.latency_runs})')

    training = {k: v for k, v in prior.meta.get('training', {}).items()
                if k != 'annotation_ids'}
    report = dict(
        checkpoint=args.checkpoint, training=training,
        eval_annotations=args.ann, num_poses=N, repeats=R,
        seed=args.seed, noise_definition='std per coordinate in % of sqrt(bbox w*h)',
        error_definition='mean per-joint Euclidean error in % of sqrt(bbox w*h)',
        goals=dict(gauss10_reduction_pct_min=GOAL_REDUCTION_GAUSS10,
                   clean_displacement_pct_max=GOAL_CLEAN_MOVE),
        before=before, results=results, default=default, latency=latency,
        machine=dict(platform=platform.platform(), processor=platform.processor(),
                     torch=torch.__version__, threads=torch.get_num_threads(), device='cpu'))
    out = REPO_ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f'wrote {args.out}')
    return report


if __name__ == '__main__':
    main()
