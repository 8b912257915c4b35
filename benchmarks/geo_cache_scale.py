"""The geometric cache at scale (CPU, this machine): precompute throughput and coordinator
cost, opening, worker start-up, reads and checks, from 3k to 120k rows.

    python benchmarks/geo_cache_scale.py [--rows 3000 24000 120000] [--full-check-max-rows N]
        [--out benchmarks/results/geo_cache_scale.json] [--update]

Each size replicates the 300 real unlabeled SyRIP boxes under new annotation and image ids
(same image files) into a temporary annotation file outside the repo, K = 6 views, the CPU
config (``_base_/geo_cache_cpu.py``: stand-in teacher, 16 rows per shard), 2 local dask
workers. Measured per size:

1. precompute rows/s over the task phase, and the coordinating process's CPU (its local
   dask scheduler, the client, the record journal): share of a core and ms per shard, plus
   the one-off fold of the records into the manifest at the end;
2. opening the cache as ``LoadGeoCacheMaps`` does (manifest, fingerprint, image files,
   record table), the reader's pickled size and unpickling (what each DataLoader worker
   gets), a worker's first read (opening the arrays' metadata), and read latency in a worker
   for rows of a shard it touches for the first time vs one it already verified;
3. ``check_split_cache`` quick, ``--files`` (and ``--full`` up to ``--full-check-max-rows``)
   in-process,
   after the annotation file is parsed (``annotations_s``: linear in instances, the same
   parse the dataset does), and ``tools/check_cache.py`` quick as a command (Python start-up
   and imports included).

Then the arithmetic for 100k instances x K = 4 at the full-size config on GPU workers, from
the GPU teacher time in ``results/sapiens_gpu_step.json`` and the bytes per row in
``results/geo_cache.json`` (what is assumed is written next to each figure).
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from results_io import write_results  # noqa: E402  (benchmarks/, on sys.path)

CONFIG = 'configs/nk_sapiens/infant/_base_/geo_cache_cpu.py'
UNLABELED = REPO_ROOT / 'data/syrip/annotations/train_unlabeled.json'
K = 6
WORKERS = 2
READS = 2000


def replicate_annotations(num_instances: int, out: Path) -> Path:
    """The 300 unlabeled boxes repeated under new ids until ``num_instances`` boxes."""
    coco = json.loads(UNLABELED.read_text())
    images = {img['id']: img for img in coco['images']}
    anns = coco['annotations']
    id_step = 10 ** (len(str(max(max(images), max(a['id'] for a in anns)))) + 1)
    new_images, new_anns = [], []
    for i in range(num_instances):
        copy, ann = divmod(i, len(anns))
        a = dict(anns[ann], id=anns[ann]['id'] + copy * id_step,
                 image_id=anns[ann]['image_id'] + copy * id_step)
        new_anns.append(a)
        new_images.append(dict(images[anns[ann]['image_id']], id=a['image_id']))
    out.write_text(json.dumps(dict(coco, images=new_images, annotations=new_anns)))
    return out


def options(root: Path, ann: Path) -> list[str]:
    return [f'geo_cache.root={root}', f'geo_cache.splits.unlabeled.ann_file={ann}',
            f'geo_cache.splits.unlabeled.num_seeds={K}']


def settings_for(opts: list[str]):
    from mmengine.config import Config, DictAction

    from nk_train.cache.settings import GeoCacheSettings

    cfg = Config.fromfile(str(REPO_ROOT / CONFIG))
    cfg.merge_from_dict({k: DictAction._parse_iterable(v) for k, v in
                         (o.split('=', 1) for o in opts)})
    return GeoCacheSettings.from_config(cfg.geo_cache)


def precompute(opts: list[str], tmp: Path) -> dict:
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location('geo_cache_cli', REPO_ROOT / 'precompute' / 'geo_cache.py')
    cli = module_from_spec(spec)
    spec.loader.exec_module(cli)
    summary = tmp / f'summary_{time.time_ns()}.json'
    load0 = os.getloadavg()
    rc = cli.main(['--split', 'unlabeled', '--config', CONFIG, '--workers', str(WORKERS),
                   '--no-progress', '--summary-json', str(summary), '--cfg-options', *opts])
    if rc != 0:
        raise RuntimeError(f'precompute failed (exit {rc})')
    s = json.loads(summary.read_text())
    return dict(rows=s['rows_computed'], shards=s['num_shards'],
                tasks_wall_s=s['tasks_wall_s'], startup_s=s['startup_s'],
                rows_per_s=s['rows_computed'] / s['tasks_wall_s'],
                coordinator_cpu_s=s['coordinator_cpu_s'],
                coordinator_cpu_share=s['coordinator_cpu_s'] / s['tasks_wall_s'],
                coordinator_cpu_ms_per_shard=1e3 * s['coordinator_cpu_s'] / s['num_shards'],
                finish_s=s['finish_s'], wall_s=s['wall_s'],
                load_average_before=load0, load_average_after=os.getloadavg())


class _TimedReads(torch.utils.data.Dataset):
    """Times ``reader.read`` inside a DataLoader worker; says if the row's shard is new."""

    def __init__(self, reader, items: list[tuple[int, int, int]]) -> None:
        self.reader, self.items = reader, items
        self.seen: set[int] = set()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[float, bool]:
        sid, k, row = self.items[i]
        shard = row // self.reader.rows_per_shard
        t0 = time.perf_counter()
        self.reader.read(sid, k)
        dt = time.perf_counter() - t0
        new = shard not in self.seen
        self.seen.add(shard)
        return dt, new


