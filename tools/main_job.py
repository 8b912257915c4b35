"""The main job on the SyRIP sample: the whole NK-Sapiens pipeline with the CPU-size configs.

    .venv/bin/python tools/main_job.py [--work-dir work_dirs/main_job]
        [--stage1 baseline full]

Steps (each skipped when its result is already there, so a re-run resumes):
 1. skeleton statistics: check that stats/skeleton_stats.json matches the labeled file;
 2. ddp_prior: train the diffusion prior on the labeled poses;
 3. geometric cache: precompute the unlabeled split with the STAND-IN teacher, then check it;
 4. Stage0: supervised training, then COCO AP on Test100;
 5. Stage1 (``--stage1``: any of baseline, ddp, cmgc, ddp_cmgc, full): semi-supervised
    training from the same Stage0 checkpoint with the same seed, then AP; for ``full`` also
    the gating report (pseudo-label accuracy against the diagnostic labels);
 6. summary: AP per stage, Teacher A/B counts, cache size and check status, written to
    ``summary.json``;
 7. figures (``tools/visualize.py``) in ``WORK_DIR/figures/``: cache preview, training curves
    (Stage0; the Stage1 runs overlaid), the pseudo-label gallery and gating plots of ``full``,
    AP per method.
One seed, the last checkpoints, Test100 only: it shows the pipeline runs end to end. The
recorded experiment (seeds, validation split, control, intervals: docs/nk_sapiens/RESULTS.md)
is tools/run_experiments.py.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CFG = 'configs/nk_sapiens/infant'
GEO_CFG = f'{CFG}/_base_/geo_cache_cpu.py'
STAGE0_CFG = f'{CFG}/stage0_supervised_cpu.py'
STAGE1_CFGS = {'baseline': f'{CFG}/stage1_ssl_baseline_cpu.py',
               'ddp': f'{CFG}/stage1_ablation_ddp_cpu.py',
               'cmgc': f'{CFG}/stage1_ablation_cmgc_cpu.py',
               'ddp_cmgc': f'{CFG}/stage1_ablation_ddp_cmgc_cpu.py',
               'full': f'{CFG}/stage1_ssl_full_cpu.py'}
REFUSED = 3  # precompute/geo_cache.py: the cache was built from other settings
# COCO metrics read from tools/test.py's log: summary key -> name in the log.
METRICS = {'AP': 'coco/AP', 'AP50': 'coco/AP .5', 'AP75': 'coco/AP .75', 'AR': 'coco/AR'}


def step(title: str) -> None:
    print(f'\n== {title}', flush=True)


def run(*args: str, log: Path | None = None) -> str:
    """Run a repo tool with this interpreter; stream its output (and keep it in ``log``)."""
    cmd = [sys.executable, *args]
    print('$', ' '.join(args), flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if 'Iter(' in line or 'coco/AP' in line or line.startswith(('==', 'ERROR', 'Traceback')):
            print('   ', line.rstrip()[:200], flush=True)
    out = ''.join(lines)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(out)
    if proc.wait() != 0:
        print(out[-4000:], file=sys.stderr)
        raise SystemExit(f'main_job: step failed: {" ".join(args)}')
    return out


def check_stats() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / 'skeleton_stats.json'
        run('tools/compute_kps_stats.py', '--out', str(fresh))
        same = fresh.read_bytes() == (ROOT / 'stats/skeleton_stats.json').read_bytes()
    if not same:
        raise SystemExit('main_job: stats/skeleton_stats.json is stale: regenerate it with '
                         'tools/compute_kps_stats.py and commit it')
    return 'up to date'


def ensure_prior(work: Path) -> Path:
    ckpt = work / 'ddp_prior' / 'ddp_prior.pth'
    if not ckpt.is_file():
        run('tools/train_ddp_prior.py', '--out', str(ckpt), '--no-progress')
    return ckpt


def cache_check(level: str) -> list[str]:
    """check_cache's command line at ``level`` (``--files``: quick, ``--full``: re-hash all)."""
    return ['tools/check_cache.py', '--config', GEO_CFG, '--split', 'unlabeled', level]


def ensure_cache() -> str:
    quick = cache_check('--files')
    if subprocess.run([sys.executable, *quick], cwd=ROOT, capture_output=True).returncode != 0:
        build = ['precompute/geo_cache.py', '--split', 'unlabeled', '--config', GEO_CFG,
                 '--no-progress']
        if not (ROOT / 'cache/geo_cpu/unlabeled/manifest.json').is_file():
            run(*build)
        else:
            print('$', *build, '--resume', flush=True)
            code = subprocess.run([sys.executable, *build, '--resume'], cwd=ROOT).returncode
            if code == REFUSED:
                # built from other settings (e.g. an edited CPU config): this cache holds only
                # the stand-in teacher's maps, derived from the config alone, so rebuild it
                print('   the CPU cache is stale (see above): rebuilding it', flush=True)
                run(*build, '--overwrite')
            elif code != 0:
                raise SystemExit(f'main_job: step failed: {" ".join(build)} --resume')
    return run(*cache_check('--full')).strip().splitlines()[-1]


def coco_metrics(log: str, source: Path) -> dict[str, float]:
    """The last value of each ``METRICS`` entry in a test log."""
    found = {}
    for key, name in METRICS.items():
        values = re.findall(re.escape(name) + r': (-?\d+\.\d+)', log)
        if not values:
            raise SystemExit(f'main_job: no {name} in {source}')
        found[key] = float(values[-1])
    return found


