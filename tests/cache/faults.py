"""Deaths at chosen moments, injected from the tests (production code has no fault switch).

* ``dying_worker_preload``: a dask worker preload (``LocalCluster(preload=[__file__])``) under
  which the worker writing shard ``DYING_SHARD`` exits abruptly with all but its last array
  written, as a worker killed mid-write would.
* ``python tests/cache/faults.py after-record|after-fold PRECOMPUTE_ARGS...``: the precompute
  coordinator exits abruptly after journaling its first record, or after writing the finished
  manifest (before removing the journal).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DYING_SHARD = 1
EXIT_CODE = 17


def _install_dying_writer() -> None:
    import nk_train.cmgc.cache_shard as task
    from nk_train.cache.layout import ROW_ARRAYS, open_split_arrays

    real = task.write_shard

    def write_shard(split_dir, shard, rows, stored, images):
        if shard != DYING_SHARD:
            return real(split_dir, shard, rows, stored, images)
        arrays = open_split_arrays(split_dir, mode='r+')
        for name in ROW_ARRAYS[:-1]:
            arrays[name][rows[0]:rows[1]] = stored[name]
        os._exit(EXIT_CODE)

    task.write_shard = write_shard


def dask_setup(worker) -> None:  # noqa: ARG001 - dask's preload hook
    _install_dying_writer()


def _dying_coordinator(moment: str, argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: script_loader
    from script_loader import load_script

    cli = load_script('precompute/geo_cache.py')
    name = dict(after_record='write_record', after_fold='fold_records')[moment.replace('-', '_')]
    real = getattr(cli, name)

    def then_die(*args, **kwargs):
        real(*args, **kwargs)
        os._exit(EXIT_CODE)

    setattr(cli, name, then_die)
    return cli.main(argv)


if __name__ == '__main__':
    sys.exit(_dying_coordinator(sys.argv[1], sys.argv[2:]))