def open_and_read(settings) -> dict:
    from nk_train.cmgc.cache_inputs import split_fingerprint_inputs
    from nk_train.cache.reader import GeoCacheReader

    parse, opens, reader = [], [], None
    for _ in range(3):
        t0 = time.perf_counter()
        inputs, unverifiable, instances = split_fingerprint_inputs(settings, 'unlabeled')
        t1 = time.perf_counter()
        reader = GeoCacheReader(settings.split_dir('unlabeled'), inputs, instances,
                                unverifiable)
        parse.append(t1 - t0)
        opens.append(time.perf_counter() - t1)
    blob = pickle.dumps(reader)
    t0 = time.perf_counter()
    clone = pickle.loads(blob)
    unpickle = time.perf_counter() - t0
    t0 = time.perf_counter()
    clone.read(int(clone.sample_ids[0]), 0)
    first_read = time.perf_counter() - t0

    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(reader), READS)
    items = [(int(reader.sample_ids[r // reader.num_seeds]), int(r % reader.num_seeds), int(r))
             for r in rows]
    loader = torch.utils.data.DataLoader(_TimedReads(reader, items), batch_size=None,
                                         num_workers=1, shuffle=False)
    timed = list(loader)[1:]  # the first read also opens the arrays
    new = [t * 1e3 for t, fresh in timed if fresh]
    known = [t * 1e3 for t, fresh in timed if not fresh]
    return dict(annotations_s_min=min(parse), open_s_min=min(opens), open_s_all=opens,
                pickled_reader_bytes=len(blob),
                unpickle_s=unpickle, first_read_s=first_read, reads=len(timed),
                read_ms_median_new_shard=statistics.median(new) if new else None,
                read_ms_median_known_shard=statistics.median(known),
                read_ms_mean=statistics.fmean([t * 1e3 for t, _ in timed]),
                shards_touched=len(new) + 1)


def checks(settings, opts: list[str], full: bool) -> dict:
    from nk_train.cache.check import check_split_cache
    from nk_train.cmgc.cache_inputs import split_fingerprint_inputs

    out = {}
    inputs, unverifiable, instances = split_fingerprint_inputs(settings, 'unlabeled')
    for mode in (('quick', 'files', 'full') if full else ('quick', 'files')):
        t0 = time.perf_counter()
        problems = check_split_cache(settings.split_dir('unlabeled'), inputs, instances,
                                     files=mode == 'files', full=mode == 'full',
                                     ignore_keys=unverifiable)
        out[f'{mode}_s'] = time.perf_counter() - t0
        if problems:
            raise RuntimeError(f'{mode} check found problems: {problems[:5]}')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, 'tools/check_cache.py', '--config', CONFIG,
                           '--split', 'unlabeled', '--cfg-options', *opts],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    out['quick_command_s'] = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f'tools/check_cache.py failed: {proc.stdout}{proc.stderr}')
    return out


def journal_vs_rewrite(split_dir: Path, tmp: Path) -> dict:
    """One journaled record (what a finished shard costs the coordinator now) against
    serialising the whole manifest (what format 1 did after every shard; summed over a run
    that is about shards / 2 times the final manifest's cost, the manifest growing linearly)."""
    from nk_train.cache.manifest import load_manifest, shard_records, write_record

    manifest = load_manifest(split_dir)
    shards = shard_records(split_dir, manifest)
    rec = dict(shards['0'], images=dict(list(manifest['images'].items())[:2]))
    journal = tmp / 'journal_probe'
    journal.mkdir()
    n = 200
    t0 = time.perf_counter()
    for j in range(n):
        write_record(journal, j, rec)
    record_ms = (time.perf_counter() - t0) / n * 1e3
    shutil.rmtree(journal)
    t0 = time.perf_counter()
    text = json.dumps(dict(manifest, shards=shards), indent=1, sort_keys=True, allow_nan=False)
    dump_s = time.perf_counter() - t0
    return dict(journal_record_ms=record_ms, manifest_bytes=len(text), manifest_dump_s=dump_s,
                rewrite_after_every_shard_s=dump_s * len(shards) / 2)


def tie_cost_us() -> float:
    """The per-read tie to the record: a chunk's stored CRC32C against the recorded one."""
    raw = bytes(range(256)) * 8
    expected = np.zeros(1000, np.uint32)
    n = 200_000
    t0 = time.perf_counter()
    for _ in range(n):
        _ = int.from_bytes(raw[-4:], 'little') != expected[7]
    return (time.perf_counter() - t0) / n * 1e6


def stat_cost_us(paths: list[str]) -> float:
    t0 = time.perf_counter()
    for _ in range(20):
        for p in paths:
            os.stat(p)
    return (time.perf_counter() - t0) / (20 * len(paths)) * 1e6


def full_size_arithmetic(sizes: dict, stat_us: float) -> dict:
    """100k instances x K = 4 at the full-size config (geo_cache.py: 256 rows per shard,
    192 x 256 maps) on GPU workers."""
    gpu = json.loads((REPO_ROOT / 'benchmarks/results/sapiens_gpu_step.json').read_text())
    storage = json.loads((REPO_ROOT / 'benchmarks/results/geo_cache.json').read_text())
    prep = storage['preparation']['prep_ms_per_crop']
    row_bytes = next(s['bytes_per_row'] for s in storage['storage']
                     if s['map_size'] == [192, 256] and s['depth_dtype'] == 'float16'
                     and s['normal_encoding'] == 'int8')
    rows, rows_per_shard, prep_threads = 100_000 * 4, 256, 4
    shards = -(-rows // rows_per_shard)
    teacher_ms = gpu['geo_teachers_forward_ms_per_crop']
    largest = sizes[max(sizes, key=int)]
    ms_per_shard = largest['precompute']['coordinator_cpu_ms_per_shard']
    journal_ms = largest['journal']['journal_record_ms']
    fold_s_per_shard = largest['precompute']['finish_s'] / largest['precompute']['shards']
    return dict(
        rows=rows, rows_per_shard=rows_per_shard, shards=shards,
        teacher_ms_per_crop=teacher_ms,
        teacher_source='benchmarks/results/sapiens_gpu_step.json (Sapiens-0.3b depth + normal, '
                       'bf16, batch 8, one H100)',
        gpu_hours=rows * teacher_ms / 3.6e6,
        prep_ms_per_crop_one_core=prep,
        prep_wall_ms_per_crop_with_threads=prep / prep_threads,
        prep_keeps_up=prep / prep_threads < teacher_ms,
        cache_gb=rows * row_bytes / 1e9,
        coordinator_cpu_s_assumed=ms_per_shard * shards / 1e3,
        coordinator_note=(f'{ms_per_shard:.1f} ms of coordinator CPU per shard measured at '
                          f'{max(sizes, key=int)} rows here (16-row shards); assumed the same '
                          'per 256-row shard (one record each, a little larger)'),
        journal_s_assumed=journal_ms * shards / 1e3,
        fold_s_assumed=fold_s_per_shard * shards,
        journal_note=('one record file per shard and one fold at the end, at the per-record '
                      'and per-shard fold costs measured at the largest size here'),
        image_check_s_assumed=100_000 * stat_us / 1e6,
        image_check_note=(f'one stat per distinct image at {stat_us:.1f} us (measured here on '
                          'the local disk; a network file system is slower): at open and in '
                          'the quick check'))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--rows', type=int, nargs='+', default=[3000, 24000, 120000])
    p.add_argument('--full-check-max-rows', type=int, default=24000,
                   help='run --full only up to this size (it reads everything)')
    p.add_argument('--out', default=str(REPO_ROOT / 'benchmarks/results/geo_cache_scale.json'))
    p.add_argument('--update', action='store_true',
                   help='keep the sizes of --out that are not measured again (each size records '
                        'the machine load it ran under: rows/s follows the load of a shared '
                        'machine)')
    args = p.parse_args()
    os.chdir(REPO_ROOT)  # the config's data_root is relative
    torch.set_num_threads(1)
    import nk_train  # noqa: F401

    results: dict = dict(
        machine=dict(cpu_cores=os.cpu_count(), torch=torch.__version__,
                     load_average_at_start=os.getloadavg()),
        setup=dict(config=CONFIG, num_seeds=K, workers=WORKERS, reads=READS,
                   source='data/syrip/annotations/train_unlabeled.json (300 boxes) replicated'),
        sizes=json.loads(Path(args.out).read_text())['sizes'] if args.update else {})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for rows in args.rows:
            if rows % K:
                raise ValueError(f'--rows {rows} is not a multiple of K={K}')
            ann = replicate_annotations(rows // K, tmp / f'unlabeled_{rows}.json')
            opts = options(tmp / f'geo_{rows}', ann)
            print(f'== {rows} rows ({rows // K} instances x K={K})', flush=True)
            entry = dict(precompute=precompute(opts, tmp))
            settings = settings_for(opts)
            entry['journal'] = journal_vs_rewrite(settings.split_dir('unlabeled'), tmp)
            entry['read'] = open_and_read(settings)
            entry['check'] = checks(settings, opts, full=rows <= args.full_check_max_rows)
            results['sizes'][str(rows)] = entry
            pre, read, chk = entry['precompute'], entry['read'], entry['check']
            print(f'  precompute {pre["rows_per_s"]:.1f} rows/s, coordinator {100 * pre["coordinator_cpu_share"]:.1f} % '
                  f'of a core ({pre["coordinator_cpu_ms_per_shard"]:.2f} ms/shard), fold '
                  f'{pre["finish_s"]:.2f} s; annotations {read["annotations_s_min"]:.3f} s + open '
                  f'{read["open_s_min"]:.3f} s, worker unpickle '
                  f'{1e3 * read["unpickle_s"]:.1f} ms + first read {1e3 * read["first_read_s"]:.1f} ms; '
                  f'reads {read["read_ms_median_known_shard"]:.3f} ms (new shard '
                  f'{read["read_ms_median_new_shard"]:.3f} ms); quick check {chk["quick_s"]:.3f} s '
                  f'(--files {chk["files_s"]:.2f} s) in-process, {chk["quick_command_s"]:.1f} s '
                  'as a command'
                  + (f', full {chk["full_s"]:.1f} s' if 'full_s' in chk else ''), flush=True)
            shutil.rmtree(tmp / f'geo_{rows}')
            write_results(args.out, results)  # what is measured so far
        images = sorted({str(REPO_ROOT / 'data/syrip/images' / img['file_name'])
                         for img in json.loads(UNLABELED.read_text())['images']})
        results['per_unit'] = dict(tie_us_per_read=tie_cost_us(),
                                   image_stat_us=stat_cost_us(images))
    results['full_size_100k_x4'] = full_size_arithmetic(results['sizes'],
                                                         results['per_unit']['image_stat_us'])
    results['machine']['load_average_at_end'] = os.getloadavg()
    results['sizes'] = dict(sorted(results['sizes'].items(), key=lambda kv: int(kv[0])))
    rates = [v['precompute']['rows_per_s'] for v in results['sizes'].values()]
    results['rows_per_s_max_over_min'] = max(rates) / min(rates)
    print(f'rows/s max/min over the sizes: {results["rows_per_s_max_over_min"]:.2f}')
    write_results(args.out, results)
    return 0


if __name__ == '__main__':
    sys.exit(main())
