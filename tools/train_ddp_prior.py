"""Train the ddp_prior (diffusion developmental prior) on labeled COCO keypoints.

    .venv/bin/python tools/train_ddp_prior.py \
        [--ann data/syrip/annotations/train_labeled.json] \
        [--split stats/splits/syrip_labeled.json | none] \
        [--out work_dirs/ddp_prior/ddp_prior.pth] [--steps 3000] [--seed 0]

Only the train part of ``--split`` is used (the validation images stay out of everything the
Stage1 choices are tuned against).

Flip augmentation uses the flip permutation of ``nk_train.skeleton.load_skeleton()``. The
checkpoint holds the weights, the model / schedule / normalisation config, the keypoint names
and the sha256 of the annotation file, and loads with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from nk_train.ddp_prior import AugmentConfig, DenoiserConfig, ScheduleConfig, TrainConfig

    d, a, m, s = TrainConfig(), AugmentConfig(), DenoiserConfig(), ScheduleConfig()
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--ann', default='data/syrip/annotations/train_labeled.json',
                   help='COCO keypoint file with LABELED poses (relative to the repo root)')
    p.add_argument('--split', default='stats/splits/syrip_labeled.json',
                   help='split file whose train part is used ("none" = the whole --ann file)')
    p.add_argument('--out', default='work_dirs/ddp_prior/ddp_prior.pth')
    p.add_argument('--dataset-info', default=None,
                   help='dataset_info file for the skeleton (default: infant_coco17)')
    p.add_argument('--steps', type=int, default=d.steps)
    p.add_argument('--batch-size', type=int, default=d.batch_size)
    p.add_argument('--lr', type=float, default=d.lr)
    p.add_argument('--weight-decay', type=float, default=d.weight_decay)
    p.add_argument('--ema-decay', type=float, default=d.ema_decay)
    p.add_argument('--seed', type=int, default=d.seed)
    p.add_argument('--width', type=int, default=m.width)
    p.add_argument('--depth', type=int, default=m.depth)
    p.add_argument('--dropout', type=float, default=m.dropout)
    p.add_argument('--schedule', choices=('cosine', 'linear'), default=s.kind)
    p.add_argument('--num-steps', type=int, default=s.num_steps, help='diffusion steps T')
    p.add_argument('--rot-deg', type=float, default=a.rot_deg)
    p.add_argument('--stretch', type=float, default=a.stretch)
    p.add_argument('--drop-prob', type=float, default=a.drop_prob)
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    import torch

    from nk_train.ddp_prior import (AugmentConfig, DenoiserConfig, NormalizationConfig,
                                    ScheduleConfig, TrainConfig, build_checkpoint,
                                    load_training_poses, save_checkpoint, sha256_file,
                                    train_prior)
    from nk_train.data.splits import labeled_part
    from nk_train.paths import project_path
    from nk_train.skeleton import load_skeleton

    if args.threads:
        torch.set_num_threads(args.threads)
    skeleton = load_skeleton(args.dataset_info)
    ann = Path(args.ann)
    ann_path = ann if ann.is_absolute() else REPO_ROOT / ann
    out = Path(args.out)
    out_path = out if out.is_absolute() else REPO_ROOT / out
    cfg = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, ema_decay=args.ema_decay, seed=args.seed,
        augment=AugmentConfig(rot_deg=args.rot_deg, stretch=args.stretch,
                              drop_prob=args.drop_prob),
        denoiser=DenoiserConfig(num_keypoints=skeleton.num_keypoints, width=args.width,
                                depth=args.depth, dropout=args.dropout),
        schedule=ScheduleConfig(kind=args.schedule, num_steps=args.num_steps),
        normalization=NormalizationConfig())
    split_file = None if args.split == 'none' else project_path(args.split)
    with tempfile.TemporaryDirectory() as tmp:
        part_file, split = labeled_part(ann_path, split_file, 'train', tmp)
        poses = load_training_poses(part_file, skeleton.num_keypoints,
                                    cfg.normalization.min_visible)
    poses.source = str(ann) if split is None else \
        f'{ann} (train part of {args.split}, sha256 {split["sha256"][:12]})'
    print(f'{ann}: {len(poses.annotation_ids)} poses, '
          f'{int((~poses.visible).sum())} unlabeled joints masked')
    if poses.excluded_annotation_ids:
        print(f'excluded (crowd or < {cfg.normalization.min_visible} labeled joints): '
              f'annotation ids {poses.excluded_annotation_ids}')
    start = time.time()
    model, losses = train_prior(poses, skeleton.flip_indices, cfg,
                                progress=not args.no_progress)
    ckpt = build_checkpoint(model, cfg, poses, skeleton.keypoint_names, skeleton.flip_indices,
                            losses, sha256_file(ann_path))
    save_checkpoint(ckpt, out_path)
    first = sum(losses[:50]) / len(losses[:50])
    print(f'trained {cfg.steps} steps in {time.time() - start:.1f} s; loss {first:.4f} '
          f'(first 50) -> {ckpt["training"]["final_loss_mean100"]:.4f} (last 100)')
    print(f'wrote {out}')
    return out_path


if __name__ == '__main__':
    main()
