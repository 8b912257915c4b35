"""The record journal of precompute (issue 18): a coordinator killed right after journaling a
record, or between writing the finished manifest and removing the journal, resumes to the
reference cache byte for byte; leftovers of killed writes are reported by the check and
removed by the next run; a cache of the previous format is refused with a clear message."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mmengine.registry import init_default_scope

import nk_train  # noqa: F401
from nk_train.cache.layout import FORMAT_VERSION
from nk_train.cache.manifest import ManifestError, journal_shard_ids, load_manifest
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
    assert check_cli.main(check_argv(root)) == 1
    report = capsys.readouterr().out
    assert '2 of 3 shards have no record' in report
    assert 'leftover of an interrupted write: .manifest.json.99999.tmp' in report

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
    assert manifest['shards'] == ref['shards']
    assert [v[0] for v in manifest['images'].values()] == [v[0] for v in ref['images'].values()]
    assert check_cli.main(['--full', *check_argv(root)]) == 0


def test_cache_of_the_previous_format_is_refused(reference_cache, precompute_cli, check_cli,
                                                 tmp_path, capsys):
    ref_root, _ = reference_cache
    root = tmp_path / 'geo'
    shutil.copytree(ref_root, root)
    path = root / 'labeled' / 'manifest.json'
    manifest = json.loads(path.read_text())
    manifest['format_version'] = 1
    path.write_text(json.dumps(manifest))
    expected = rf'v1, expected .* v{FORMAT_VERSION}; rebuild with --overwrite'

    with pytest.raises(ManifestError, match=expected):
        LoadGeoCacheMaps(cache=geo_settings_dict(root), split='labeled',
                         indices=[int(i) for i in INDICES])
    assert check_cli.main(check_argv(root)) == 1
    assert 'v1, expected' in capsys.readouterr().out
    rc, _ = run_precompute(precompute_cli, root, tmp_path, '--workers', '1',
                           '--indices', *INDICES, '--resume')
    assert rc == 3
    assert 'rebuild with --overwrite' in capsys.readouterr().err
    assert json.loads(path.read_text())['format_version'] == 1  # untouched
