"""Reliability of the geometric cache on real SyRIP images with the stand-in teacher:
bitwise reproducibility (runs, 1 vs 2 workers), kill + resume, corruption detection, stale
cache refusal on the training side, and bad input reported per sample."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from mmengine.registry import init_default_scope

import nk_train  # noqa: F401
from nk_train.cache.normal_codec import decode_normal
from nk_train.cache.manifest import journal_shard_ids, load_manifest, shard_records
from nk_train.cache.reader import GeoCacheMismatchError, StaleCacheError
from nk_train.cache.shard_reader import ChunkChecksumError
from nk_train.data.geo_cache_transform import LoadGeoCacheMaps
from nk_train.data.seeded_views import SeededViewDataset
from nk_train.skeleton import DEFAULT_DATASET_INFO

from geo_cache_helpers import CONFIG, INDICES, geo_settings_dict, run_precompute, small_options

init_default_scope('mmpose')


def _files(split_dir: Path) -> dict[str, bytes]:
    """Every data file of a split cache (manifest excluded: it holds timestamps)."""
    return {str(p.relative_to(split_dir)): p.read_bytes() for p in sorted(split_dir.rglob('*'))
            if p.is_file() and p.name != 'manifest.json'}


def _records(split_dir: Path) -> dict:
    m = load_manifest(split_dir)
    return {j: (r['data_sha256'], r['files']) for j, r in shard_records(split_dir, m).items()}


def test_bitwise_reproducible_across_runs_and_worker_counts(reference_cache, shared_cluster,
                                                            precompute_cli, tmp_path):
    ref_root, ref_summary = reference_cache
    assert ref_summary['complete'] and ref_summary['num_shards'] == 3
    root = tmp_path / 'geo'
    rc, summary = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                                 '--indices', *INDICES)
    assert rc == 0 and summary['complete']
    assert summary['fingerprint'] == ref_summary['fingerprint']
    assert _records(root / 'labeled') == _records(ref_root / 'labeled')
    assert _files(root / 'labeled') == _files(ref_root / 'labeled')
    # A second run over a complete cache changes nothing.
    rc, again = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                               '--indices', *INDICES)
    assert rc == 0 and again['computed'] == [] and again['skipped'] == 3


def test_killed_worker_then_resume_gives_identical_shards(reference_cache, shared_cluster,
                                                          dying_worker_cluster, precompute_cli,
                                                          check_cli, tmp_path, capsys):
    ref_root, _ = reference_cache
    root = tmp_path / 'geo'
    rc, killed = run_precompute(precompute_cli, root, tmp_path, '--scheduler',
                                dying_worker_cluster, '--indices', *INDICES)
    assert rc == 1 and not killed['complete']
    assert '1' in killed['failed'] and 'KilledWorker' in killed['failed']['1'][0]
    assert not load_manifest(root / 'labeled')['complete']
    assert 1 not in journal_shard_ids(root / 'labeled')

    # The training side and the checker refuse the half-built cache.
    with pytest.raises(Exception, match='incomplete'):
        LoadGeoCacheMaps(cache=geo_settings_dict(root), split='labeled',
                         indices=[int(i) for i in INDICES])
    argv = ['--config', CONFIG, '--split', 'labeled', '--indices', *INDICES,
            '--cfg-options', *small_options(root)]
    assert check_cli.main(argv) == 1
    assert 'have no record: [1' in capsys.readouterr().out

    # Without --resume an incomplete cache is not touched.
    rc, _ = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                           '--indices', *INDICES)
    assert rc == 3
    rc, resumed = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                                 '--indices', *INDICES, '--resume')
    assert rc == 0 and resumed['complete']
    assert resumed['computed'] == sorted(int(j) for j in killed['failed'])
    assert resumed['skipped'] == 3 - len(killed['failed'])
    assert _records(root / 'labeled') == _records(ref_root / 'labeled')
    assert _files(root / 'labeled') == _files(ref_root / 'labeled')
    assert check_cli.main(['--full'] + argv) == 0


def _chunk_span(shard_file: Path, local_row: int, rows_per_shard: int) -> tuple[int, int]:
    """(offset, nbytes) of a row's chunk, from the shard index at the file's end (Zarr v3
    sharding spec: little-endian uint64 pairs, then a 4-byte CRC32C)."""
    data = shard_file.read_bytes()
    index = np.frombuffer(data[-(rows_per_shard * 16 + 4):-4], '<u8').reshape(-1, 2)
    return int(index[local_row, 0]), int(index[local_row, 1])


def test_flipped_byte_is_caught_with_its_row_named(reference_cache, check_cli, tmp_path,
                                                   capsys):
    ref_root, _ = reference_cache
    root = tmp_path / 'geo'
    shutil.copytree(ref_root, root)
    row, rows_per_shard = 5, 4  # shard 1, local row 1: instance 2, view k=1
    shard_file = root / 'labeled' / 'normal' / 'c' / '1' / '0' / '0' / '0'
    offset, nbytes = _chunk_span(shard_file, row - rows_per_shard, rows_per_shard)
    data = bytearray(shard_file.read_bytes())
    data[offset + nbytes // 2] ^= 0x10
    shard_file.write_bytes(bytes(data))

    argv = ['--config', CONFIG, '--split', 'labeled', '--indices', *INDICES,
            '--cfg-options', *small_options(root)]
    assert check_cli.main(argv) == 0  # quick mode does not read chunks
    capsys.readouterr()
    assert check_cli.main(['--full'] + argv) == 1
    out = capsys.readouterr().out
    sample = load_manifest(root / 'labeled')['sample_ids'][2]
    assert f'row 5 (sample {sample}, k 1): normal chunk unreadable' in out
    assert 'shard 1: file normal/c/1/0/0/0 differs from its recorded hash' in out
    assert 'row 4 ' not in out and 'row 6 ' not in out  # neighbours are fine

    loader = LoadGeoCacheMaps(cache=geo_settings_dict(root), split='labeled',
                              indices=[int(i) for i in INDICES])
    with pytest.raises(ChunkChecksumError, match='row 5'):
        loader.reader.read(sample, 1)


def _pipeline(geo: dict, indices: list[int], global_seed: int | None = None) -> list:
    return [
        dict(type='LoadImage'),
        dict(type='GetBBoxCenterScale', padding=geo['bbox_padding']),
        dict(type='SeededTopdownAffine', input_size=geo['input_size'], aug=geo['aug'],
             global_seed=geo['global_seed'] if global_seed is None else global_seed),
        dict(type='LoadGeoCacheMaps', cache=geo, split='labeled', indices=indices),
    ]


def _views_cfg(geo: dict, indices: list[int], pipeline: list) -> dict:
    return dict(
        type='CocoDataset', data_root=geo['data_root'], data_mode='topdown',
        ann_file=geo['splits']['labeled']['ann_file'],
        data_prefix=dict(img=geo['image_prefix']), indices=indices,
        metainfo=dict(from_file=str(DEFAULT_DATASET_INFO)), pipeline=pipeline)


def _views(geo: dict, indices: list[int], pipeline: list) -> SeededViewDataset:
    return SeededViewDataset(_views_cfg(geo, indices, pipeline),
                             num_seeds=geo['splits']['labeled']['num_seeds'])


def test_training_pipeline_reads_the_cache_and_refuses_stale_settings(reference_cache):
    ref_root, _ = reference_cache
    indices = [int(i) for i in INDICES]
    geo = geo_settings_dict(ref_root)
    views = _views(geo, indices, _pipeline(geo, indices))
    arrays = zarr.open_group(str(ref_root / 'labeled'), mode='r')
    assert len(views) == 12
    (mw, mh), (iw, ih) = geo['map_size'], geo['input_size']
    for i in range(len(views)):
        item = views[i]
        assert item['geo_depth'].shape == (1, mh, mw) and item['geo_normal'].shape == (3, mh, mw)
        np.testing.assert_array_equal(item['geo_depth'],
                                      arrays['depth'][i].astype(np.float32))
        np.testing.assert_array_equal(item['geo_normal'], decode_normal(arrays['normal'][i]))
        assert arrays['sample_id'][i] == item['nk_sample_id']
        assert item['img'].shape == (ih, iw, 3)

    # DataLoader workers get the transform pickled without open store handles.
    loader = views.dataset.pipeline.transforms[-1]
    assert loader.reader._arrays is not None
    clone = pickle.loads(pickle.dumps(loader))
    assert clone.reader._arrays is None
    np.testing.assert_array_equal(clone.reader.read(item['nk_sample_id'], 1).depth,
                                  loader.reader.read(item['nk_sample_id'], 1).depth)

    # One augmentation parameter changed in the training config: refused at build time.
    stale = geo_settings_dict(ref_root, 'geo_cache.aug.rotate_factor=20.0')
    with pytest.raises(StaleCacheError, match=r'aug\.rotate_factor: cache 30\.0, config 20\.0'):
        LoadGeoCacheMaps(cache=stale, split='labeled', indices=indices)
    # Another subset of the dataset: refused (the ordered sample ids differ).
    with pytest.raises(StaleCacheError, match='annotations.sample_ids_sha256'):
        LoadGeoCacheMaps(cache=geo, split='labeled', indices=indices[:-1])
    # A pipeline whose crops disagree with the cache is refused per sample.
    bad = _views(geo, indices, _pipeline(geo, indices, global_seed=geo['global_seed'] + 1))
    with pytest.raises(GeoCacheMismatchError, match='view 1'):
        bad[1]


def test_dataset_other_than_the_cache_fails_at_build(reference_cache, syrip_root, tmp_path):
    """Instances lost, another K, other image files: refused when the dataset is built."""
    ref_root, _ = reference_cache
    indices = [int(i) for i in INDICES]
    geo = geo_settings_dict(ref_root)
    sample_ids = load_manifest(ref_root / 'labeled')['sample_ids']
    with pytest.raises(GeoCacheMismatchError,
                       match=rf'1 cached ones are not in the dataset \[{sample_ids[-1]}\]'):
        _views(geo, indices[:-1], _pipeline(geo, indices))
    with pytest.raises(GeoCacheMismatchError, match='K=1 views per instance, the cache K=2'):
        SeededViewDataset(_views_cfg(geo, indices, _pipeline(geo, indices)), num_seeds=1)
    copies = tmp_path / 'syrip' / 'images'
    copies.mkdir(parents=True)
    for name in load_manifest(ref_root / 'labeled')['images']:
        shutil.copyfile(syrip_root / 'images' / name, copies / name)
    elsewhere = dict(_views_cfg(geo, indices, _pipeline(geo, indices)),
                     data_root=f'{tmp_path}/', ann_file=str(syrip_root / 'annotations' /
                                                            'train_labeled.json'))
    with pytest.raises(GeoCacheMismatchError, match='read other image files than the cache'):
        SeededViewDataset(elsewhere, num_seeds=2)


def test_bad_inputs_are_reported_per_sample(shared_cluster, precompute_cli, syrip_root,
                                            tmp_path):
    """A missing image, a truncated image and a degenerate box, in three different shards:
    each is named, those shards get no record and no files, the clean shard is kept."""
    coco = json.loads((syrip_root / 'annotations' / 'train_labeled.json').read_text())
    images, anns = coco['images'][:8], coco['annotations'][:8]
    assert [a['image_id'] for a in anns] == [i['id'] for i in images]
    data_root = tmp_path / 'data'
    (data_root / 'images').mkdir(parents=True)
    (data_root / 'annotations').mkdir()
    for img in images:
        (data_root / 'images' / img['file_name']).symlink_to(
            syrip_root / 'images' / img['file_name'])
    images[0]['file_name'] = 'missing.jpg'
    real = (syrip_root / 'images' / images[2]['file_name']).read_bytes()
    (data_root / 'images' / 'truncated.jpg').write_bytes(real[:len(real) // 2])
    images[2]['file_name'] = 'truncated.jpg'
    anns[5]['bbox'] = [anns[5]['bbox'][0], anns[5]['bbox'][1], 0.5, 0.5]
    coco.update(images=images, annotations=anns)
    (data_root / 'annotations' / 'bad.json').write_text(json.dumps(coco))

    root = tmp_path / 'geo'
    rc, summary = run_precompute(
        precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
        options=[f'geo_cache.data_root={data_root}/', 'geo_cache.image_prefix=images/',
                 'geo_cache.splits.labeled.ann_file=annotations/bad.json'])
    assert rc == 1 and not summary['complete']
    failed = summary['failed']
    assert sorted(failed) == ['0', '1', '2'] and summary['computed'] == [3]
    assert f'sample {anns[0]["id"]}' in failed['0'][0] and 'No such file' in failed['0'][0]
    assert f'sample {anns[2]["id"]}' in failed['1'][0] and 'truncated' in failed['1'][0]
    assert f'sample {anns[5]["id"]}' in failed['2'][0] and 'degenerate bbox' in failed['2'][0]
    assert all(len(errors) == 1 for errors in failed.values())  # only the bad samples
    split_dir = root / 'labeled'
    assert journal_shard_ids(split_dir) == [3]
    for j in range(3):
        assert not (split_dir / 'depth' / 'c' / str(j) / '0' / '0' / '0').exists()
    assert (split_dir / 'depth' / 'c' / '3' / '0' / '0' / '0').is_file()
