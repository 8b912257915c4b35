"""Fixtures for the cache tests: a small CPU cache of real SyRIP images built by the real CLI.

Sizes are cut so the whole ``tests/cache`` run stays within a few minutes on 2 cores: 6
labeled instances x K=2 views = 12 rows, 4 rows per shard (3 shards), a narrow stand-in
teacher at 128 x 96. One 2-worker dask cluster is shared by the tests that only need *a*
cluster; the reference cache is built by ``--workers 1`` (its own LocalCluster).
"""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from geo_cache_helpers import INDICES, load_script, run_precompute


@pytest.fixture(scope='session')
def precompute_cli():
    return load_script('precompute/geo_cache.py')


@pytest.fixture(scope='session')
def check_cli():
    return load_script('tools/check_cache.py')


@pytest.fixture(scope='session')
def shared_cluster():
    """A 2-worker process cluster; a worker death fails its tasks at once (no retry)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({'distributed.scheduler.allowed-failures': 0}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture(scope='session')
def dying_worker_cluster():
    """A 1-worker process cluster whose worker dies while writing shard ``faults.DYING_SHARD``
    (``faults.py``); a death fails its task at once."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({'distributed.scheduler.allowed-failures': 0}):
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR,
                               preload=[str(Path(__file__).with_name('faults.py'))])
    yield cluster.scheduler_address
    cluster.close()


@pytest.fixture(scope='session')
def reference_cache(tmp_path_factory, precompute_cli):
    """The cache built by one local worker process: (root, summary)."""
    tmp = tmp_path_factory.mktemp('ref')
    root = tmp / 'geo'
    rc, summary = run_precompute(precompute_cli, root, tmp, '--workers', '1',
                                 '--indices', *INDICES)
    assert rc == 0, summary
    return root, summary
