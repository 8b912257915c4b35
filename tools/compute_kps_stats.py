"""Compute the skeleton statistics (limb lengths, joint ROM) used by the KPS and CMGC.

    python tools/compute_kps_stats.py [INPUT] [--out stats/skeleton_stats.json]
                                      [--dataset-info FILE] [--min-limbs 3] [--split FILE|none]

INPUT is a COCO keypoint file or an mmengine config whose ``train_dataloader.dataset`` has an
``ann_file`` (default: data/syrip/annotations/train_labeled.json). Only the ``train`` part of
``--split`` is used (default stats/splits/syrip_labeled.json: the validation images never
shape the statistics the gate and CMGC tune against). With a config, the skeleton
comes from the dataset's ``metainfo.from_file`` unless --dataset-info is given. The output is
byte-identical for the same input (sorted keys, rounded floats, no timestamps); paths inside
the repository are recorded relative to its root.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from nk_train.coco_keypoints import read_coco_keypoints
from nk_train.kps.stats import DEFAULT_MIN_LIMBS, compute_skeleton_stats, dumps_stats
from nk_train.data.splits import labeled_part
from nk_train.paths import PROJECT_ROOT, project_path
from nk_train.skeleton import load_skeleton
from nk_train.utils import sha256_file

DEFAULT_INPUT = 'data/syrip/annotations/train_labeled.json'
DEFAULT_OUT = 'stats/skeleton_stats.json'
DEFAULT_SPLIT = 'stats/splits/syrip_labeled.json'  # the validation images stay out


def recorded_path(path: str | Path) -> str:
    """``path`` relative to the repository root when it lies inside it (symlinks such as
    ``data/`` are not followed), else as given."""
    absolute = os.path.abspath(path)
    root = os.path.abspath(PROJECT_ROOT)
    if os.path.commonpath([absolute, root]) == root:
        return Path(os.path.relpath(absolute, root)).as_posix()
    return str(path)


def ann_file_from_config(config: str) -> tuple[str, str | None]:
    """``(ann_file, dataset_info or None)`` of a config's train dataset (wrappers unwrapped)."""
    from mmengine.config import Config

    cfg = Config.fromfile(config)
    if 'train_dataloader' not in cfg:
        raise ValueError(f'{config}: no train_dataloader')
    ds = cfg.train_dataloader.get('dataset')
    while ds is not None and 'ann_file' not in ds and 'dataset' in ds:
        ds = ds['dataset']
    if ds is None or not ds.get('ann_file'):
        raise ValueError(f'{config}: train_dataloader.dataset has no ann_file')
    ann = ds['ann_file']
    if not os.path.isabs(ann) and ds.get('data_root'):
        ann = os.path.join(ds['data_root'], ann)
    info = (ds.get('metainfo') or {}).get('from_file')
    return ann, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('input', nargs='?', default=DEFAULT_INPUT,
                        help='COCO keypoint .json or mmengine config .py')
    parser.add_argument('--out', default=DEFAULT_OUT)
    parser.add_argument('--dataset-info', default=None,
                        help='dataset_info file (default: from the config, else '
                             'configs/_base_/datasets/infant_coco17.py)')
    parser.add_argument('--min-limbs', type=int, default=DEFAULT_MIN_LIMBS,
                        help='measured limbs a pose needs for a scale')
    parser.add_argument('--split', default=DEFAULT_SPLIT,
                        help='split file (tools/make_val_split.py) whose train part is used; '
                             '"none" = the whole file')
    args = parser.parse_args(argv)
    if args.min_limbs < 1:
        parser.error('--min-limbs must be >= 1')

    config = None
    dataset_info = args.dataset_info
    if args.input.endswith('.py'):
        config = args.input
        ann_file, cfg_info = ann_file_from_config(config)
        dataset_info = dataset_info or cfg_info
    elif args.input.endswith('.json'):
        ann_file = args.input
    else:
        parser.error(f'INPUT must be a .json annotation file or a .py config: {args.input}')
    if not os.path.isfile(ann_file):
        raise FileNotFoundError(f'annotation file not found: {ann_file}')

    skeleton = load_skeleton(dataset_info)
    split_file = None if args.split == 'none' else project_path(args.split)
    with tempfile.TemporaryDirectory() as tmp:
        part_file, split = labeled_part(ann_file, split_file, 'train', tmp)
        poses = read_coco_keypoints(part_file, skeleton.num_keypoints)
    source = dict(ann_file=recorded_path(ann_file), ann_file_sha256=sha256_file(ann_file),
                  config=recorded_path(config) if config else None,
                  dataset_info=recorded_path(skeleton.source),
                  split=None if split is None else dict(split, file=recorded_path(split_file)))
    stats = compute_skeleton_stats(poses, skeleton, source, min_limbs=args.min_limbs)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(dumps_stats(stats).encode('utf-8'))
    norm = stats['normalisation']
    print(f'{out}: {len(stats["limbs"])} limbs, {len(stats["joint_angles"])} joint angles from '
          f'{stats["visibility"]["instances_used"]} instances of {source["ann_file"]} '
          f'({norm["instances_without_scale"]} without scale, '
          f'{stats["visibility"]["keypoints_v0"]} unlabeled keypoints excluded)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
