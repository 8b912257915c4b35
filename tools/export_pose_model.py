"""Export one branch of a Stage1 checkpoint as a plain TopdownPoseEstimator checkpoint.

    python tools/export_pose_model.py STAGE1_CKPT OUT.pth [--branch teacher|student]

The result loads into the Stage0 config of the same model size, e.g.
    python tools/test.py configs/nk_sapiens/infant/stage0_supervised_cpu.py --checkpoint OUT.pth
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('checkpoint', help='Stage1 checkpoint (SemiTopdownPoseEstimator)')
    parser.add_argument('out', help='output .pth file')
    parser.add_argument('--branch', choices=['teacher', 'student'], default='teacher')
    args = parser.parse_args()

    from mmengine.runner.checkpoint import _load_checkpoint

    import nk_train  # noqa: F401  (torch.load allow-list for mmengine checkpoints)
    from nk_train.models.export import extract_branch

    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint not found: {args.checkpoint}')
    exported = extract_branch(_load_checkpoint(args.checkpoint, map_location='cpu'),
                              args.branch, source=args.checkpoint)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    torch.save(exported, args.out)
    print(f'wrote {args.out}: {args.branch} of {args.checkpoint}, '
          f'{len(exported["state_dict"])} tensors')


if __name__ == '__main__':
    main()
