"""Carve a validation split out of the labeled COCO file: a fixed-seed choice of images.

    python tools/make_val_split.py [--ann data/syrip/annotations/train_labeled.json]
        [--fraction 0.2] [--seed 20261201] [--out stats/splits/syrip_labeled.json]

Images (with all their annotations) are drawn, not annotations, so no image is on both sides.
The labeled file carries no video or subject ids, and some of its images are frames of one
video: near-duplicates can fall on both sides, which makes validation AP optimistic (Test100,
a separate file, is untouched). The file lists the image and annotation ids of each part with the source file's sha256;
it is committed and byte-reproducible (same input, fraction and seed -> same bytes), and every
config reads its parts through ``split=dict(file=..., part='train'|'val')`` of
``CheckedCocoDataset`` and ``InfantCocoMetric``. The validation part serves checkpoint
selection and all tuning; Test100 is evaluated once per final checkpoint.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nk_train.data.splits import SPLIT_FORMAT  # noqa: E402
from nk_train.utils import sha256_file  # noqa: E402

DEFAULT_ANN = 'data/syrip/annotations/train_labeled.json'
DEFAULT_OUT = 'stats/splits/syrip_labeled.json'


def make_split(ann_file: Path, fraction: float, seed: int, recorded_as: str) -> dict:
    coco = json.loads(ann_file.read_bytes())
    image_ids = sorted({int(a['image_id']) for a in coco['annotations']})
    if not 0 < fraction < 1 or round(fraction * len(image_ids)) < 1:
        raise ValueError(f'--fraction {fraction} leaves no validation image out of '
                         f'{len(image_ids)}')
    order = np.random.default_rng(seed).permutation(len(image_ids))
    val_images = {image_ids[i] for i in order[:round(fraction * len(image_ids))]}
    parts = {'train': {'image_ids': [], 'annotation_ids': []},
             'val': {'image_ids': [], 'annotation_ids': []}}
    for img in image_ids:
        parts['val' if img in val_images else 'train']['image_ids'].append(img)
    for ann in coco['annotations']:
        part = 'val' if int(ann['image_id']) in val_images else 'train'
        parts[part]['annotation_ids'].append(int(ann['id']))
    for part in parts.values():
        part['annotation_ids'].sort()
    return dict(format=SPLIT_FORMAT, source=recorded_as, source_sha256=sha256_file(ann_file),
                method='numpy.random.default_rng(seed).permutation of the sorted image ids; '
                       'the first round(fraction * N) images are val',
                seed=seed, fraction=fraction, parts=parts)


def dumps(split: dict) -> str:
    """Indented JSON with each id list on one line (diffs stay readable)."""
    text = json.dumps(split, indent=1, sort_keys=True)
    return re.sub(r'\[\s*(\d+(?:,\s*\d+)*)\s*\]',
                  lambda m: '[' + ', '.join(m.group(1).replace(',', ' ').split()) + ']',
                  text) + '\n'


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--ann', default=DEFAULT_ANN)
    p.add_argument('--fraction', type=float, default=0.2)
    p.add_argument('--seed', type=int, default=20261201)
    p.add_argument('--out', default=DEFAULT_OUT)
    args = p.parse_args(argv)
    ann = Path(args.ann) if Path(args.ann).is_absolute() else ROOT / args.ann
    out = Path(args.out) if Path(args.out).is_absolute() else ROOT / args.out
    split = make_split(ann, args.fraction, args.seed, args.ann)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(split))
    n = {k: len(v['image_ids']) for k, v in split['parts'].items()}
    print(f'wrote {out}: {n["train"]} train / {n["val"]} val images of {args.ann}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
