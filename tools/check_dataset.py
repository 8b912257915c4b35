"""Check a COCO keypoint annotation file against its images and the keypoint set.

    python tools/check_dataset.py ANN.json IMG_DIR [--dataset-info FILE] [--boxes-only]
        [--strict]

Prints one line per problem (file name / annotation id and what is wrong) and a summary.
Exit code: 0 clean or warnings only, 1 errors (or warnings with --strict), 2 bad usage.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter

from nk_train.data.coco_check import check_coco_keypoints
from nk_train.skeleton import load_skeleton


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('ann_file')
    parser.add_argument('img_dir')
    parser.add_argument('--dataset-info', default=None,
                        help='dataset_info file (default: configs/_base_/datasets/infant_coco17.py)')
    parser.add_argument('--boxes-only', action='store_true',
                        help='an unlabeled file: boxes are required, keypoints are not')
    parser.add_argument('--strict', action='store_true', help='treat warnings as errors')
    args = parser.parse_args(argv)

    findings = check_coco_keypoints(args.ann_file, args.img_dir,
                                    load_skeleton(args.dataset_info).keypoint_names,
                                    require_keypoints=not args.boxes_only)
    for f in sorted(findings, key=lambda f: (f.level != 'error', f.where)):
        print(f)
    counts = Counter(f.level for f in findings)
    print(f'{args.ann_file}: {counts["error"]} error(s), {counts["warning"]} warning(s)')
    failed = counts['error'] > 0 or (args.strict and counts['warning'] > 0)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
