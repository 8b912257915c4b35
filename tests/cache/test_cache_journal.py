"""The record journal of precompute and the record files of a finished cache (issue 18): a
coordinator killed right after journaling a record, or between writing the finished manifest
and removing the journal, resumes to the reference cache byte for byte; leftovers of killed
writes are reported by the check and removed by the next run; opening a cache and the quick
check use only the hashed record tables (``records.jsonl`` is read by ``--full`` alone); a
cache of the previous format is refused with a clear message."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from mmengine.registry import init_default_scope

import nk_train  # noqa: F401
from nk_train.cache.layout import FORMAT_VERSION
from nk_train.cache.manifest import (ManifestError, journal_shard_ids, load_manifest,
                                     shard_records)
from nk_train.data.geo_cache_transform import LoadGeoCacheMaps

from geo_cache_helpers import (INDICES, check_argv, finish, geo_settings_dict, run_precompute,
                               start_precompute)

init_default_scope('mmpose')


def _files(split_dir: Path) -> dict[str, bytes]:
    """Every data file of a split cache (manifest excluded: it holds timestamps and mtimes)."""
    return {str(p.relative_to(split_dir)): p.read_bytes() for p in sorted(split_dir.rglob('*'))
            if p.is_file() and p.name != 'manifest.json'}


def test_killed_coordinator_resumes_to_the_same_cache(reference_cache, shared_cluster,
                                                      precompute_cli, check_cli, tmp_path,
                                                      capsys):
    ref_root, ref_summary = reference_cache
    root = tmp_path / 'geo'
    split_dir = root / 'labeled'

    rc, out = finish(start_precompute(root, '--scheduler', shared_cluster, '--indices', *INDICES,
                                      die='after-record'))
    assert rc == 17, out
    assert not load_manifest(split_dir)['complete']
    assert len(journal_shard_ids(split_dir)) == 1
    # A temporary as a process killed in the middle of a write leaves it.
    (split_dir / '.manifest.json.99999.tmp').write_text('{"format": ')
    (split_dir / 'records.jsonl').write_text('{}\n')  # as a fold killed before its manifest
    assert check_cli.main(check_argv(root)) == 1
    report = capsys.readouterr().out
    assert '2 of 3 shards have no record' in report
    assert 'leftover of an interrupted write: .manifest.json.99999.tmp' in report
    assert 'leftover of an interrupted write: records.jsonl' in report

    rc, out = finish(start_precompute(root, '--scheduler', shared_cluster, '--indices', *INDICES,
                                      '--resume', die='after-fold'))
    assert rc == 17, out
    assert load_manifest(split_dir)['complete']
    assert (split_dir / 'records').is_dir() and not list(split_dir.rglob('*.tmp'))
    assert check_cli.main(check_argv(root)) == 1
    assert 'leftover of an interrupted write: records' in capsys.readouterr().out

    rc, summary = run_precompute(precompute_cli, root, tmp_path, '--scheduler', shared_cluster,
                                 '--indices', *INDICES)
    assert rc == 0 and summary['computed'] == [] and summary['complete']
    assert not (split_dir / 'records').exists()
    assert summary['fingerprint'] == ref_summary['fingerprint']
    assert _files(split_dir) == _files(ref_root / 'labeled')
    manifest, ref = load_manifest(split_dir), load_manifest(ref_root / 'labeled')
    assert shard_records(split_dir, manifest) == shard_records(ref_root / 'labeled', ref)
    assert manifest['record_files'] == ref['record_files']
    assert [v[0] for v in manifest['images'].values()] == [v[0] for v in ref['images'].values()]
    assert check_cli.main(['--full', *check_argv(root)]) == 0


def _copy(ref_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / 'geo'
    shutil.copytree(ref_root, root)
    return root


def _loader(root: Path) -> LoadGeoCacheMaps:
    return LoadGeoCacheMaps(cache=geo_settings_dict(root), split='labeled',
                            indices=[int(i) for i in INDICES])


def test_open_and_quick_check_read_only_the_record_tables(reference_cache, check_cli,
                                                          tmp_path, capsys):
    """Same-size garbage in records.jsonl: the reader opens and reads, the quick check passes
    (neither parses a per-shard record), --full names the file."""
    root = _copy(reference_cache[0], tmp_path)
    path = root / 'labeled' / 'records.jsonl'
    path.write_bytes(b'x' * path.stat().st_size)
    loader = _loader(root)
    loader.reader.read(load_manifest(root / 'labeled')['sample_ids'][0], 0)
    assert check_cli.main(check_argv(root)) == 0
    capsys.readouterr()
    assert check_cli.main(['--full', *check_argv(root)]) == 1
    assert 'records.jsonl is not the file the manifest recorded' in capsys.readouterr().out


def test_full_check_ties_the_records_to_the_tables(reference_cache, check_cli, tmp_path,
                                                   capsys):
    """A records.jsonl edited with its manifest entry (hash and size updated) no longer
    agrees with the record tables: --full says so."""
    root = _copy(reference_cache[0], tmp_path)
    split_dir = root / 'labeled'
    path = split_dir / 'records.jsonl'
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[1]['valid_fraction'] = 0.5 if lines[1]['valid_fraction'] != 0.5 else 0.25
    data = ''.join(json.dumps(rec, sort_keys=True) + '\n' for rec in lines).encode()
    path.write_bytes(data)
    manifest = json.loads((split_dir / 'manifest.json').read_text())
    manifest['record_files']['records'].update(size=len(data),
                                               sha256=hashlib.sha256(data).hexdigest())
    (split_dir / 'manifest.json').write_text(json.dumps(manifest))
    assert check_cli.main(check_argv(root)) == 0  # the quick check does not read records
    capsys.readouterr()
    assert check_cli.main(['--full', *check_argv(root)]) == 1
    assert 'records.jsonl disagrees with record_table_shards.npy' in capsys.readouterr().out


@pytest.mark.parametrize('damage', ['flipped byte', 'truncated', 'unlisted'])
def test_damaged_record_table_is_refused(reference_cache, check_cli, tmp_path, capsys, damage):
    root = _copy(reference_cache[0], tmp_path)
    split_dir = root / 'labeled'
    path = split_dir / 'record_table_rows.npy'
    data = bytearray(path.read_bytes())
    if damage == 'flipped byte':
        data[-1] ^= 1  # the last row's valid-mask CRC32C
        path.write_bytes(bytes(data))
        message = 'record_table_rows.npy is not the file the manifest recorded'
    elif damage == 'truncated':
        path.write_bytes(bytes(data[:-4]))
        message = 'record_table_rows.npy'
    else:
        manifest = json.loads((split_dir / 'manifest.json').read_text())
        del manifest['record_files']['row_table']
        (split_dir / 'manifest.json').write_text(json.dumps(manifest))
        message = 'names no row_table file'
    with pytest.raises(ManifestError, match=message):
        _loader(root)
    assert check_cli.main(check_argv(root)) == 1
    assert message in capsys.readouterr().out


def test_cache_of_the_previous_format_is_refused(reference_cache, precompute_cli, check_cli,
                                                 tmp_path, capsys):
    root = _copy(reference_cache[0], tmp_path)
    path = root / 'labeled' / 'manifest.json'
    manifest = json.loads(path.read_text())
    old = FORMAT_VERSION - 1  # its finished manifest held every record
    manifest['format_version'] = old
    path.write_text(json.dumps(manifest))
    expected = rf'v{old}, expected .* v{FORMAT_VERSION}; rebuild with --overwrite'

    with pytest.raises(ManifestError, match=expected):
        _loader(root)
    assert check_cli.main(check_argv(root)) == 1
    assert f'v{old}, expected' in capsys.readouterr().out
    rc, _ = run_precompute(precompute_cli, root, tmp_path, '--workers', '1',
                           '--indices', *INDICES, '--resume')
    assert rc == 3
    assert 'rebuild with --overwrite' in capsys.readouterr().err
    assert json.loads(path.read_text())['format_version'] == old  # untouched
