"""Precompute the geometric teacher's depth/normal maps of one split into the Zarr cache.

    python precompute/geo_cache.py --split {labeled,unlabeled,val} --config CONFIG
        [--workers N | --scheduler ADDRESS] [--resume] [--overwrite]
        [--indices I ... | --limit N] [--cfg-options key=value ...]

CONFIG is any config holding the ``geo_cache`` dict (the ``_base_/geo_cache*.py`` files or a
Stage1 config inheriting them). One dask task per shard (``rows_per_shard`` rows), each owning
and writing its shard whole; the teacher is loaded once per worker process. By default a
``LocalCluster(processes=True, threads_per_worker=1)`` with ``--workers`` processes runs here;
``--scheduler tcp://host:8786`` uses an existing cluster instead (start one worker per GPU,
``--nthreads 1``, with nk_train installed and the cache root and images on a shared file
system). Tasks are retried (``--retries``); each finished shard's record is journaled as it
arrives (``records/<j>.json``, a constant cost per shard) and folded into ``manifest.json``
when every shard has one, so ``--resume`` redoes only shards without a record. An existing
cache built from other settings or other image files is never touched without ``--overwrite``.

Exit codes: 0 complete, 1 some shards failed (each bad sample is listed), 2 usage/config
error or a failed write (disk full, read-only file system: what was recorded is kept, finish
with --resume), 3 refused to touch an existing cache (built from other settings, unfinished
without --resume, or being written by another run: one run per split at a time, see
``nk_train/cache/lock.py``).
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python precompute/geo_cache.py` from a checkout
    sys.path.insert(0, str(REPO_ROOT))

from mmengine.config import Config, DictAction  # noqa: E402

from nk_train.cache.fingerprint import cache_differences, diff_inputs, fingerprint  # noqa: E402
from nk_train.cache.layout import create_split_arrays, layout_dict, shard_ranges  # noqa: E402
from nk_train.cache.lock import CacheLock, CacheLockedError  # noqa: E402
from nk_train.cache.manifest import (ManifestError, fold_records, journal_images,  # noqa: E402
                                     leftovers, load_manifest, manifest_path, missing_shards,
                                     new_manifest, read_journal, remove_journal,
                                     write_json_atomic, write_record)
from nk_train.cache.settings import GeoCacheSettings  # noqa: E402
from nk_train.cmgc.cache_inputs import split_fingerprint_inputs  # noqa: E402
from nk_train.cmgc.cache_shard import ShardTask, compute_shard  # noqa: E402


class Refused(RuntimeError):
    """An existing cache that this run must not modify."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--split', required=True, help='a key of geo_cache.splits')
    p.add_argument('--config', required=True, help='config file holding the geo_cache dict')
    where = p.add_mutually_exclusive_group()
    where.add_argument('--workers', type=int, default=2,
                       help='local worker processes (one thread each; default 2)')
    where.add_argument('--scheduler', help='address of an existing dask scheduler')
    p.add_argument('--resume', action='store_true', help='finish an incomplete cache')
    p.add_argument('--overwrite', action='store_true',
                   help='delete an existing cache of this split and rebuild it')
    subset = p.add_mutually_exclusive_group()
    subset.add_argument('--indices', type=int, nargs='+',
                        help='only these instance positions (the dataset\'s `indices`)')
    subset.add_argument('--limit', type=int, help='only the first N instances')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config keys, e.g. geo_cache.root=/scratch/geo')
    p.add_argument('--device', default='auto', help="teacher device: auto, cpu, cuda, cuda:1")
    p.add_argument('--torch-threads', type=int, default=1,
                   help='torch CPU threads per task (fixed, so results do not depend on it)')
    p.add_argument('--retries', type=int, default=2, help='retries of a task that raised')
    p.add_argument('--allowed-failures', type=int, default=2,
                   help='worker deaths tolerated per task (local cluster only)')
    p.add_argument('--summary-json', help='also write the run summary to this file')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p.parse_args(argv)


