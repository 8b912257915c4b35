"""Stage1 step time without CMGC, with CMGC from the cache and with CMGC online; the share of a
step spent in the ddp_prior and KPS; data loading per sample with and without cache reads.

    .venv/bin/python benchmarks/stage1_step_time.py [--steps 20] [--warmup 3] [--amp]
        [--prior work_dirs/ddp_prior/ddp_prior.pth] [--out benchmarks/results/stage1_step_time.json]

Needs the CPU geometric cache and a ddp_prior checkpoint (``tools/main_job.py`` makes both;
or ``precompute/geo_cache.py --split unlabeled --config configs/nk_sapiens/infant/_base_/
geo_cache_cpu.py`` and ``tools/train_ddp_prior.py``).

One run, real SyRIP batches from the full method's CPU config (``stage1_ssl_full_cpu.py``):

* Step time: three models with the same initial weights (``no_cmgc``: geo lambdas 0;
  ``cmgc_cache``: the config; ``cmgc_online``: the stand-in geometric teacher inside the step)
  train on the same pre-loaded batches; a step is data preprocessing, the Stage1 loss, backward,
  AdamW and the EMA update. Variants alternate step by step so that machine load drifts hit
  all three alike; the medians give the ratios. Goal: cache <= 1.05 x no_cmgc.
* ddp_prior + KPS share: the time inside Teacher B's denoising and the gate's KPS in the
  ``cmgc_cache`` steps over their step time. Goal <= 5 %.
* Data loading: one unlabeled sample (weak + strong views) with ``LoadGeoCacheMaps`` in the
  pipeline and without it, alternating, single process.

What these CPU figures mean for Sapiens-size models on GPUs is worked out in
``benchmarks/README.md``.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import nk_train  # noqa: E402,F401  (registers the plugin)
from nk_train.engine.ema_hook import ema_update  # noqa: E402
from results_io import write_results  # noqa: E402  (benchmarks/, on sys.path as a script)

CONFIG = 'configs/nk_sapiens/infant/stage1_ssl_full_cpu.py'
VARIANTS = {
    'no_cmgc': dict(lambda_geo_depth=0.0, lambda_geo_normal=0.0),
    'cmgc_cache': dict(cmgc_source='cache'),
    'cmgc_online': dict(cmgc_source='online'),
}


class Stopwatch:
    """Wall time spent inside wrapped callables, summed until ``take``."""

    def __init__(self) -> None:
        self.total = 0.0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.total += time.perf_counter() - t0
        return timed

    def take(self) -> float:
        value, self.total = self.total, 0.0
        return value


def unlabeled_pipeline(cfg: Config) -> list:
    """The full config's unlabeled pipeline plus ``GeoTeacherCrop`` (what the online teacher
    reads), so that one batch serves all three variants."""
    pipeline = copy.deepcopy(cfg.train_dataloader.dataset.datasets[1].dataset.pipeline)
    at = next(i for i, t in enumerate(pipeline) if t['type'] == 'SeededTopdownAffine')
    pipeline.insert(at, dict(type='GeoTeacherCrop', cache=cfg.geo_cache))
    return pipeline


def load_batches(cfg: Config, n: int) -> list[dict]:
    from mmengine.runner import Runner

    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.dataset.datasets[1].dataset.pipeline = unlabeled_pipeline(cfg)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    it = iter(Runner.build_dataloader(loader_cfg, seed=0))
    return [next(it) for _ in range(n)]


def build_model(cfg: Config, overrides: dict, prior: str) -> torch.nn.Module:
    from mmpose.registry import MODELS

    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.init_from = None
    model_cfg.ddp_prior.checkpoint = prior
    model_cfg.semi_train_cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg.to_dict())
    model.init_weights()
    model.train()
    return model


def train_step(model, optimizer, batch: dict, amp: bool, ema_decay: float) -> None:
    data = model.data_preprocessor(batch, training=True)
    autocast = torch.autocast('cpu', dtype=torch.bfloat16) if amp else nullcontext()
    with autocast:
        losses = model(**data, mode='loss')
    loss = sum(v for k, v in losses.items() if k.startswith('loss'))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    ema_update(model.teacher, model.student, ema_decay)


def measure_steps(cfg: Config, batches: list[dict], args) -> dict:
    models = {name: build_model(cfg, o, args.prior) for name, o in VARIANTS.items()}
    optimizers = {name: torch.optim.AdamW(m.student.parameters(), lr=1e-4)
                  for name, m in models.items()}
    watch = Stopwatch()
    full = models['cmgc_cache']
    full.prior_teacher.prior.denoise = watch.wrap(full.prior_teacher.prior.denoise)
    full.gate.kps.forward = watch.wrap(full.gate.kps.forward)
    times = {name: [] for name in models}
    prior_kps = []
    for i in range(args.warmup + args.steps):
        batch = batches[i % len(batches)]
        for name, model in models.items():
            watch.take()
            t0 = time.perf_counter()
            train_step(model, optimizers[name], batch, args.amp, cfg.ema_decay)
            dt = time.perf_counter() - t0
            inside = watch.take()
            if i >= args.warmup:
                times[name].append(dt)
                if name == 'cmgc_cache':
                    prior_kps.append(inside / dt)
    med = {name: statistics.median(t) for name, t in times.items()}
    return dict(
        median_step_s=med,
        step_s_all=times,
        ratio_to_no_cmgc={name: med[name] / med['no_cmgc'] for name in med},
        prior_and_kps_share_of_cmgc_cache_step=dict(
            median=statistics.median(prior_kps), max=max(prior_kps)))


def measure_loading(cfg: Config, n: int) -> dict:
    """Per-sample time of the unlabeled dataset with and without cache reads."""
    from mmpose.registry import DATASETS

    with_cache = copy.deepcopy(cfg.train_dataloader.dataset.datasets[1])
    without = copy.deepcopy(with_cache)
    without.dataset.pipeline = [t for t in without.dataset.pipeline
                                if t['type'] != 'LoadGeoCacheMaps']
    datasets = dict(with_cache_reads=DATASETS.build(with_cache),
                    without_cache_reads=DATASETS.build(without))
    times = {name: [] for name in datasets}
    for i in range(n):
        for name, ds in datasets.items():
            t0 = time.perf_counter()
            ds[i]
            times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    return dict(median_ms_per_sample=med,
                cache_read_ms=med['with_cache_reads'] - med['without_cache_reads'])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--batches', type=int, default=8, help='distinct batches cycled')
    parser.add_argument('--samples', type=int, default=40, help='data-loading samples')
    parser.add_argument('--amp', action='store_true', help='bf16 autocast forward')
    parser.add_argument('--prior', default='work_dirs/ddp_prior/ddp_prior.pth')
    parser.add_argument('--out', default='benchmarks/results/stage1_step_time.json')
    args = parser.parse_args()
    os.chdir(REPO_ROOT)
    if not Path(args.prior).is_file():
        raise SystemExit(f'{args.prior}: no ddp_prior checkpoint; train one with '
                         'tools/train_ddp_prior.py (or run tools/main_job.py)')
    init_default_scope('mmpose')
    cfg = Config.fromfile(CONFIG)
    load_avg = os.getloadavg()
    batches = load_batches(cfg, args.batches)
    results = dict(
        config=CONFIG, amp=args.amp, steps=args.steps, warmup=args.warmup,
        batch=dict(size=cfg.train_batch_size, source_ratio=cfg.source_ratio,
                   num_strong_views=cfg.num_strong_views),
        machine=dict(cpu_cores=os.cpu_count(), torch_threads=torch.get_num_threads(),
                     torch=torch.__version__, python=platform.python_version(),
                     load_average_at_start=load_avg),
        step=measure_steps(cfg, batches, args),
        data_loading=measure_loading(cfg, args.samples))
    results['machine']['load_average_at_end'] = os.getloadavg()
    step = results['step']
    print(f'step time (median of {args.steps}, amp={args.amp}):')
    for name, t in step['median_step_s'].items():
        print(f'  {name:12s} {t * 1e3:8.1f} ms   x{step["ratio_to_no_cmgc"][name]:.3f}')
    share = step['prior_and_kps_share_of_cmgc_cache_step']
    print(f'ddp_prior + KPS share of a cmgc_cache step: median {share["median"]:.1%}, '
          f'max {share["max"]:.1%}')
    loading = results['data_loading']
    for name, t in loading['median_ms_per_sample'].items():
        print(f'data loading, {name}: {t:.2f} ms per unlabeled sample')
    print(f'cache read: {loading["cache_read_ms"]:.2f} ms per sample')
    write_results(args.out, results)


if __name__ == '__main__':
    main()
