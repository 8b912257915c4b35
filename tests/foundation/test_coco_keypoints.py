"""The one COCO keypoint reader on the real SyRIP files: what it reads, what it leaves out, how
it refuses a defect (the same words as the dataset check), and that it stays a leaf module."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from nk_train.coco_keypoints import (CROWD, TOO_FEW_LABELED, CocoFileError, read_coco_file,
                                     read_coco_keypoints)
from nk_train.data.coco_check import check_coco_keypoints
from nk_train.skeleton import load_skeleton

NAMES = load_skeleton().keypoint_names
K = len(NAMES)
PACKAGE = Path(__file__).resolve().parents[2] / 'nk_train'


def _edited(tmp_path: Path, syrip_root: Path, edit) -> Path:
    """A copy of the first 5 labeled annotations after ``edit(coco)``."""
    coco = json.loads((syrip_root / 'annotations/train_labeled.json').read_text())
    coco['images'], coco['annotations'] = coco['images'][:5], coco['annotations'][:5]
    edit(coco)
    path = tmp_path / 'edited.json'
    path.write_text(json.dumps(coco))
    return path


def test_reads_every_labeled_instance_as_in_the_file(syrip_root):
    path = syrip_root / 'annotations/train_labeled.json'
    anns = json.loads(path.read_text())['annotations']
    poses = read_coco_keypoints(path, K)
    raw = np.array([a['keypoints'] for a in anns], dtype=np.float64).reshape(len(anns), K, 3)
    np.testing.assert_array_equal(poses.coords, raw[..., :2])
    np.testing.assert_array_equal(poses.visibility, raw[..., 2])
    np.testing.assert_array_equal(poses.bboxes, [a['bbox'] for a in anns])
    assert poses.ann_ids == tuple(a['id'] for a in anns) and poses.left_out == {}
    assert poses.ann_file == str(path)


@pytest.mark.parametrize('min_labeled', [1, 15])
def test_leaves_out_poorly_labeled_instances_in_file_order(coco_mini_root, min_labeled):
    path = coco_mini_root / 'test_coco.json'  # COCO: 2 of 14 instances have no labeled keypoint
    anns = json.loads(path.read_text())['annotations']
    few = [a['id'] for a in anns if sum(v > 0 for v in a['keypoints'][2::3]) < min_labeled]
    assert 0 < len(few) < len(anns)
    poses = read_coco_keypoints(path, K, min_labeled=min_labeled)
    assert list(poses.left_out) == few
    assert poses.left_out_count(TOO_FEW_LABELED) == len(few)
    assert poses.ann_ids == tuple(a['id'] for a in anns if a['id'] not in few)
    assert ((poses.visibility > 0).sum(1) >= min_labeled).all()


def test_crowd_instances_are_left_out_unread(tmp_path, syrip_root):
    def crowd(coco):
        coco['annotations'][2].update(iscrowd=1, keypoints=None)
    path = _edited(tmp_path, syrip_root, crowd)
    coco = json.loads(path.read_text())
    poses = read_coco_keypoints(path, K)
    assert poses.left_out == {coco['annotations'][2]['id']: CROWD}
    assert len(poses.ann_ids) == 4


def test_a_file_without_labeled_instances_is_refused(syrip_root):
    with pytest.raises(CocoFileError, match=r'train_unlabeled\.json: no annotation has >= 1 '
                                            r'labeled keypoints \(0 crowd, 300 with fewer\)'):
        read_coco_keypoints(syrip_root / 'annotations/train_unlabeled.json', K)


def _set(index: int, **fields):
    def edit(coco):
        coco['annotations'][index].update(fields)
    return edit


def _keypoint(index: int, entry: int, value):
    def edit(coco):
        coco['annotations'][index]['keypoints'][entry] = value
    return edit


@pytest.mark.parametrize('edit, problem', [
    (lambda c: c['annotations'][3]['keypoints'].__delitem__(slice(-3, None)),
     'expected 51 keypoint values (K=17), got 48'),
    (_keypoint(3, 4, '12.5'), "keypoint values must be finite numbers: entries [4] are ['12.5']"),
    (_keypoint(3, 3, float('nan')), 'keypoint values must be finite numbers: entries [3] are '
                                    '[nan]'),
    (_keypoint(3, 5, 3), 'visibility flags must be 0, 1 or 2, got [3]'),
    (_set(3, bbox=[1.0, 2.0, 3.0]), 'bbox must be four finite numbers [x, y, w, h], got '
                                    '[1.0, 2.0, 3.0]'),
])
def test_a_defect_names_file_annotation_and_image_as_the_check_does(tmp_path, syrip_root, edit,
                                                                    problem):
    path = _edited(tmp_path, syrip_root, edit)
    coco = json.loads(path.read_text())
    ann = coco['annotations'][3]
    image = next(i['file_name'] for i in coco['images'] if i['id'] == ann['image_id'])
    with pytest.raises(CocoFileError) as err:
        read_coco_keypoints(path, K)
    assert str(err.value) == f'{path}: annotation id {ann["id"]} (image {image}): {problem}'
    checked = [f.what for f in check_coco_keypoints(path, None, NAMES) if f.level == 'error']
    assert checked == [problem]


@pytest.mark.parametrize('edit, message', [
    (_set(1, id='7'), r"annotation #1 \(image .*\): id must be an integer, got '7'"),
    (lambda c: c['annotations'][4].update(id=c['annotations'][0]['id']),
     r'annotation id \d+ used twice'),
])
def test_annotation_ids_are_checked(tmp_path, syrip_root, edit, message):
    path = _edited(tmp_path, syrip_root, edit)
    with pytest.raises(CocoFileError, match=rf'edited\.json: {message}'):
        read_coco_keypoints(path, K)


def test_unreadable_or_non_coco_files_are_named(tmp_path):
    broken = tmp_path / 'broken.json'
    broken.write_text('{"images": [')
    with pytest.raises(CocoFileError, match=r'broken\.json: cannot read annotation file'):
        read_coco_file(broken)
    images_only = tmp_path / 'images_only.json'
    images_only.write_text(json.dumps({'images': []}))
    with pytest.raises(CocoFileError, match=r'images_only\.json: not a COCO file'):
        read_coco_keypoints(images_only, K)
    assert read_coco_file(images_only, require_annotations=False)['annotations'] == []


def _nk_train_imports(path: Path) -> set[str]:
    """The ``nk_train`` top-level modules/packages a file imports (relative or absolute)."""
    inside = path.relative_to(PACKAGE.parent).with_suffix('').parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name.split('.') for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module.split('.') if node.module else []
            base = [*inside[:len(inside) - node.level], *module] if node.level else module
            targets = [base + [a.name] for a in node.names]
        else:
            continue
        found.update(t[1] for t in targets if t[0] == 'nk_train' and len(t) > 1)
    return found


def test_coco_keypoints_is_a_leaf_and_data_and_evaluation_no_loop():
    assert _nk_train_imports(PACKAGE / 'coco_keypoints.py') == set()
    data = set().union(*map(_nk_train_imports, (PACKAGE / 'data').glob('*.py')))
    evaluation = set().union(*map(_nk_train_imports, (PACKAGE / 'evaluation').glob('*.py')))
    assert 'coco_keypoints' in data and 'coco_keypoints' in evaluation
    assert not ('evaluation' in data and 'data' in evaluation), (data, evaluation)