def prepare_cache(settings: GeoCacheSettings, split: str, indices, args) -> tuple:
    """Create or validate the split cache (its lock is held); return (split_dir, manifest,
    records so far, shards to do, instances)."""
    inputs, unverifiable, instances = split_fingerprint_inputs(settings, split, indices)
    if unverifiable:
        raise FileNotFoundError(f'teacher checkpoint(s) not found for {unverifiable}: '
                                f'{settings.teacher}')
    if len(instances) == 0:
        raise ValueError(f'split {split!r} ({settings.ann_path(split)}) has no instances')
    sp = settings.split(split)
    layout = layout_dict(len(instances), sp.num_seeds, settings.rows_per_shard,
                         settings.map_size, settings.depth_dtype, settings.normal_encoding,
                         settings.blosc)
    split_dir = settings.split_dir(split).resolve()

    def create() -> dict:
        if split_dir.exists() and any(split_dir.iterdir()):
            if not ((split_dir / 'zarr.json').is_file() or manifest_path(split_dir).is_file()):
                raise Refused(f'{split_dir} exists but is not a geometric cache (no zarr.json '
                              'or manifest.json); not deleting it')
            shutil.rmtree(split_dir)
        split_dir.parent.mkdir(parents=True, exist_ok=True)
        create_split_arrays(split_dir, layout['num_rows'], settings.map_size,
                            settings.depth_dtype, settings.normal_encoding,
                            settings.rows_per_shard, settings.blosc)
        manifest = new_manifest(split, fingerprint(inputs), inputs, layout,
                                instances.sample_ids, list(instances.excluded))
        write_json_atomic(manifest_path(split_dir), manifest)
        return manifest

    if not split_dir.exists() or not any(split_dir.iterdir()):
        return split_dir, create(), {}, list(range(layout['num_shards'])), instances
    try:
        manifest = load_manifest(split_dir)
        # A finished cache needs no records here: nothing is left to compute.
        records = {} if manifest['complete'] else read_journal(split_dir)
        recorded_images = None if manifest['complete'] else journal_images(records)
        diffs = cache_differences(manifest, inputs, instances, recorded_images=recorded_images)
        diffs += diff_inputs(manifest['layout'], layout)
        problem = ('built from other settings or image files; changed:\n  ' + '\n  '.join(diffs)
                   if diffs else None)
    except ManifestError as err:
        manifest, records, problem = None, {}, str(err)
    if problem is not None and not args.overwrite:
        raise Refused(f'{split_dir}: {problem}\nNothing was changed; pass --overwrite to delete '
                      'it and rebuild.')
    if problem is not None or args.overwrite:
        return split_dir, create(), {}, list(range(layout['num_shards'])), instances
    missing = [] if manifest['complete'] else missing_shards(layout, records)
    if missing and not args.resume:
        raise Refused(f'{split_dir} is unfinished ({len(missing)} shards without a record); '
                      'pass --resume to finish it or --overwrite.')
    for path in leftovers(split_dir, manifest):  # this run holds the lock: nobody writes them
        if path.is_dir():
            remove_journal(split_dir)
        else:
            path.unlink()
    return split_dir, manifest, records, missing, instances


def make_tasks(settings: GeoCacheSettings, split: str, split_dir: Path, instances,
               shards: list[int], args) -> list[ShardTask]:
    k = settings.split(split).num_seeds
    ranges = shard_ranges(len(instances) * k, settings.rows_per_shard)
    teacher = settings.teacher_files_resolved()
    insts = instances.instances
    tasks = []
    for j in shards:
        r0, r1 = ranges[j]
        n0, n1 = r0 // k, (r1 - 1) // k + 1
        tasks.append(ShardTask(
            settings=settings, teacher=teacher, split_dir=str(split_dir), shard=j,
            rows=(r0, r1), num_seeds=k, first_instance=n0, instances=tuple(insts[n0:n1]),
            device=args.device, torch_threads=args.torch_threads))
    return tasks


