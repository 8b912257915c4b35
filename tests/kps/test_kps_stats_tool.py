"""tools/compute_kps_stats.py: reproducible bytes, the committed file, values recomputed
independently with numpy from the raw annotation file, and clear errors on bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from script_loader import load_script

from nk_train.kps import load_skeleton_stats
from nk_train.skeleton import load_skeleton

TRAIN = 'data/syrip/annotations/train_labeled.json'


@pytest.fixture(scope='module')
def tool():
    return load_script('tools/compute_kps_stats.py')


@pytest.fixture(scope='module')
def regenerated(tool, repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp('kps') / 'stats.json'
    cwd = os.getcwd()
    os.chdir(repo_root)  # the default input and recorded paths are repo-relative
    try:
        assert tool.main(['--out', str(out)]) == 0
    finally:
        os.chdir(cwd)
    return out.read_bytes()


def test_committed_stats_equal_regenerated(repo_root, regenerated):
    committed = (repo_root / 'stats/skeleton_stats.json').read_bytes()
    assert committed == regenerated, 'stats/skeleton_stats.json is stale: rerun the tool'


def test_another_process_writes_the_same_bytes(repo_root, regenerated, tmp_path):
    out = tmp_path / 'again.json'
    env = dict(os.environ, PYTHONHASHSEED='12345',
               PYTHONPATH=os.pathsep.join([str(repo_root), os.environ.get('PYTHONPATH', '')]))
    subprocess.run([sys.executable, 'tools/compute_kps_stats.py', TRAIN, '--out', str(out)],
                   cwd=repo_root, env=env, check=True, capture_output=True)
    assert out.read_bytes() == regenerated


def test_config_input_reads_the_same_annotation(tool, repo_root, regenerated, tmp_path,
                                                monkeypatch):
    monkeypatch.chdir(repo_root)
    out = tmp_path / 'from_config.json'
    cfg = 'configs/nk_sapiens/infant/stage0_supervised.py'
    assert tool.main([cfg, '--out', str(out)]) == 0
    doc, ref = json.loads(out.read_bytes()), json.loads(regenerated)
    assert doc['source']['config'] == cfg and ref['source']['config'] is None
    doc['source']['config'] = None
    assert doc == ref


def _raw(repo_root):
    """Keypoints of the labeled file's train part (the tool's default input)."""
    coco = json.loads((repo_root / TRAIN).read_text())
    split = json.loads((repo_root / 'stats/splits/syrip_labeled.json').read_text())
    train = set(split['parts']['train']['annotation_ids'])
    k = np.array([a['keypoints'] for a in coco['annotations'] if a['id'] in train],
                 dtype=np.float64)
    k = k.reshape(len(k), -1, 3)
    return k[..., :2], k[..., 2]


def test_visibility_counts_from_raw_file(repo_root, regenerated):
    doc = json.loads(regenerated)
    xy, v = _raw(repo_root)
    assert doc['visibility']['keypoints_v0'] == int((v == 0).sum()) > 0
    assert doc['visibility']['keypoints_v1'] == int((v == 1).sum())
    assert doc['visibility']['instances_used'] == len(v)
    for limb in doc['limbs']:
        i, j = limb['edge']
        both = (v[:, i] > 0) & (v[:, j] > 0)
        assert (limb['count'], limb['missing']) == (int(both.sum()), int((~both).sum()))


def test_limb_statistics_recomputed_with_numpy(repo_root, regenerated):
    """The template is a fixed point of the documented definition, and the per-limb
    statistics follow from it."""
    doc = json.loads(regenerated)
    xy, v = _raw(repo_root)
    edges = np.array(doc['skeleton']['edges'])
    t = np.array([limb['template'] for limb in doc['limbs']])
    length = np.linalg.norm(xy[:, edges[:, 0]] - xy[:, edges[:, 1]], axis=-1)
    measured = (v[:, edges[:, 0]] > 0) & (v[:, edges[:, 1]] > 0)
    length[~measured] = np.nan
    scale = np.nanmedian(length / t, axis=1)
    norm = length / scale[:, None]
    t_again = np.nanmedian(norm, axis=0)
    t_again /= np.exp(np.log(t_again).mean())
    np.testing.assert_allclose(t_again, t, atol=2e-6)
    for e, limb in enumerate(doc['limbs']):
        x = norm[:, e][measured[:, e]]
        assert limb['mean'] == pytest.approx(x.mean(), abs=2e-6)
        assert limb['std'] == pytest.approx(x.std(ddof=1), abs=2e-6)
        assert limb['quantiles']['0.975'] == pytest.approx(np.quantile(x, 0.975), abs=2e-6)


def test_joint_angles_recomputed_with_numpy(repo_root, regenerated):
    doc = json.loads(regenerated)
    xy, v = _raw(repo_root)
    for joint in doc['joint_angles']:
        a, c, b = joint['triple']
        ok = (v[:, a] > 0) & (v[:, c] > 0) & (v[:, b] > 0)
        u, w = xy[ok, a] - xy[ok, c], xy[ok, b] - xy[ok, c]
        nu, nw = np.linalg.norm(u, axis=1), np.linalg.norm(w, axis=1)
        keep = (nu > 1e-3) & (nw > 1e-3)
        cos = (u * w).sum(1)[keep] / (nu * nw)[keep]
        deg = np.degrees(np.arccos(np.clip(cos, -1, 1)))
        assert joint['count'] == len(deg) and joint['degenerate'] == int((~keep).sum())
        for q in ('0.025', '0.5', '0.975'):
            assert joint['quantiles'][q] == pytest.approx(np.quantile(deg, float(q)), abs=1e-3)


def test_stats_for_another_skeleton_are_refused(repo_root, tmp_path):
    doc = json.loads((repo_root / 'stats/skeleton_stats.json').read_text())
    doc['skeleton']['edges'][0] = doc['skeleton']['edges'][0][::-1]
    path = tmp_path / 'other.json'
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match='other.json: keypoints/edges differ'):
        load_skeleton_stats(path, load_skeleton())
