"""Evaluate a checkpoint: the CLI of Sapiens' ``pose/tools/test.py`` (mmpose 1.x).

    python tools/test.py CONFIG --checkpoint CKPT [--work-dir DIR] [--cfg-options k=v ...]
    python tools/test.py CONFIG CKPT             # Sapiens' / mmpose's positional form

Unlike mmengine's default (missing keys are a warning), the checkpoint must fit the model
exactly: a checkpoint of another architecture is refused, never evaluated half-random.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate a pose model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint_pos', nargs='?', metavar='checkpoint',
                        help='checkpoint file (positional, as in mmpose)')
    parser.add_argument('--checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save evaluation results')
    parser.add_argument('--out', help='dump predictions to this pickle/json file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, e.g. test_dataloader.dataset.bbox_file=...')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    args.checkpoint = args.checkpoint or args.checkpoint_pos
    if not args.checkpoint:
        parser.error('a checkpoint is required (--checkpoint CKPT)')
    if not osp.isfile(args.checkpoint):
        parser.error(f'checkpoint not found: {args.checkpoint}')
    return args


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = None  # loaded strictly below: every key of the model, nothing else
    if args.out:
        cfg.test_evaluator = [*(cfg.test_evaluator if isinstance(cfg.test_evaluator, list)
                                else [cfg.test_evaluator]),
                              dict(type='DumpResults', out_file_path=args.out)]
    from nk_train.engine.distributed import prepare_distributed
    prepare_distributed(cfg)
    runner = Runner.from_cfg(cfg)
    try:
        runner.load_checkpoint(args.checkpoint, map_location='cpu', strict=True)
    except RuntimeError as err:  # mmengine's strict load and the Sapiens models' key checks
        raise SystemExit(f'{args.checkpoint} does not fit {args.config}: {err}') from err
    runner.test()


if __name__ == '__main__':
    main()
