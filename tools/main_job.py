"""The main job on the SyRIP sample: the whole NK-Sapiens pipeline with the CPU-size configs.

    .venv/bin/python tools/main_job.py [--work-dir work_dirs/main_job] [--stage1 baseline full]

Steps (each skipped when its result is already there, so a re-run resumes):
 1. skeleton statistics: check that stats/skeleton_stats.json matches the labeled file;
 2. ddp_prior: train the diffusion prior on the labeled poses;
 3. geometric cache: precompute the unlabeled split with the STAND-IN teacher, then check it;
 4. Stage0: supervised training, then COCO AP on Test100;
 5. Stage1 (baseline, full): semi-supervised training from the Stage0 checkpoint, then AP;
 6. summary: AP per stage, Teacher A/B counts, cache size and check status.
"""
from __future__ import annotations

import argparse
import json
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
               'full': f'{CFG}/stage1_ssl_full_cpu.py'}
AP = re.compile(r'coco/AP: (-?\d+\.\d+)')


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


def ensure_cache() -> str:
    check = ['tools/check_cache.py', '--config', GEO_CFG, '--split', 'unlabeled']
    if subprocess.run([sys.executable, *check], cwd=ROOT, capture_output=True).returncode != 0:
        exists = (ROOT / 'cache/geo_cpu/unlabeled/manifest.json').is_file()
        run('precompute/geo_cache.py', '--split', 'unlabeled', '--config', GEO_CFG,
            '--no-progress', *(['--resume'] if exists else []))
    return run(*check, '--full').strip().splitlines()[-1]


def train_and_test(name: str, cfg: str, work: Path, extra: list[str]) -> float:
    wd = work / name
    if not (wd / 'done').is_file():  # written once training finished
        resume = ['--resume'] if (wd / 'last_checkpoint').is_file() else []
        run('tools/train.py', cfg, '--work-dir', str(wd), *resume, *extra)
        (wd / 'done').touch()
    ckpt = (wd / 'last_checkpoint').read_text().strip()
    out = run('tools/test.py', cfg, '--checkpoint', ckpt, '--work-dir', str(wd / 'test'),
              *extra, log=wd / 'test.log')
    found = AP.findall(out)
    if not found:
        raise SystemExit(f'main_job: no COCO AP in {wd / "test.log"}')
    return float(found[-1])


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/main_job')
    parser.add_argument('--stage1', nargs='*', default=list(STAGE1_CFGS),
                        choices=list(STAGE1_CFGS))
    args = parser.parse_args()
    work = (ROOT / args.work_dir).resolve()
    summary = {}

    step('1/6 skeleton statistics')
    summary['skeleton_stats'] = check_stats()
    step('2/6 ddp_prior')
    prior = ensure_prior(work)
    step('3/6 geometric cache (stand-in teacher)')
    summary['cache_check'] = ensure_cache()
    size = sum(f.stat().st_size for f in (ROOT / 'cache/geo_cpu/unlabeled').rglob('*')
               if f.is_file())
    summary['cache_size_mb'] = round(size / 2 ** 20, 1)
    step('4/6 Stage0')
    ap = {'stage0': train_and_test('stage0', STAGE0_CFG, work, [])}
    stage0_ckpt = (work / 'stage0' / 'last_checkpoint').read_text().strip()
    counts = {}
    for name in args.stage1:
        step(f'5/6 Stage1 {name}')
        extra = ['--cfg-options', f'model.init_from={stage0_ckpt}',
                 f'model.ddp_prior.checkpoint={prior}']
        ap[name] = train_and_test(f'stage1_{name}', STAGE1_CFGS[name], work, extra)
        counts[name] = teacher_counts(work / f'stage1_{name}')
    step('6/6 summary')
    summary.update(ap_test100=ap, teacher_a_b_counts=counts)
    (work / 'summary.json').write_text(json.dumps(summary, indent=2))
    for name, value in ap.items():
        print(f'  AP on Test100, {name:9s}: {value:.4f}')
    for name, c in counts.items():
        print(f'  Teacher A / B samples, {name}: ' + (
            f'{c["teacherA"]} / {c["teacherB"]} over {c["logged_iterations"]} logged iterations'
            if c else 'not logged by this config'))
    print(f'  geometric cache: {summary["cache_size_mb"]} MB, check: {summary["cache_check"]}')
    print(f'  written: {work / "summary.json"}')


if __name__ == '__main__':
    main()