def run_tasks(tasks: list[ShardTask], split_dir: Path, records: dict, args) -> dict:
    """Submit one task per shard and journal each record as it arrives (into ``records``
    too); stop at the first failed write. Return the summary."""
    import dask
    from distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    results = dict(computed=[], failed={}, io_error=None, startup_s=0.0, tasks_wall_s=0.0,
                   coordinator_cpu_s=0.0,
                   timings=dict(forward=0.0, total=0.0, wait_prepare=0.0, write=0.0,
                                load_teacher=0.0))
    if not tasks:
        return results
    t0 = time.perf_counter()
    with dask.config.set({'distributed.scheduler.allowed-failures': args.allowed_failures}):
        if args.scheduler:
            cluster, client = None, Client(args.scheduler)
        else:
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                   processes=True, dashboard_address=None,
                                   silence_logs=logging.ERROR)
            client = Client(cluster)
        try:
            # Import the task module everywhere first (seconds per process), so the progress
            # bar and the timings measure the work.
            client.run(importlib.import_module, 'nk_train.cmgc.cache_shard')
            results['startup_s'] = time.perf_counter() - t0
            t0, cpu0 = time.perf_counter(), time.process_time()
            futures = {client.submit(compute_shard, t, retries=args.retries, pure=False,
                                     key=f'geo-shard-{t.shard}-{time.time_ns()}'): t.shard
                       for t in tasks}
            bar = tqdm(total=len(tasks), unit='shard', disable=args.no_progress,
                       desc=f'geo cache {split_dir.name}')
            for fut in as_completed(futures):
                j = futures[fut]
                try:
                    out = fut.result()
                except Exception as err:  # noqa: BLE001 - a lost task is reported, not fatal
                    results['failed'][j] = [f'task failed: {type(err).__name__}: {err}']
                else:
                    if out['status'] == 'ok':
                        write_record(split_dir, j, out['record'])
                        records[str(j)] = out['record']
                        results['computed'].append(j)
                    else:
                        results['failed'][j] = out['errors']
                        if out['status'] == 'io_error':
                            results['io_error'] = out['errors'][0]
                            client.cancel(list(futures))
                            break
                    for key, value in out['timings'].items():
                        results['timings'][key] = results['timings'].get(key, 0.0) + value
                bar.update(1)
            bar.close()
            results['tasks_wall_s'] = time.perf_counter() - t0
            # this process: the scheduler of a local cluster, the client, the journal
            results['coordinator_cpu_s'] = time.process_time() - cpu0
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = '(geo_cache.root)'
    try:
        cfg = Config.fromfile(args.config)
        cfg.merge_from_dict(args.cfg_options)
        if 'geo_cache' not in cfg:
            raise KeyError(f'{args.config} has no geo_cache dict')
        settings = GeoCacheSettings.from_config(cfg['geo_cache'])
        settings.split(args.split)
        root = Path(settings.root).resolve()
        with CacheLock(root, args.split):
            return run(settings, args)
    except (Refused, CacheLockedError) as err:
        print(f'REFUSED: {err}', file=sys.stderr)
        return 3
    except (KeyError, ValueError, FileNotFoundError, IndexError, ManifestError) as err:
        print(f'ERROR: {err.args[0] if isinstance(err, KeyError) else err}', file=sys.stderr)
        return 2
    except OSError as err:  # disk full, read-only file system, no lock manager, ...
        print(f'ERROR: cannot write the cache under {root}: {err}. What was recorded is '
              'kept; fix this and run again with --resume.',
              file=sys.stderr)
        return 2


def run(settings: GeoCacheSettings, args) -> int:
    """Prepare, compute and finish the cache of ``args.split`` (the caller holds its lock)."""
    t0 = time.perf_counter()
    indices = args.indices if args.indices is not None else args.limit
    split_dir, manifest, records, todo, instances = prepare_cache(settings, args.split,
                                                                  indices, args)
    for sid, reason in instances.excluded:
        print(f'excluded by the dataset rules: annotation {sid}: {reason}')
    num_shards = manifest['layout']['num_shards']
    print(f'{split_dir}: {len(instances)} instances x K={manifest["layout"]["num_seeds"]} = '
          f'{manifest["layout"]["num_rows"]} rows, {num_shards} shards, '
          f'{num_shards - len(todo)} already recorded, {len(todo)} to compute')
    tasks = make_tasks(settings, args.split, split_dir, instances, todo, args)
    results = run_tasks(tasks, split_dir, records, args)
    complete = manifest['complete'] or not missing_shards(manifest['layout'], records)
    t_finish = time.perf_counter()
    if complete and not manifest['complete']:
        manifest = fold_records(split_dir, manifest, records)
        remove_journal(split_dir)
    t_finish = time.perf_counter() - t_finish
    timings = results['timings']
    summary = dict(
        split=args.split, cache=str(split_dir), fingerprint=manifest['fingerprint'],
        num_shards=num_shards, skipped=num_shards - len(todo),
        computed=sorted(results['computed']), failed={str(k): v for k, v in
                                                      sorted(results['failed'].items())},
        complete=complete, wall_s=time.perf_counter() - t0, startup_s=results['startup_s'],
        tasks_wall_s=results['tasks_wall_s'], coordinator_cpu_s=results['coordinator_cpu_s'],
        finish_s=t_finish, task_timings_s=timings,
        rows_computed=sum(t.rows[1] - t.rows[0] for t in tasks if t.shard in results['computed']))
    for j, errors in sorted(results['failed'].items()):
        print(f'shard {j} FAILED (nothing recorded):', file=sys.stderr)
        for line in errors:
            print(f'  {line}', file=sys.stderr)
    print(f'{"complete" if complete else "INCOMPLETE"}: {len(results["computed"])} shards '
          f'computed, {len(results["failed"])} failed, {summary["skipped"]} kept; '
          f'{summary["wall_s"]:.1f} s')
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=1))
    if results['io_error']:
        print(f'ERROR: {results["io_error"]}. The {len(records)} recorded shards are kept; fix '
              'this and run again with --resume.', file=sys.stderr)
        return 2
    return 0 if complete else 1


if __name__ == '__main__':
    sys.exit(main())
