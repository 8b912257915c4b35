"""Faults that used to pass silently (issue 19), each refused with a message naming what is
wrong: two precompute runs on one cache, shard files that do not belong to their records,
a replaced image, a K = 1 split, a full or read-only file system."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import google_crc32c
import numpy as np
import pytest
from mmengine.registry import init_default_scope

import nk_train  # noqa: F401
from nk_train.cache.manifest import load_manifest
from nk_train.cache.reader import StaleCacheError
from nk_train.cache.shard_reader import ShardFileError
from nk_train.data.geo_cache_transform import LoadGeoCacheMaps

from geo_cache_helpers import (INDICES, REPO_ROOT, check_argv, finish, geo_settings_dict,
                               precompute_argv, run_precompute, start_precompute,
                               subprocess_env)

init_default_scope('mmpose')
ROWS_PER_SHARD = 4  # geo_cache_helpers.SMALL


def _loader(root: Path, *options: str, split: str = 'labeled', indices=INDICES):
    return LoadGeoCacheMaps(cache=geo_settings_dict(root, *options), split=split,
                            indices=[int(i) for i in indices])


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while not condition():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f'waited {timeout} s for {what}')
        time.sleep(0.05)


def test_second_precompute_run_is_refused_while_one_runs(precompute_cli, check_cli, tmp_path,
                                                         capsys):
    """A run and an --overwrite with another teacher seed at once: the second is refused."""
    root = tmp_path / 'geo'
    lock = root / '.labeled.lock'
    first = start_precompute(root, '--workers', '1', '--indices', *INDICES)
    try:
        _wait_for(lambda: lock.is_file() and f'"pid": {first.pid}' in lock.read_text(),
                  'the first run to take the lock')
        rc, _ = run_precompute(precompute_cli, root, tmp_path, '--workers', '1', '--overwrite',
                               '--indices', *INDICES, options=['geo_cache.teacher.seed=1'])
        assert first.poll() is None, 'the first run ended before the second one was tried'
    finally:
        rc_first, out = finish(first)
    assert rc == 3
    err = capsys.readouterr().err
    assert 'being written by another precompute run' in err and f'pid {first.pid}' in err
    assert rc_first == 0, out
    manifest = load_manifest(root / 'labeled')
    assert manifest['complete'] and manifest['fingerprint_inputs']['teacher']['arch']['seed'] == 0
    assert check_cli.main(['--full', *check_argv(root)]) == 0


def test_a_killed_run_leaves_no_lock_behind(shared_cluster, precompute_cli, tmp_path, capsys):
    root = tmp_path / 'geo'
    holder = subprocess.Popen(  # lock.py alone (stdlib only): starts in a blink
        [sys.executable, '-c', textwrap.dedent('''
            import importlib.util, sys, time
            spec = importlib.util.spec_from_file_location('lock', 'nk_train/cache/lock.py')
            lock = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(lock)
            lock.CacheLock(sys.argv[1], 'labeled').__enter__()
            print('locked', flush=True)
            time.sleep(600)'''), str(root)],
        cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        rc, _ = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                               '--indices', *INDICES)
        assert rc == 3 and f'pid {holder.pid}' in capsys.readouterr().err
    finally:
        holder.kill()  # SIGKILL: the kernel drops its flock
        holder.wait()
    rc, summary = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                                 '--indices', *INDICES)
    assert rc == 0 and summary['complete']


def _swap(a: Path, b: Path) -> None:
    data_a = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(data_a)


def _swap_rows_in_shard_file(path: Path, i: int, j: int) -> None:
    """Swap two rows' index entries of a shard file (each chunk stays intact, the index CRC
    is recomputed): only the tie of each row to its record can tell."""
    data = bytearray(path.read_bytes())
    n = ROWS_PER_SHARD * 16
    index = np.frombuffer(bytes(data[-n - 4:-4]), '<u8').reshape(-1, 2).copy()
    index[[i, j]] = index[[j, i]]
    data[-n - 4:-4] = index.tobytes()
    data[-4:] = np.uint32(google_crc32c.value(index.tobytes())).tobytes()
    path.write_bytes(bytes(data))


# (fault, files it damages, --files finds it, the read that fails and its message)
FAULTS = {
    'depth shard files 0 and 1 swapped': (
        lambda s: _swap(s / 'depth/c/0/0/0/0', s / 'depth/c/1/0/0/0'), True, 0,
        r'depth/c/0/0/0/0: \d+ bytes, but its shard record says \d+'),
    'sample_id files of shards 1 and 2 swapped (same size)': (
        lambda s: _swap(s / 'sample_id/c/1', s / 'sample_id/c/2'), False, 5,
        r'sample_id/c/1: intact, but not the file its shard record names'),
    'two rows swapped inside depth shard 2': (
        lambda s: _swap_rows_in_shard_file(s / 'depth/c/2/0/0/0', 0, 1), False, 8,
        r'depth/c/2/0/0/0 row 8: intact, but not the chunk its shard record names'),
    'normal shard 1 truncated': (
        lambda s: (s / 'normal/c/1/0/0/0').write_bytes(
            (s / 'normal/c/1/0/0/0').read_bytes()[:1000]), True, 4,
        r'normal/c/1/0/0/0: 1000 bytes, but its shard record says'),
    'normal shard 0 emptied (0 bytes)': (
        lambda s: (s / 'normal/c/0/0/0/0').write_bytes(b''), True, 1,
        r'normal/c/0/0/0/0: 0 bytes, but its shard record says'),
}


@pytest.mark.parametrize('fault', list(FAULTS))
def test_shard_files_are_tied_to_their_records(reference_cache, check_cli, tmp_path, capsys,
                                               fault):
    damage, files_finds, row, message = FAULTS[fault]
    ref_root, _ = reference_cache
    root = tmp_path / 'geo'
    shutil.copytree(ref_root, root)
    damage(root / 'labeled')

    assert check_cli.main(['--files', *check_argv(root)]) == (1 if files_finds else 0)
    assert check_cli.main(['--full', *check_argv(root)]) == 1
    report = capsys.readouterr().out
    assert 'differs from its recorded hash' in report
    loader = _loader(root)  # start-up reads no shard file
    sample = load_manifest(root / 'labeled')['sample_ids'][row // 2]
    with pytest.raises(ShardFileError, match=message):
        loader.reader.read(sample, row % 2)


def test_a_replaced_image_is_refused_everywhere(shared_cluster, precompute_cli, check_cli,
                                                syrip_root, tmp_path, capsys):
    coco = json.loads((syrip_root / 'annotations' / 'train_labeled.json').read_text())
    names = [img['file_name'] for img in coco['images'][:len(INDICES) + 1]]
    data_root = tmp_path / 'data'  # data/syrip/{annotations,images} as the configs expect
    images = data_root / 'syrip' / 'images'
    images.mkdir(parents=True)
    (data_root / 'syrip' / 'annotations').symlink_to(syrip_root / 'annotations')
    for name in names[:-1]:
        (images / name).symlink_to(syrip_root / 'images' / name)
    replaced = images / names[2]
    replaced.unlink()
    shutil.copyfile(syrip_root / 'images' / names[2], replaced)  # a file of its own
    options = [f'geo_cache.data_root={data_root}/']
    root = tmp_path / 'geo'
    rc, built = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                               '--indices', *INDICES, options=options)
    assert rc == 0 and built['complete']

    os.utime(replaced)  # a new mtime but the same bytes: re-hashed, still the same image
    assert check_cli.main(check_argv(root, options=options)) == 0
    shutil.copyfile(syrip_root / 'images' / names[-1], replaced)  # other bytes, same name
    capsys.readouterr()
    said = f'image {names[2]}: sha256'

    rc, _ = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                           '--indices', *INDICES, options=options)
    assert rc == 3 and said in capsys.readouterr().err
    assert check_cli.main(check_argv(root, options=options)) == 1
    assert said in capsys.readouterr().out
    with pytest.raises(StaleCacheError, match=said):
        _loader(root, *options)
    rc, rebuilt = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                                 '--indices', *INDICES, '--overwrite', options=options)
    assert rc == 0 and rebuilt['fingerprint'] != built['fingerprint']


def test_k1_split_with_a_one_row_shard(shared_cluster, precompute_cli, check_cli, tmp_path):
    """test100 has K = 1: every seed_k is 0 (the fill value), and 5 rows make a last shard of
    one row of view 0; zarr skips such chunks unless told to write them."""
    indices = ['0', '1', '2', '3', '4']
    root = tmp_path / 'geo'
    rc, summary = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                                 '--indices', *indices, split='test100')
    assert rc == 0 and summary['complete'] and summary['num_shards'] == 2, summary
    assert check_cli.main(['--full', *check_argv(root, split='test100', indices=indices)]) == 0
    loader = _loader(root, split='test100', indices=indices)
    for sid in load_manifest(root / 'test100')['sample_ids']:
        assert loader.reader.read(sid, 0).depth.shape[0] == 1


def _unshare_available() -> bool:
    probe = subprocess.run(['unshare', '-rm', 'true'], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _unshare_available(),
                    reason='needs unshare -rm (user + mount namespaces) to mount a small tmpfs')
def test_disk_full_and_read_only_root_exit_2_and_resume(reference_cache, tmp_path):
    """In a mount namespace of its own: a tmpfs too small for the cache, then enlarged
    (--resume finishes it byte for byte), and a read-only one."""
    ref_root, _ = reference_cache
    ref_split = ref_root / 'labeled'
    pages = sum(-(-p.stat().st_size // 4096) for p in ref_split.rglob('*') if p.is_file())
    mnt, ro, out = tmp_path / 'small', tmp_path / 'ro', tmp_path / 'out'
    for d in (mnt, ro, out):
        d.mkdir()

    def precompute(root: Path, *args: str) -> str:
        return shlex.join([sys.executable, 'precompute/geo_cache.py', *precompute_argv(
            root, '--workers', '1', '--indices', *INDICES, *args)])

    script = textwrap.dedent(f'''
        mount -t tmpfs -o size={pages // 2 * 4096} tmpfs {mnt}
        {precompute(mnt / 'geo')} > {out}/full.log 2>&1
        echo $? > {out}/full.rc
        find {mnt} -name '*.tmp' -o -name '*.partial' > {out}/temporaries.txt
        mount -o remount,size=64m {mnt}
        {precompute(mnt / 'geo', '--resume')} > {out}/resume.log 2>&1
        echo $? > {out}/resume.rc
        cp -a {mnt}/geo {out}/geo
        mount -t tmpfs tmpfs {ro} && mount -o remount,ro {ro}
        {precompute(ro / 'geo')} > {out}/ro.log 2>&1
        echo $? > {out}/ro.rc
    ''')
    proc = subprocess.run(['unshare', '-rm', 'sh', '-c', script], cwd=REPO_ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr

    def result(name: str) -> tuple[int, str]:
        return int((out / f'{name}.rc').read_text()), (out / f'{name}.log').read_text()

    rc, log = result('full')
    assert rc == 2 and 'No space left on device' in log and 'run again with --resume' in log, log
    assert 'Traceback' not in log
    assert (out / 'temporaries.txt').read_text() == ''
    rc, log = result('resume')
    assert rc == 0 and 'complete' in log, log
    files = {str(p.relative_to(ref_split)): p.read_bytes() for p in sorted(ref_split.rglob('*'))
             if p.is_file() and p.name != 'manifest.json'}
    got = out / 'geo' / 'labeled'
    assert {str(p.relative_to(got)): p.read_bytes() for p in sorted(got.rglob('*'))
            if p.is_file() and p.name != 'manifest.json'} == files
    rc, log = result('ro')
    assert rc == 2 and 'Read-only file system' in log and 'Traceback' not in log, log


def test_a_cache_with_no_valid_pixel_is_refused(shared_cluster, precompute_cli, check_cli,
                                                tmp_path, capsys):
    """A foreground rule that finds nothing (depth >= 10 never holds for relative depth)
    would make every CMGC term 0 without a sign: the check names it."""
    root = tmp_path / 'geo'
    options = ['geo_cache.teacher.foreground.below=10.0']
    indices = ['0', '1', '2', '3']
    rc, summary = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                                 '--indices', *indices, options=options, split='test100')
    assert rc == 0 and summary['complete'], summary
    capsys.readouterr()
    assert check_cli.main(check_argv(root, options=options, split='test100',
                                     indices=indices)) != 0
    assert 'no map pixel of any shard is valid' in capsys.readouterr().out
