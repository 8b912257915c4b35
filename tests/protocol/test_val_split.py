"""tools/make_val_split.py: the committed split is what the tool writes (byte for byte, in any
process), its parts are disjoint whole images covering the file, and datasets, the metric and
the KPS statistics read exactly their part."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from script_loader import load_script

from nk_train.data.splits import SplitPart

SPLIT = 'stats/splits/syrip_labeled.json'
ANN = 'data/syrip/annotations/train_labeled.json'


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/make_val_split.py')


def test_committed_split_is_what_the_tool_writes(tool, repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(repo_root)
    here, other = tmp_path / 'here.json', tmp_path / 'other.json'
    assert tool.main(['--out', str(here)]) == 0
    env = dict(os.environ, PYTHONHASHSEED='4242')
    subprocess.run([sys.executable, 'tools/make_val_split.py', '--out', str(other)],
                   cwd=repo_root, env=env, check=True, capture_output=True)
    committed = (repo_root / SPLIT).read_bytes()
    assert here.read_bytes() == other.read_bytes() == committed, \
        f'{SPLIT} is stale or not reproducible: rerun tools/make_val_split.py'


def test_another_seed_draws_other_images(tool, repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(repo_root)
    out = tmp_path / 'seed1.json'
    assert tool.main(['--seed', '1', '--out', str(out)]) == 0
    committed = json.loads((repo_root / SPLIT).read_text())['parts']['val']['image_ids']
    assert json.loads(out.read_text())['parts']['val']['image_ids'] != committed


def test_parts_are_disjoint_whole_images_covering_the_file(repo_root):
    split = json.loads((repo_root / SPLIT).read_text())
    coco = json.loads((repo_root / ANN).read_text())
    train, val = split['parts']['train'], split['parts']['val']
    assert not set(train['image_ids']) & set(val['image_ids'])
    assert not set(train['annotation_ids']) & set(val['annotation_ids'])
    assert set(train['image_ids']) | set(val['image_ids']) == \
        {a['image_id'] for a in coco['annotations']}
    assert set(train['annotation_ids']) | set(val['annotation_ids']) == \
        {a['id'] for a in coco['annotations']}
    for ann in coco['annotations']:  # an image's annotations never straddle the parts
        part = 'val' if ann['id'] in val['annotation_ids'] else 'train'
        assert ann['image_id'] in split['parts'][part]['image_ids'], ann['id']
    n = len(train['image_ids']) + len(val['image_ids'])
    assert len(val['image_ids']) == round(split['fraction'] * n)


def test_a_split_of_another_file_is_refused(repo_root):
    with pytest.raises(ValueError, match='was drawn from .*remake it'):
        SplitPart.from_config(dict(file=SPLIT, part='val'),
                              repo_root / 'data/syrip/annotations/val_test100.json')
    with pytest.raises(ValueError, match="no part 'test'"):
        SplitPart.from_config(dict(file=SPLIT, part='test'), repo_root / ANN)


def test_dataset_and_metric_read_their_part(repo_root, monkeypatch):
    from mmpose.utils import register_all_modules

    import nk_train  # noqa: F401  (registers CheckedCocoDataset, InfantCocoMetric)
    from nk_train.data.checked_coco import CheckedCocoDataset
    from nk_train.evaluation.coco_metric import InfantCocoMetric

    register_all_modules()
    monkeypatch.chdir(repo_root)
    split = json.loads((repo_root / SPLIT).read_text())['parts']
    info = dict(from_file='configs/_base_/datasets/infant_coco17.py')
    for part in ('train', 'val'):
        ds = CheckedCocoDataset(ann_file=ANN, data_root='', data_mode='topdown', metainfo=info,
                                split=dict(file=SPLIT, part=part), lazy_init=False)
        images = {int(ds.get_data_info(i)['img_id']) for i in range(len(ds))}
        assert images == set(split[part]['image_ids'])
        metric = InfantCocoMetric(ann_file=ANN, split=dict(file=SPLIT, part=part))
        assert set(metric.coco.getImgIds()) == set(split[part]['image_ids'])
