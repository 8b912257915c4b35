"""Benchmarks of the geometric cache on real SyRIP images (CPU; prints and writes JSON).

    python benchmarks/geo_cache_bench.py [--instances 40] [--out benchmarks/results/geo_cache.json]

1. Precompute throughput (crops/s) and the share of task wall time outside the teacher
   forward (decode, crop, resample, write), with a stand-in teacher whose cost per crop is set
   in proportion to the real one on a GPU (see ``teacher_cost_target``). Goal: <= 15 %.
2. Speed-up from 1 to 2 dask workers (task wall time, cluster start-up excluded).
3. Storage: bytes per row for each depth dtype / normal encoding at the CPU map grid (48 x 64)
   and the full-size heatmap grid (192 x 256), against raw float32, with the decoding error.
4. Read latency per sample inside a DataLoader worker (``LoadGeoCacheMaps.transform``: read,
   decode, affine check). Goal: <= 2 ms at the default resolution.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

CONFIG = 'configs/nk_sapiens/infant/_base_/geo_cache_cpu.py'
K = 4
TEACHER_HW = (1024, 768)  # the real Sapiens input: what the decode + warp cost is measured at

# The real teacher's cost per crop on a GPU node: measured by benchmarks/sapiens_gpu_step.py
# (Sapiens-0.3b depth + normal forward, bf16, batch 8, 1024 x 768, one H100) when its results
# file is there; otherwise estimated: Sapiens-0.3B is 1.242 T multiply-adds per 1024 x 768
# image (Sapiens paper, Table 1, fvcore counts); depth + normal = 2 models x 2 FLOPs per MAC at
# an effective 400 TFLOP/s (H100, bf16, ~40 % of the 989 TFLOP/s dense peak): ~12 ms.
GPU_MEASUREMENT = REPO_ROOT / 'benchmarks/results/sapiens_gpu_step.json'
SAPIENS_03B_MACS = 1.242e12
GPU_EFFECTIVE_FLOPS = 400e12
NODE_PREP_THREADS = 4  # geo_cache.py prep_threads: CPU cores decoding per GPU worker


def measure_prep(img_paths: list[str]) -> dict:
    """Single-thread decode (per image) and warp to the teacher input (per crop), in ms."""
    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    imgs = [cv2.imdecode(np.frombuffer(Path(p).read_bytes(), np.uint8), cv2.IMREAD_COLOR)
            for p in img_paths]
    decode = (time.perf_counter() - t0) / len(imgs) * 1e3
    affine = np.array([[0.4, 0.05, 10.0], [-0.05, 0.4, 20.0]])
    t0 = time.perf_counter()
    for img in imgs:
        cv2.warpAffine(img, affine, TEACHER_HW[::-1], flags=cv2.INTER_LINEAR)
    warp = (time.perf_counter() - t0) / len(imgs) * 1e3
    cv2.setNumThreads(-1)
    return dict(decode_ms_per_image=decode, warp_ms_per_crop=warp,
                prep_ms_per_crop=decode / K + warp,
                mean_megapixels=float(np.mean([i.shape[0] * i.shape[1] for i in imgs]) / 1e6))


def teacher_cost_target(prep_ms_per_crop: float) -> dict:
    """The stand-in's forward time per crop that keeps the GPU node's teacher : preparation
    ratio here. On the node, NODE_PREP_THREADS cores prepare crops for one GPU, so one crop
    of preparation takes prep / NODE_PREP_THREADS of wall time; here one core prepares while
    the other runs the teacher. Assumes a node core decodes/warps as fast as a core here."""
    if GPU_MEASUREMENT.is_file():
        gpu_ms = json.loads(GPU_MEASUREMENT.read_text())['geo_teachers_forward_ms_per_crop']
        source = f'measured ({GPU_MEASUREMENT.relative_to(REPO_ROOT)})'
    else:
        gpu_ms = 2 * 2 * SAPIENS_03B_MACS / GPU_EFFECTIVE_FLOPS * 1e3
        source = 'estimated from FLOPs'
    ratio = gpu_ms / (prep_ms_per_crop / NODE_PREP_THREADS)
    return dict(real_teacher_gpu_ms_per_crop=gpu_ms, real_teacher_cost_source=source,
                node_prep_threads=NODE_PREP_THREADS,
                teacher_to_prep_wall_ratio=ratio,
                stand_in_target_ms_per_crop=ratio * prep_ms_per_crop)


def calibrate_stand_in(target_ms: float) -> dict:
    """The stand-in (width, layers) whose forward (1 thread, batch 8, 1024 x 768, best of 2)
    is closest to the target."""
    from nk_train.cmgc import build_geometric_teacher

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x = torch.randint(0, 255, (8, 3, *TEACHER_HW), dtype=torch.uint8)
    best = None
    for width, layers in ((4, 2), (4, 4), (8, 3), (8, 4), (12, 4), (16, 4), (24, 4)):
        teacher = build_geometric_teacher(dict(kind='stand_in', width=width,
                                               num_layers=layers, input_size=TEACHER_HW))
        teacher(x[:2])
        times = []
        for _ in range(2):
            t0 = time.perf_counter()
            teacher(x)
            times.append((time.perf_counter() - t0) / len(x) * 1e3)
        ms = min(times)
        print(f'  stand-in width {width:2d}, {layers} layers: {ms:6.1f} ms per crop')
        if best is None or abs(ms - target_ms) < abs(best['ms_per_crop'] - target_ms):
            best = dict(width=width, num_layers=layers, ms_per_crop=ms)
        if ms > 1.5 * target_ms:
            break
    torch.set_num_threads(threads)
    return best


def run_precompute(root: Path, tmp: Path, workers: int, options: list[str],
                   instances: int) -> dict:
    from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location('geo_cache_cli', REPO_ROOT / 'precompute' / 'geo_cache.py')
    cli = module_from_spec(spec)
    spec.loader.exec_module(cli)
    summary = tmp / f'summary_{time.time_ns()}.json'
    rc = cli.main(['--split', 'labeled', '--config', CONFIG, '--workers', str(workers),
                   '--limit', str(instances), '--no-progress', '--summary-json', str(summary),
                   '--cfg-options', f'geo_cache.root={root}', *options])
    if rc != 0:
        raise RuntimeError(f'precompute failed (exit {rc})')
    return json.loads(summary.read_text())


def shard_bytes(split_dir: Path) -> dict:
    from nk_train.cache.manifest import load_manifest, shard_records

    manifest = load_manifest(split_dir)
    per_array: dict[str, int] = {}
    for rec in shard_records(split_dir, manifest).values():
        for name, f in rec['files'].items():
            per_array[name] = per_array.get(name, 0) + f['size']
    rows = manifest['layout']['num_rows']
    return {name: size / rows for name, size in per_array.items()}


def storage_study(tmp: Path, teacher_opts: list[str], instances: int) -> list[dict]:
    """Bytes per row and decoding error per encoding, at both map grids, on the same views."""
    import zarr

    from nk_train.cache.normal_codec import decode_normal

    out = []
    for map_size in ((48, 64), (192, 256)):
        ref = None
        for depth_dtype, normal_enc in (('float32', 'float32'), ('float16', 'float16'),
                                        ('float16', 'int8')):
            root = tmp / f'store_{map_size[0]}_{depth_dtype}_{normal_enc}'
            opts = [*teacher_opts, f'geo_cache.map_size=({map_size[0]},{map_size[1]})',
                    f'geo_cache.depth_dtype={depth_dtype}',
                    f'geo_cache.normal_encoding={normal_enc}']
            run_precompute(root, tmp, 1, opts, instances)
            split = root / 'labeled'
            g = zarr.open_group(str(split), mode='r')
            depth = g['depth'][:].astype(np.float32)
            normal = decode_normal(g['normal'][:])
            if ref is None:
                ref = (depth, normal)
            a, b = normal.astype(np.float64), ref[1].astype(np.float64)
            angle = np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b, axis=1), axis=1),
                                          (a * b).sum(axis=1)))
            rel = np.abs(depth - ref[0]) / np.maximum(np.abs(ref[0]), 1e-6)
            per_array = shard_bytes(split)
            mw, mh = map_size
            raw = 4 * 4 * mw * mh + 6 * 8 + 8 + 4
            row = dict(map_size=list(map_size), depth_dtype=depth_dtype,
                       normal_encoding=normal_enc, bytes_per_row=sum(per_array.values()),
                       bytes_per_row_by_array=per_array, raw_float32_bytes_per_row=raw,
                       ratio_to_raw_float32=sum(per_array.values()) / raw,
                       normal_angle_error_deg_mean=float(angle.mean()),
                       normal_angle_error_deg_max=float(angle.max()),
                       depth_rel_error_max=float(rel.max()))
            out.append(row)
            print(f'  map {mw}x{mh} depth {depth_dtype:7s} normal {normal_enc:7s}: '
                  f'{row["bytes_per_row"]:9.0f} B/row ({row["ratio_to_raw_float32"]:.3f} of raw '
                  f'float32), normal error mean {row["normal_angle_error_deg_mean"]:.3f} deg '
                  f'max {row["normal_angle_error_deg_max"]:.3f} deg, depth rel error max '
                  f'{row["depth_rel_error_max"]:.2e}')
    return out


class _TimedReads(torch.utils.data.Dataset):
    """Times LoadGeoCacheMaps.transform for one view per item, inside the worker."""

    def __init__(self, loader, items: list[dict]) -> None:
        self.loader, self.items = loader, items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> float:
        results = dict(self.items[i])
        t0 = time.perf_counter()
        self.loader.transform(results)
        return time.perf_counter() - t0


def read_latency(root: Path, options: list[str], instances: int, reads: int) -> dict:
    from mmengine.config import Config, DictAction

    import zarr

    from nk_train.data.geo_cache_transform import LoadGeoCacheMaps

    cfg = Config.fromfile(str(REPO_ROOT / CONFIG))
    cfg.merge_from_dict({k: DictAction._parse_iterable(v) for k, v in
                         (o.split('=', 1) for o in [f'geo_cache.root={root}', *options])})
    loader = LoadGeoCacheMaps(cache=cfg.geo_cache.to_dict(), split='labeled', indices=instances)
    g = zarr.open_group(str(root / 'labeled'), mode='r')
    ids, ks, affines = g['sample_id'][:], g['seed_k'][:], g['affine'][:]
    order = np.random.default_rng(0).integers(0, len(ids), reads)
    items = [dict(nk_sample_id=int(ids[r]), geo_seed_k=int(ks[r]), geo_affine=affines[r])
             for r in order]
    dl = torch.utils.data.DataLoader(_TimedReads(loader, items), batch_size=None,
                                     num_workers=1, shuffle=False)
    times = [t * 1e3 for t in dl][20:]  # skip the lazy open in the worker
    return dict(reads=len(times), median_ms=statistics.median(times),
                p90_ms=float(np.percentile(times, 90)), mean_ms=statistics.fmean(times))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--instances', type=int, default=40, help='labeled instances (x K=4 views)')
    p.add_argument('--storage-instances', type=int, default=6)
    p.add_argument('--reads', type=int, default=2000)
    p.add_argument('--out', default=str(REPO_ROOT / 'benchmarks' / 'results' / 'geo_cache.json'))
    args = p.parse_args()

    import nk_train  # noqa: F401
    from nk_train.cache.instances import list_instances

    insts = list_instances(REPO_ROOT / 'data/syrip/annotations/train_labeled.json',
                           REPO_ROOT / 'data/syrip/images', True).instances[:args.instances]
    print('1. preparation cost (single thread, real images)')
    prep = measure_prep([i.img_path for i in insts])
    print(f'  decode {prep["decode_ms_per_image"]:.1f} ms/image '
          f'({prep["mean_megapixels"]:.2f} MP), warp to {TEACHER_HW[0]}x{TEACHER_HW[1]} '
          f'{prep["warp_ms_per_crop"]:.1f} ms/crop -> {prep["prep_ms_per_crop"]:.1f} ms per crop '
          f'with K={K}')
    target = teacher_cost_target(prep['prep_ms_per_crop'])
    print(f'  real teacher {target["real_teacher_gpu_ms_per_crop"]:.1f} ms/crop on the GPU '
          f'({target["real_teacher_cost_source"]}); teacher : prep wall ratio {target["teacher_to_prep_wall_ratio"]:.2f} -> '
          f'stand-in target {target["stand_in_target_ms_per_crop"]:.1f} ms/crop')
    stand_in = calibrate_stand_in(target['stand_in_target_ms_per_crop'])
    print(f'  chosen stand-in: width {stand_in["width"]}, {stand_in["num_layers"]} layers '
          f'({stand_in["ms_per_crop"]:.1f} ms/crop; '
          f'target {target["stand_in_target_ms_per_crop"]:.1f})')

    teacher_opts = [f'geo_cache.teacher.width={stand_in["width"]}',
                    f'geo_cache.teacher.num_layers={stand_in["num_layers"]}',
                    f'geo_cache.teacher.input_size=({TEACHER_HW[0]},{TEACHER_HW[1]})',
                    'geo_cache.rows_per_shard=16', 'geo_cache.batch_size=8',
                    'geo_cache.prep_threads=1']
    import os

    results: dict = dict(machine=dict(cpu_cores=os.cpu_count(), torch=torch.__version__,
                                      load_average_at_start=os.getloadavg()),
                         preparation=prep, teacher_proportion=target, stand_in=stand_in)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print('2. precompute throughput')
        runs = {}
        for workers in (1, 2):
            s = run_precompute(tmp / f'geo_w{workers}', tmp, workers, teacher_opts,
                               args.instances)
            t = s['task_timings_s']
            rows = s['rows_computed']
            runs[workers] = dict(
                rows=rows, tasks_wall_s=s['tasks_wall_s'], startup_s=s['startup_s'],
                crops_per_s=rows / s['tasks_wall_s'], task_timings_s=t,
                outside_forward_share=1.0 - t['forward'] / t['total'])
            print(f'  {workers} worker(s): {rows} crops in {s["tasks_wall_s"]:.1f} s '
                  f'({runs[workers]["crops_per_s"]:.2f} crops/s; start-up {s["startup_s"]:.1f} s), '
                  f'outside teacher forward {100 * runs[workers]["outside_forward_share"]:.1f} % '
                  f'(wait for prep {t["wait_prepare"]:.2f} s, '
                  f'write {t["write"]:.2f} s of {t["total"]:.2f} s)')
        speedup = runs[1]['tasks_wall_s'] / runs[2]['tasks_wall_s']
        print(f'  speed-up 1 -> 2 workers: {speedup:.2f}x')
        results.update(precompute=runs, speedup_1_to_2_workers=speedup)

        print('3. storage per row (same views, stand-in maps)')
        results['storage'] = storage_study(tmp, teacher_opts, args.storage_instances)

        print('4. read latency inside a DataLoader worker (LoadGeoCacheMaps.transform)')
        lat = {}
        lat['48x64'] = read_latency(tmp / 'geo_w1', teacher_opts, args.instances, args.reads)
        big = tmp / 'store_192_float16_int8'
        lat['192x256'] = read_latency(big, [*teacher_opts, 'geo_cache.map_size=(192,256)'],
                                      args.storage_instances, args.reads)
        for name, v in lat.items():
            print(f'  {name}: median {v["median_ms"]:.3f} ms, p90 {v["p90_ms"]:.3f} ms, '
                  f'mean {v["mean_ms"]:.3f} ms over {v["reads"]} reads')
        results['read_latency'] = lat
    results['machine']['load_average_at_end'] = os.getloadavg()
    results['goals'] = dict(
        outside_forward_share_le_15pct=runs[1]['outside_forward_share'] <= 0.15,
        read_latency_le_2ms_default=lat['48x64']['median_ms'] <= 2.0)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f'written {args.out}; goals: {results["goals"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
