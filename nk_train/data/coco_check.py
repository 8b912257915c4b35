"""Validate a COCO keypoint file against the keypoint set (and, given a folder, its images).

Used by ``tools/check_dataset.py`` (with the images) and by the training datasets when they
load a file (``CheckedCocoDataset``, ``UnlabeledCocoDataset``: JSON only, cheap), so a
defect stops training at build time with the file and annotation named. Errors are problems
that corrupt training or evaluation: an unreadable file, no annotations, a missing/unreadable
image or one listed twice, a size that disagrees with the file, a box that is malformed, has no
area or lies wholly outside its image, keypoints of the wrong count, non-numeric or non-finite
values, an unknown visibility flag. Warnings are what the project copes with in a documented
way: boxes partly outside the image (clipped), ``area`` (evaluation uses the bbox area),
annotation id 0 (evaluation renumbers ids, ``nk_train.coco_keypoints``), instances without
labeled keypoints (not used for supervised training). What a well-formed keypoint list and box
are is defined once, in ``nk_train.coco_keypoints``, which the pose readers share.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from ..coco_keypoints import (CocoFileError, bbox_area, bbox_problem, finite_number,
                              keypoints_problem, read_coco_file)

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


Add = Callable[[str, str, str], None]


def _read_image_size(path: Path) -> tuple[int, int]:
    """(width, height) after a cheap full decode (JPEG draft mode) that catches truncation."""
    with Image.open(path) as img:
        size = img.size
        img.draft('L', (max(1, size[0] // 8), max(1, size[1] // 8)))
        img.load()
    return size


def check_coco_keypoints(ann_file: str | Path, img_dir: str | Path | None,
                         keypoint_names: Sequence[str], require_keypoints: bool = True,
                         require_annotations: bool = True) -> list[Finding]:
    """Every problem found in ``ann_file`` (empty list = clean). ``img_dir=None`` checks the
    JSON only; ``require_keypoints=False`` for box-only (unlabeled) files;
    ``require_annotations=False`` for an images-only file whose boxes come from a detector."""
    try:
        coco = read_coco_file(ann_file, require_annotations)
    except CocoFileError as err:
        return [Finding('error', str(ann_file), err.problem)]
    findings: list[Finding] = []

    def add(level: str, where: str, what: str) -> None:
        findings.append(Finding(level, where, what))

    if require_annotations and not coco['annotations']:
        add('error', str(ann_file), 'the "annotations" list is empty: nothing to train on')
    _check_categories(coco, tuple(keypoint_names), add)
    images = _check_images(coco['images'], None if img_dir is None else Path(img_dir), add)
    _check_annotation_ids(coco['annotations'], add)
    for ann in coco['annotations']:
        _check_annotation(ann, images, len(keypoint_names), require_keypoints, add)
    return findings


def _check_annotation(ann: dict, images: dict, k: int, require_keypoints: bool,
                      add: Add) -> None:
    """One annotation against its image: box, area and (when required or present) keypoints."""
    img = images.get(ann.get('image_id'))
    if img is None:
        add('error', f'ann {ann.get("id")}', f'image_id {ann.get("image_id")!r} not in images')
        return
    where = f'{img.get("file_name")} ann {ann.get("id")}'
    size = img.get('_disk_size', (img.get('width'), img.get('height')))
    if _check_bbox(ann.get('bbox'), size, where, add):
        _check_area(ann, where, add)
    if require_keypoints or ann.get('keypoints') is not None:
        _check_keypoints(ann, k, size, where, add, require_keypoints)


def _check_categories(coco: dict, names: tuple[str, ...], add: Add) -> None:
    for cat in coco.get('categories', []):
        got = cat.get('keypoints')
        if got is not None and tuple(got) != names:
            add('error', f'category {cat.get("id")}', 'keypoint names differ from the '
                'dataset_info keypoint set')


def _check_images(images: list, img_dir: Path | None, add: Add) -> dict:
    """Images by id; duplicates, and (with ``img_dir``) missing/unreadable files and sizes."""
    by_id: dict = {}
    names = Counter(img.get('file_name') for img in images)
    for name, n in names.items():
        if n > 1:
            add('error', str(name), f'image listed {n} times')
    for img in images:
        name = img.get('file_name', f'<image id {img.get("id")}>')
        if img.get('id') in by_id:
            add('error', name, f'image id {img.get("id")} used twice')
        by_id[img.get('id')] = img
        if not (finite_number(img.get('width')) and finite_number(img.get('height'))):
            add('error', name, f'width/height must be numbers, got {img.get("width")!r} x '
                f'{img.get("height")!r}')
        if img_dir is None:
            continue
        path = img_dir / name
        if not path.is_file():
            add('error', name, f'image file missing ({path})')
            continue
        try:
            w, h = _read_image_size(path)
        except Exception as err:  # noqa: BLE001 - PIL raises many types for broken files
            add('error', name, f'image unreadable: {err}')
            continue
        img['_disk_size'] = (w, h)
        if (w, h) != (img.get('width'), img.get('height')):
            add('error', name, f'size on disk {w}x{h} != JSON {img.get("width")}x'
                f'{img.get("height")} (boxes and keypoints may be in another frame)')
    return by_id


def _check_annotation_ids(anns: list, add: Add) -> None:
    ids = Counter(a.get('id') for a in anns)
    for ann_id, n in ids.items():
        if n > 1:
            add('error', f'ann {ann_id}', f'annotation id used {n} times')
    if 0 in ids:
        add('warning', 'ann 0', 'annotation id 0 means "unmatched" to COCOeval; '
            'evaluation renumbers ids 1..N (InfantCocoMetric)')


def _check_bbox(bbox, size: tuple, where: str, add: Add) -> bool:
    """Whether the box is usable (errors and warnings added)."""
    problem = bbox_problem(bbox)
    if problem:
        add('error', where, problem)
        return False
    x, y, bw, bh = map(float, bbox)
    if bw <= 0 or bh <= 0:
        add('error', where, f'zero-area bbox {bbox}')
        return False
    w, h = size
    if not (finite_number(w) and finite_number(h)):
        return False
    if x >= w or y >= h or x + bw <= 0 or y + bh <= 0:
        add('error', where, f'bbox [{x:.1f}, {y:.1f}, {bw:.1f}, {bh:.1f}] lies wholly outside '
            f'the {w}x{h} image')
        return False
    if x < 0 or y < 0 or x + bw > w or y + bh > h:
        add('warning', where, f'bbox [{x:.1f}, {y:.1f}, {bw:.1f}, {bh:.1f}] extends outside '
            f'the {w}x{h} image (clipped by the dataset)')
    return True


def _check_area(ann: dict, where: str, add: Add) -> None:
    if 'area' not in ann:
        return
    if not finite_number(ann['area']):
        add('warning', where, f'area {ann["area"]!r} is not a number; evaluation uses the '
            'bbox area')
        return
    ratio = float(ann['area']) / bbox_area(ann['bbox'])
    lo, hi = AREA_RATIO_RANGE
    if not lo <= ratio <= hi:
        add('warning', where, f'area/bbox-area = {ratio:.3g} outside [{lo}, {hi}]; '
            'evaluation uses area = bbox w*h')


def _check_keypoints(ann: dict, k: int, size: tuple, where: str, add: Add,
                     required: bool) -> None:
    kpts = ann.get('keypoints')
    problem = keypoints_problem(kpts, k)
    if problem:
        add('error', where, problem)
        return
    flags = kpts[2::3]
    visible = [(kpts[3 * i], kpts[3 * i + 1]) for i in range(k) if flags[i] > 0]
    if 'num_keypoints' in ann and ann['num_keypoints'] != len(visible):
        add('warning', where, f'num_keypoints={ann["num_keypoints"]} but {len(visible)} '
            'keypoints have v>0')
    if required and not visible:
        add('warning', where, 'no labeled keypoint: not used for supervised training')
    w, h = size
    if finite_number(w) and finite_number(h):
        outside = [(px, py) for px, py in visible if not (0 <= px < w and 0 <= py < h)]
        if outside:
            add('warning', where, f'{len(outside)} labeled keypoint(s) outside the image')


class DatasetDefectError(ValueError):
    """An annotation file that training or evaluation must not read as it is."""


def refuse_defects(ann_file: str | Path, keypoint_names: Sequence[str],
                   require_keypoints: bool, require_annotations: bool = True,
                   shown: int = 20) -> list[Finding]:
    """Raise ``DatasetDefectError`` listing the errors of ``ann_file`` (JSON checks only);
    return its warnings."""
    findings = check_coco_keypoints(ann_file, None, keypoint_names, require_keypoints,
                                    require_annotations)
    errors = [f for f in findings if f.level == 'error']
    if errors:
        more = f'\n  ... ({len(errors)} errors in all)' if len(errors) > shown else ''
        raise DatasetDefectError(
            f'{ann_file}: {len(errors)} defect(s), refusing to load it (check it with '
            'tools/check_dataset.py):\n  ' + '\n  '.join(map(str, errors[:shown])) + more)
    return findings
