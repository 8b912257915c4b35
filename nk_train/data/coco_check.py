"""Validate a COCO keypoint file against its images and the keypoint set (dataset_info).

Used by ``tools/check_dataset.py``. Errors are problems that corrupt training or evaluation
(a missing/unreadable image, a size that disagrees with the file, a zero-area box, a wrong
keypoint count); warnings are problems the project copes with in a documented way (boxes
slightly outside the image are clipped; ``area`` is replaced by the bbox area and annotation
ids are renumbered 1..N for evaluation, see ``nk_train.evaluation.coco_gt``).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..evaluation.coco_gt import bbox_area
from ..skeleton import Skeleton

# COCO's `area` is a segmentation area, so it lies inside (0, bbox area]; allow a little
# slack above 1 for rounding and flag anything implausibly small.
AREA_RATIO_RANGE = (0.2, 1.05)


@dataclass(frozen=True)
class Finding:
    level: str  # 'error' | 'warning'
    where: str  # image file name and/or annotation id
    what: str

    def __str__(self) -> str:
        return f'{self.level.upper():7s} {self.where}: {self.what}'


def _read_image_size(path: Path) -> tuple[int, int]:
    """(width, height) after a cheap full decode (JPEG draft mode) that catches truncation."""
    with Image.open(path) as img:
        size = img.size
        img.draft('L', (max(1, size[0] // 8), max(1, size[1] // 8)))
        img.load()
    return size


def check_coco_keypoints(ann_file: str | Path, img_dir: str | Path,
                         skeleton: Skeleton) -> list[Finding]:
    """Return every problem found in ``ann_file`` (empty list = clean)."""
    ann_file, img_dir = Path(ann_file), Path(img_dir)
    findings: list[Finding] = []

    def add(level: str, where: str, what: str) -> None:
        findings.append(Finding(level, where, what))

    try:
        coco = json.loads(ann_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        return [Finding('error', str(ann_file), f'cannot read annotation file: {err}')]
    for key in ('images', 'annotations'):
        if key not in coco:
            add('error', str(ann_file), f'no "{key}" list')
    if findings:
        return findings

    k = skeleton.num_keypoints
    for cat in coco.get('categories', []):
        names = cat.get('keypoints')
        if names is not None and tuple(names) != skeleton.keypoint_names:
            add('error', f'category {cat.get("id")}',
                f'keypoint names differ from dataset_info {skeleton.source}')

    images = {}
    for img in coco['images']:
        name = img.get('file_name', f'<image id {img.get("id")}>')
        images[img.get('id')] = img
        path = img_dir / name
        if not path.is_file():
            add('error', name, f'image file missing ({path})')
            continue
        try:
            w, h = _read_image_size(path)
        except Exception as err:  # PIL raises many types for broken files
            add('error', name, f'image unreadable: {err}')
            continue
        img['_disk_size'] = (w, h)
        if (w, h) != (img.get('width'), img.get('height')):
            add('error', name, f'size on disk {w}x{h} != JSON {img.get("width")}x{img.get("height")}'
                ' (boxes and keypoints may be in another frame)')

    ann_ids = Counter(a.get('id') for a in coco['annotations'])
    for ann_id, n in ann_ids.items():
        if n > 1:
            add('error', f'ann {ann_id}', f'annotation id used {n} times')
    if 0 in ann_ids:
        add('warning', 'ann 0', 'annotation id 0 means "unmatched" to COCOeval; '
            'evaluation renumbers ids 1..N (InfantCocoMetric)')

    for ann in coco['annotations']:
        img = images.get(ann.get('image_id'))
        if img is None:
            add('error', f'ann {ann.get("id")}', f'image_id {ann.get("image_id")} not in images')
            continue
        where = f'{img.get("file_name")} ann {ann.get("id")}'
        bbox = ann.get('bbox')
        if not bbox or len(bbox) != 4:
            add('error', where, f'bbox must be [x, y, w, h], got {bbox}')
            continue
        x, y, bw, bh = map(float, bbox)
        if bw <= 0 or bh <= 0:
            add('error', where, f'zero-area bbox {bbox}')
            continue
        w, h = img.get('_disk_size', (img.get('width'), img.get('height')))
        if x < 0 or y < 0 or x + bw > w or y + bh > h:
            add('warning', where, f'bbox [{x:.1f}, {y:.1f}, {bw:.1f}, {bh:.1f}] extends outside '
                f'the {w}x{h} image (clipped by the dataset)')
        kpts = ann.get('keypoints')
        if kpts is None or len(kpts) != 3 * k:
            add('error', where, f'expected {3 * k} keypoint values (K={k}), got '
                f'{None if kpts is None else len(kpts)}')
            continue
        visible = [(kpts[3 * i], kpts[3 * i + 1]) for i in range(k) if kpts[3 * i + 2] > 0]
        if ann.get('num_keypoints') != len(visible):
            add('warning', where, f'num_keypoints={ann.get("num_keypoints")} but '
                f'{len(visible)} keypoints have v>0')
        outside = [(px, py) for px, py in visible if not (0 <= px < w and 0 <= py < h)]
        if outside:
            add('warning', where, f'{len(outside)} labeled keypoint(s) outside the image')
        if 'area' in ann:
            ratio = float(ann['area']) / bbox_area(bbox)
            lo, hi = AREA_RATIO_RANGE
            if not lo <= ratio <= hi:
                add('warning', where, f'area/bbox-area = {ratio:.3g} outside [{lo}, {hi}]; '
                    'evaluation uses area = bbox w*h')
    return findings