def train_and_test(name: str, cfg: str, work: Path, extra: list[str]) -> dict[str, float]:
    wd = work / name
    if not (wd / 'done').is_file():  # written once training finished
        resume = ['--resume'] if (wd / 'last_checkpoint').is_file() else []
        run('tools/train.py', cfg, '--work-dir', str(wd), *resume, *extra)
        (wd / 'done').touch()
    ckpt = (wd / 'last_checkpoint').read_text().strip()
    out = run('tools/test.py', cfg, '--checkpoint', ckpt, '--work-dir', str(wd / 'test'),
              *extra, log=wd / 'test.log')
    return coco_metrics(out, wd / 'test.log')


def gating_report(cfg: str, work: Path, extra: list[str]) -> dict:
    """Teacher A accepted / rejected and Teacher B pseudo-label accuracy (diagnostic labels)."""
    wd = work / 'stage1_full'
    out = wd / 'gating_report.json'
    ckpt = (wd / 'last_checkpoint').read_text().strip()
    run('tools/gating_report.py', cfg, '--checkpoint', ckpt, '--json', str(out), *extra)
    return json.loads(out.read_text())['groups']


def iterations(cfg: str) -> int:
    from mmengine.config import Config
    return int(Config.fromfile(str(ROOT / cfg)).train_cfg.max_iters)


def teacher_counts(wd: Path) -> dict | None:
    """Teacher A / B unlabeled samples summed over the iterations the logger recorded."""
    rows = [json.loads(x) for f in sorted(wd.glob('*/vis_data/scalars.json'))
            for x in f.read_text().splitlines()]
    rows = [r for r in rows if 'num_use_teacherA' in r]
    if not rows:
        return None
    return dict(teacherA=int(sum(r['num_use_teacherA'] for r in rows)),
                teacherB=int(sum(r['num_use_teacherB'] for r in rows)),
                logged_iterations=len(rows))


def figures(work: Path, stage1: list[str], full_extra: list[str]) -> Path:
    """The pictures of this run (``tools/visualize.py``) in ``WORK_DIR/figures``."""
    out = work / 'figures'
    viz = 'tools/visualize.py'
    run(viz, 'cache', '--config', GEO_CFG, '--out', str(out / 'cache_preview.png'))
    run(viz, 'training', str(work / 'stage0'), '--title', 'Stage0',
        '--out', str(out / 'training_stage0.png'))
    if stage1:
        run(viz, 'training', *(str(work / f'stage1_{n}') for n in stage1), '--names', *stage1,
            '--title', 'Stage1 (same Stage0 checkpoint, same seed)',
            '--out', str(out / 'training_stage1.png'))
    if 'full' in stage1:
        ckpt = (work / 'stage1_full' / 'last_checkpoint').read_text().strip()
        run(viz, 'pseudo-labels', STAGE1_CFGS['full'], '--checkpoint', ckpt, '--out-dir',
            str(out), *full_extra)
    run(viz, 'results', '--results', str(work / 'summary.json'),
        '--out', str(out / 'results_ap.png'))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/main_job')
    parser.add_argument('--stage1', nargs='*', default=['baseline', 'full'],
                        choices=list(STAGE1_CFGS))
    args = parser.parse_args()
    work = (ROOT / args.work_dir).resolve()
    summary = {}

    step('1/7 skeleton statistics')
    summary['skeleton_stats'] = check_stats()
    step('2/7 ddp_prior')
    prior = ensure_prior(work)
    step('3/7 geometric cache (stand-in teacher)')
    summary['cache_check'] = ensure_cache()
    size = sum(f.stat().st_size for f in (ROOT / 'cache/geo_cpu/unlabeled').rglob('*')
               if f.is_file())
    summary['cache_size_mb'] = round(size / 2 ** 20, 1)
    step('4/7 Stage0')
    ap = {'stage0': train_and_test('stage0', STAGE0_CFG, work, [])}
    stage0_ckpt = (work / 'stage0' / 'last_checkpoint').read_text().strip()
    counts = {}
    extra = ['--cfg-options', f'model.init_from={stage0_ckpt}',
             f'model.ddp_prior.checkpoint={prior}']
    for name in args.stage1:
        step(f'5/7 Stage1 {name}')
        ap[name] = train_and_test(f'stage1_{name}', STAGE1_CFGS[name], work, extra)
        counts[name] = teacher_counts(work / f'stage1_{name}')
        if name == 'full':
            summary['gating_report'] = gating_report(STAGE1_CFGS[name], work, extra)
    step('6/7 summary')
    summary.update(
        ap_test100=ap, teacher_a_b_counts=counts,
        iterations={'stage0': iterations(STAGE0_CFG),
                    **{n: iterations(STAGE1_CFGS[n]) for n in args.stage1}},
        date=datetime.date.today().isoformat(),
        machine=f'{os.cpu_count()} CPU cores, Python {platform.python_version()}')
    (work / 'summary.json').write_text(json.dumps(summary, indent=2))
    step('7/7 figures')
    figure_dir = figures(work, args.stage1, extra)
    for name, m in ap.items():
        print(f'  Test100, {name:9s}: AP {m["AP"]:.4f}  AP50 {m["AP50"]:.4f}  AR {m["AR"]:.4f}')
    for name, c in counts.items():
        print(f'  Teacher A / B samples, {name}: ' + (
            f'{c["teacherA"]} / {c["teacherB"]} over {c["logged_iterations"]} logged iterations'
            if c else 'not logged by this config'))
    print(f'  geometric cache: {summary["cache_size_mb"]} MB, check: {summary["cache_check"]}')
    print(f'  written: {work / "summary.json"}')
    pngs = ', '.join(sorted(p.name for p in figure_dir.glob('*.png')))
    print(f'  figures: {figure_dir}/ ({pngs})')

if __name__ == '__main__':
    main()
