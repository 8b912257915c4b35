"""tools/check_dataset.py on the real SyRIP files: it must catch the documented flaws."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nk_train.data.coco_check import check_coco_keypoints
from nk_train.skeleton import load_skeleton

REAL = __import__('pathlib').Path(__file__).resolve().parents[2] / 'data' / 'syrip'


NAMES = load_skeleton().keypoint_names


def _findings(ann, img_dir):
    return check_coco_keypoints(ann, img_dir, NAMES)


def _errors_of(tmp_path, edit) -> list[str]:
    """Errors found in a copy of 3 real labeled annotations after ``edit(coco)``."""
    coco = json.loads((REAL / 'annotations/train_labeled.json').read_text())
    coco['images'], coco['annotations'] = coco['images'][:3], coco['annotations'][:3]
    edit(coco)
    ann = tmp_path / 'edited.json'
    ann.write_text(json.dumps(coco))
    return [str(f) for f in _findings(ann, REAL / 'images') if f.level == 'error']


def test_val_test100_flaws_are_reported(syrip_root):
    found = _findings(syrip_root / 'annotations/val_test100.json', syrip_root / 'images')
    errors = [f for f in found if f.level == 'error']
    # test11.jpg: 2048x2048 on disk, 1536x2048 in the JSON.
    assert any('test11.jpg' in f.where and 'size on disk 2048x2048' in f.what for f in errors)
    # Annotation id 0 (test0.jpg) is flagged, with the evaluation rule that handles it.
    assert any(f.where == 'ann 0' for f in found)


def test_area_inconsistency_and_boxes_outside_image(syrip_root):
    labeled = _findings(syrip_root / 'annotations/train_labeled.json', syrip_root / 'images')
    unlabeled = _findings(syrip_root / 'annotations/train_unlabeled.json', syrip_root / 'images')
    area_lab = [f for f in labeled if 'area/bbox-area' in f.what]
    area_unl = [f for f in unlabeled if 'area/bbox-area' in f.what]
    assert len(area_lab) > 100 and len(area_unl) > 100  # 0.05x and 16x the bbox area
    outside = [f for f in labeled + unlabeled if 'extends outside' in f.what]
    assert any('bbox [-' in f.what for f in outside)  # boxes starting at negative x/y


def test_cli_exit_codes_and_named_problems(syrip_root, tmp_path):
    coco = json.loads((syrip_root / 'annotations/train_labeled.json').read_text())
    coco['images'], coco['annotations'] = coco['images'][:3], coco['annotations'][:3]
    missing, broken = coco['images'][0], coco['annotations'][1]
    missing['file_name'] = 'no_such_image.jpg'
    broken['bbox'][2] = 0.0
    ann = tmp_path / 'subset.json'
    ann.write_text(json.dumps(coco))
    run = subprocess.run([sys.executable, 'tools/check_dataset.py', str(ann),
                          str(syrip_root / 'images')], capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr
    assert 'no_such_image.jpg: image file missing' in run.stdout
    assert f'ann {broken["id"]}: zero-area bbox' in run.stdout


@pytest.mark.parametrize('ann', ['train_labeled.json', 'train_unlabeled.json'])
def test_train_files_have_no_errors(syrip_root, ann):
    found = _findings(syrip_root / 'annotations' / ann, syrip_root / 'images')
    assert [f for f in found if f.level == 'error'] == []


def _set_keypoint(value):
    def edit(coco):
        coco['annotations'][1]['keypoints'][3] = value
    return edit


def _box_outside(coco):
    img = coco['images'][0]
    coco['annotations'][0]['bbox'] = [img['width'] + 10.0, 5.0, 40.0, 40.0]


@pytest.mark.parametrize('edit, expected', [
    (lambda c: c.update(annotations=[]), 'the "annotations" list is empty'),
    (_set_keypoint(float('nan')), 'keypoint values must be finite numbers'),
    (_set_keypoint('12.5'), 'keypoint values must be finite numbers'),
    (_box_outside, 'lies wholly outside'),
    (lambda c: c['images'].append(dict(c['images'][0], id=999)), 'image listed 2 times'),
    (lambda c: c['annotations'][2]['keypoints'].pop(), 'expected 51 keypoint values'),
])
def test_defects_are_errors_naming_the_annotation(tmp_path, syrip_root, edit, expected):
    errors = _errors_of(tmp_path, edit)
    assert any(expected in e for e in errors), errors


def test_unreadable_annotation_file_is_one_error(tmp_path):
    ann = tmp_path / 'broken.json'
    ann.write_text('{"images": [')
    found = _findings(ann, tmp_path)
    assert len(found) == 1 and found[0].level == 'error'
    assert 'cannot read annotation file' in found[0].what
