"""The research protocol's experiment: methods x seeds, checkpoint selection on the validation
split, one evaluation on Test100 per final checkpoint, means, spreads and paired intervals.

    .venv/bin/python tools/run_experiments.py [--work-dir work_dirs/experiments]
        [--methods control baseline ddp cmgc ddp_cmgc full ddp_gate] [--seeds 0 1 2]
        [--size cpu|full] [--stage0-iters N] [--stage1-iters N] [--one-stage0] [--jobs 2]
        [--record docs/nk_sapiens/RESULTS.md]

Per seed s: Stage0 (seed s, labeled train part, the best checkpoint on the validation part;
``--one-stage0``: the first seed's Stage0 for all), then every method from that checkpoint
with seed s: ``control`` (Stage0 continued on labeled crops only, same schedule, EMA teacher
and evaluation as Stage1: ``stage1_control*.py``) and the Stage1 ablations. Each run keeps its
best checkpoint on the validation split (its EMA teacher's AP, like every Stage1 row) and is
evaluated on Test100 once, its predictions kept. ``results.json`` then holds per method the
mean and standard deviation over seeds of AP, AP50, AP75 and AR on the validation split and
on Test100, and for every method against the control (and each component alone: L_dev, CMGC,
the gate; Full against Baseline) the paired difference with a 95 % bootstrap interval over
Test100 images and seeds (``nk_train.evaluation.paired_bootstrap``). ``--record RESULTS.md``
writes that file, ``results.json`` beside it and its figure (``figures/results_ap.png``: ΔAP
against the control with the intervals, ``tools/visualize.py results``).

Resumable: a finished run (``RUN/result.json``) is skipped, an interrupted one resumes from
its last checkpoint. ``--jobs`` runs that many trainings side by side (CPU cores shared out
as OpenMP threads). ``--size full`` takes the full-size configs (GPU nodes); ``--stage0-iters``
/ ``--stage1-iters`` rescale a schedule (warm-up and decay steps keep their fractions).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'tools'))

from main_job import check_stats, ensure_cache, ensure_prior, step, teacher_counts  # noqa: E402

from nk_train.compat import checkpoint_weights_sha256  # noqa: E402
from nk_train.utils import sha256_file  # noqa: E402

CFG = ROOT / 'configs/nk_sapiens/infant'
METHODS = {'control': 'stage1_control', 'baseline': 'stage1_ssl_baseline',
           'ddp': 'stage1_ablation_ddp', 'cmgc': 'stage1_ablation_cmgc',
           'ddp_cmgc': 'stage1_ablation_ddp_cmgc', 'full': 'stage1_ssl_full',
           'ddp_gate': 'stage1_ablation_ddp_gate'}
NAMES = {'control': 'Control (Stage0 continued, labeled only)',
         'baseline': 'Baseline (L_sup + L_cons)', 'ddp': '+DDP (L_dev)', 'cmgc': '+CMGC',
         'ddp_cmgc': '+DDP+CMGC', 'full': 'Full (gating + L_dev + CMGC)',
         'ddp_gate': '+DDP+gate (no CMGC)'}
STAND_IN = {'cmgc', 'ddp_cmgc', 'full'}  # rows whose CMGC maps come from the stand-in teacher
METRICS = ('AP', 'AP50', 'AP75', 'AR')
LOG_NAMES = {'AP': 'AP', 'AP50': 'AP .5', 'AP75': 'AP .75', 'AR': 'AR'}
# Every row against the control; then each NK component on its own: L_dev (+DDP vs
# Baseline), CMGC (+CMGC vs Baseline), the gate (Full vs +DDP+CMGC; +DDP+gate vs +DDP, without
# the geometric teacher), and the NK additions together over Baseline (Full; +DDP+gate).
DEFAULT_METHODS = [m for m in METHODS if m != 'ddp_gate']  # the table; +DDP+gate on demand
COMPARISONS = ([(m, 'control') for m in METHODS if m != 'control']
               + [('ddp', 'baseline'), ('cmgc', 'baseline'), ('full', 'ddp_cmgc'),
                  ('ddp_gate', 'ddp'), ('full', 'baseline'), ('ddp_gate', 'baseline')])


def config(name: str, size: str) -> Path:
    return CFG / (f'{name}_cpu.py' if size == 'cpu' else f'{name}.py')


def run_config(base: Path, run_dir: Path, seed: int, iters: int | None,
               overrides: str = '') -> Path:
    """``RUN/config.py``: the base config, the seed and (if ``iters``) its schedule rescaled."""
    from mmengine.config import Config

    lines = [f'_base_ = [{str(base)!r}]', f'randomness = dict(seed={seed})']
    if iters:
        cfg = Config.fromfile(str(base))
        scale = iters / cfg.train_cfg.max_iters
        sched = []
        for p in cfg.param_scheduler:
            p = dict(p, begin=round(p['begin'] * scale), end=round(p['end'] * scale))
            if 'milestones' in p:
                p['milestones'] = [round(m * scale) for m in p['milestones']]
            sched.append(p)
        interval = max(1, round(cfg.train_cfg.val_interval * scale))
        lines += [f'train_cfg = dict(max_iters={iters}, val_interval={interval})',
                  f'param_scheduler = {sched!r}',
                  f'default_hooks = dict(checkpoint=dict(interval={interval}))']
    path = run_dir / 'config.py'
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text('\n'.join(lines) + '\n' + overrides)
    check_inputs(run_dir, path)
    return path


def check_inputs(run_dir: Path, cfg: Path) -> None:
    """Refuse to resume or reuse a run whose inputs changed since it started: the resolved
    config (seed, schedule, size, every base file's values) and the checkpoint it starts from
    (``RUN/inputs.json``, written when the run first starts)."""
    from mmengine.config import Config

    resolved = Config.fromfile(str(cfg))
    init = (resolved.get('model') or {}).get('init_from')
    now = dict(config_sha256=hashlib.sha256(resolved.pretty_text.encode()).hexdigest(),
               # a missing file is left to training to refuse; its path stands in here
               init_from_sha256=sha256_file(init) if init and Path(init).is_file() else init)
    record = run_dir / 'inputs.json'
    if not record.is_file():
        record.write_text(json.dumps(now, indent=1) + '\n')
        return
    before = json.loads(record.read_text())
    changed = [k for k in now if before.get(k) != now[k]]
    if changed:
        raise SystemExit(f'{run_dir} was started with other inputs ({", ".join(changed)} '
                         'differ: another seed, schedule, size, config edit or Stage0 '
                         'checkpoint): delete that folder to run it again, or pass another '
                         '--work-dir')


def tool(args: list[str], log: Path, threads: int = 1) -> str:
    """A repo tool in a subprocess with ``threads`` OpenMP threads; its output goes to
    ``log``."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    with open(log, 'a') as f:
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, stdout=f,
                              stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise SystemExit(f'run_experiments: failed ({log}): {" ".join(args)}\n'
                         + log.read_text()[-3000:])
    return log.read_text()


def repo_relative(path: Path) -> str:
    """``path`` as recorded in results: relative to the checkout when inside it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def best_checkpoint(run_dir: Path) -> Path:
    found = sorted(run_dir.glob('best_*.pth'))
    if len(found) != 1:
        raise SystemExit(f'{run_dir}: expected one best_*.pth (save_best on the validation '
                         f'split), found {[p.name for p in found]}')
    return found[0]


def val_metrics(run_dir: Path, best: Path) -> dict[str, float]:
    """Validation metrics at the best checkpoint's iteration, from the training log."""
    it = int(re.search(r'iter_(\d+)', best.name).group(1))
    rows = [json.loads(x) for f in sorted(run_dir.glob('*/vis_data/scalars.json'))
            for x in f.read_text().splitlines()]
    for row in rows:
        if row.get('step') == it and any(k.endswith('coco/AP') for k in row):
            prefix = next(k for k in row if k.endswith('coco/AP'))[:-2]
            return {m: float(row[prefix + LOG_NAMES[m]]) for m in METRICS}
    raise SystemExit(f'{run_dir}: no validation row at iteration {it} in scalars.json')


def code_version() -> str:
    """The checkout's commit, marked ``+changes`` when the working tree differs from it."""
    def git(*argv: str) -> str:
        return subprocess.run(['git', *argv], cwd=ROOT, capture_output=True, text=True).stdout

    commit = git('rev-parse', '--short=12', 'HEAD').strip() or 'not a git checkout'
    return commit + (' +changes' if git('status', '--porcelain', '--untracked-files=no').strip()
                     else '')


def train_select_test(cfg: Path, run_dir: Path, threads: int = 1) -> dict:
    """Train (or resume), keep the best checkpoint on val, evaluate it once on Test100."""
    result = run_dir / 'result.json'
    if result.is_file():
        return json.loads(result.read_text())
    log = run_dir / 'run.log'
    done = run_dir / 'done'  # holds the training's wall-clock seconds (this session's part)
    code = run_dir / 'code_version'  # the code the training started with (resumes keep it)
    if not code.is_file():
        code.write_text(code_version() + '\n')
    if not done.is_file():
        resume = ['--resume'] if (run_dir / 'last_checkpoint').is_file() else []
        start = time.monotonic()
        tool(['tools/train.py', str(cfg), '--work-dir', str(run_dir), *resume], log, threads)
        done.write_text(f'{time.monotonic() - start:.0f}\n')
    best = best_checkpoint(run_dir)
    out = tool(['tools/test.py', str(cfg), str(best), '--work-dir', str(run_dir / 'test'),
                '--cfg-options', f'test_evaluator.outfile_prefix={run_dir / "test100"}'],
               run_dir / 'test.log', threads)
    test = {m: float(re.findall(r'coco/' + re.escape(LOG_NAMES[m]) + r': (-?\d+\.\d+)',
                                out)[-1]) for m in METRICS}
    record = dict(checkpoint=repo_relative(best),
                  val=val_metrics(run_dir, best), test100=test,
                  train_seconds=float(done.read_text() or 'nan'),
                  code_version=code.read_text().strip(),
                  teacher_a_b=teacher_counts(run_dir),
                  predictions=repo_relative(run_dir / 'test100.keypoints.json'))
    result.write_text(json.dumps(record, indent=1))
    return record


def stage0(seed: int, args, work: Path, threads: int) -> Path:
    run_dir = work / f'stage0_seed{seed}'
    cfg = run_config(config('stage0_supervised', args.size), run_dir, seed, args.stage0_iters)
    train_select_test(cfg, run_dir, threads)
    return best_checkpoint(run_dir)


def method_run(method: str, seed: int, stage0_ckpt: Path, prior: Path, args,
               work: Path) -> dict:
    run_dir = work / f'{method}_seed{seed}'
    overrides = (f'model = dict(init_from={str(stage0_ckpt)!r}, '
                 f'ddp_prior=dict(checkpoint={str(prior)!r}))\n')
    cfg = run_config(config(METHODS[method], args.size), run_dir, seed, args.stage1_iters,
                     overrides)
    return train_select_test(cfg, run_dir, max(1, (os.cpu_count() or 1) // args.jobs))


def summarize(runs: dict, methods: list[str], seeds: list[int], samples: int,
              stand_in: bool) -> dict:
    """Means, standard deviations and paired intervals (see the module docstring)."""
    from nk_train.coco_keypoints import normalize_coco_keypoint_gt
    from nk_train.evaluation.paired_bootstrap import instance_oks, paired_bootstrap
    from nk_train.skeleton import load_skeleton

    from mmengine.config import Config

    data = Config.fromfile(str(CFG / '_base_/infant_data.py'))
    gt = normalize_coco_keypoint_gt(json.loads(
        (ROOT / data.data_root / data.test_ann).read_text()))
    sigmas = load_skeleton().sigmas
    scores = {m: [instance_oks(gt, json.loads((ROOT / runs[m, s]['predictions']).read_text()),
                               sigmas) for s in seeds] for m in methods}
    table = {}
    for m in methods:
        table[m] = {split: {k: dict(mean=float(np.mean([runs[m, s][split][k] for s in seeds])),
                                    std=float(np.std([runs[m, s][split][k] for s in seeds],
                                                     ddof=1)) if len(seeds) > 1 else None)
                            for k in METRICS} for split in ('val', 'test100')}
    intervals = {}
    for a, b in COMPARISONS:
        if a in methods and b in methods:
            intervals[f'{a} - {b}'] = {k: paired_bootstrap(scores[a], scores[b], k, samples)
                                       .as_dict() for k in ('AP', 'AR')}
    return dict(table=table, intervals=intervals,
                methods=figure_rows(table, intervals, stand_in))


def figure_rows(table: dict, intervals: dict, stand_in: bool) -> list[dict]:
    """``tools/visualize.py results`` rows: each method's Test100 AP minus the control's, with
    its paired interval (the control itself at 0)."""
    rows = [dict(name=NAMES['control'], ap=0.0, interval=None)] if 'control' in table else []
    for m in table:
        iv = intervals.get(f'{m} - control')
        if iv:
            rows.append(dict(name=NAMES[m] + (' ¹' if stand_in and m in STAND_IN else ''),
                             ap=iv['AP']['mean'], interval=[iv['AP']['low'], iv['AP']['high']]))
    return rows


def stage0_record(checkpoint: Path) -> dict:
    """Which Stage0 a round started from: its file's digest and its weights' digest. Only the
    weights' tell two Stage0s apart: the same weights saved by two runs differ as files."""
    return dict(checkpoint=repo_relative(checkpoint), sha256=sha256_file(checkpoint)[:12],
                weights_sha256=checkpoint_weights_sha256(checkpoint)[:12])


def other_stage0(record: dict, stage0s: list[dict]) -> str:
    """'' when a tuning record started from this round's Stage0 (or cannot be compared), else
    why not: by the weights' digest where both have one, else by the file's (which also
    differs for the same weights saved twice, and says so)."""
    if not stage0s or 'stage0_sha256' not in record:
        return ''
    weights = record.get('stage0_weights_sha256')
    if weights and all('weights_sha256' in s for s in stage0s):
        return ('' if weights in {s['weights_sha256'] for s in stage0s}
                else ', NOT this round\'s Stage0 (other weights)')
    return ('' if record['stage0_sha256'] in {s['sha256'] for s in stage0s}
            else ', NOT this round\'s Stage0 file (weights not compared)')


def comparison_name(pair: str, stand_in: bool = False) -> str:
    """'A − B' for a ``results.json`` interval key 'a - b' (``stand_in``: CMGC rows marked ¹)."""
    return ' − '.join(NAMES[m] + (' ¹' if stand_in and m in STAND_IN else '')
                      for m in pair.split(' - '))


def interval_text(d: dict) -> str:
    """'+m [+lo, +hi]' of one paired difference (an interval's ``as_dict()``)."""
    return f'{d["mean"]:+.4f} [{d["low"]:+.4f}, {d["high"]:+.4f}]'


def verdict(iv: dict) -> str:
    """Where the interval lies relative to no difference."""
    return ('above 0' if iv['low'] > 0 else 'below 0' if iv['high'] < 0 else 'includes 0')


def digests_text(sha256: str, weights_sha256: str | None) -> str:
    """How a Stage0 is named in the records: its file's digest, and its weights' where known."""
    return f'sha256 {sha256}…' + (f', weights {weights_sha256}…' if weights_sha256 else '')


def stage0_digests(rec: dict) -> str:
    """' (sha256 F…, weights W…)' of a tuning record's Stage0, as far as it recorded them."""
    if 'stage0_sha256' not in rec:
        return ' (its digest not recorded: maybe another Stage0 of that name)'
    return f' ({digests_text(rec["stage0_sha256"], rec.get("stage0_weights_sha256"))})'


def tuning_lines(records: list[Path], stage0s: list[dict] | None = None) -> list[str]:
    """What tools/tune_on_val.py tried on the validation split, from its records; a record
    from another Stage0 than this round's (``stage0s``, as ``stage0_record`` writes them)
    says so, as its val AP is then not comparable with this round's rows."""
    if not records:
        return ['No tuning record (docs/nk_sapiens/tuning_val*.json): the Stage1 settings are '
                'the configs\' first guesses.', '']
    lines = []
    for path in records:
        rec = json.loads(path.read_text())
        lines += [f'Stage1 settings tried on the validation split only '
                  f'(`tools/tune_on_val.py`, {rec["method"]}, seed {rec["seed"]}, '
                  f'{rec["stage1_iters"] or "config"} iterations, from `{rec["stage0"]}`'
                  + stage0_digests(rec) + other_stage0(rec, stage0s or [])
                  + '; '
                  f'`{path.relative_to(ROOT)}`):', '',
                  '| variant | overrides | val AP | val AR |', '|---|---|---|---|']
        for name, v in rec['variants'].items():
            change = '; '.join(f'`{c}`' for c in (v['overrides'], v.get('config_lines')) if c)
            plain = (f'(the config at {rec["code_version"]})' if 'code_version' in rec
                     else '(the config as it was)')
            lines.append(f'| {name} | {change or plain} | '
                         f'{v["val"]["AP"]:.4f} | {v["val"]["AR"]:.4f} |')
        lines.append('')
    return lines


def markdown(summary: dict, args, argv: list[str]) -> str:
    """The RESULTS.md text (generated: do not edit). Every sentence that reads the numbers is
    derived from them here, so a re-run cannot leave a stale claim behind."""
    seeds = ', '.join(map(str, args.seeds))
    runs = summary['runs']
    hours = sum(r.get('train_seconds', 0) for r in runs.values()) / 3600
    lines = [
        '# NK-Sapiens — recorded CPU experiment (SyRIP sample)', '',
        f'Generated by `.venv/bin/python tools/run_experiments.py {" ".join(argv)}` on '
        f'{summary["date"]} ({summary["machine"]}; {hours:.1f} h of training wall-clock, '
        'counting each run\'s last session); re-run '
        'it to regenerate this file and its figure (do not edit by hand). Code the runs '
        'started with: ' + ', '.join(sorted({r.get('code_version', 'not recorded')
                                              for r in runs.values()})) + '.', '',
        f'Protocol (PROTOCOL.md §1, §7): seeds {seeds}; '
        + ('one Stage0 (seed {}) trains on the labeled train part and every row of every seed '
           'starts from its best checkpoint on the validation part, so the seeds vary Stage1 '
           'only (data order, augmentation, EMA) and the spread below leaves out Stage0\'s; '
           .format(args.seeds[0]) if args.one_stage0 else
           'per seed, Stage0 trains on the labeled train part and every row starts from its '
           'best checkpoint on the validation part; ')
        + 'each row keeps its best checkpoint on the validation part '
        f'({summary["val_images"]} labeled images held out by '
        '`stats/splits/syrip_labeled.json`) and is evaluated once on Test100. The control is '
        'Stage0 continued for as many iterations as Stage1, same schedule, batch size and EMA '
        'teacher, labeled crops only (`stage1_control*.py`). Every number is the EMA '
        'teacher\'s (`semi_test_cfg.forward_on=teacher`), the control\'s included. COCO '
        'keypoint metrics with area = bbox w x h; mean ± standard deviation over seeds.'
        + ''.join(f' Stage0 of seed {s}: `{d["checkpoint"]}` '
                  f'({digests_text(d["sha256"], d.get("weights_sha256"))}).'
                  for s, d in summary.get('stage0', {}).items()), '',
        '| method | val AP | Test100 AP | Test100 AP50 | Test100 AP75 | Test100 AR |',
        '|---|---|---|---|---|---|']
    fmt = lambda d: f'{d["mean"]:.4f}' + (f' ± {d["std"]:.4f}' if d['std'] is not None  # noqa: E731
                                         else '')
    for m, row in summary['table'].items():
        mark = ' ¹' if m in STAND_IN and args.size == 'cpu' else ''
        lines.append(f'| {NAMES[m]}{mark} | {fmt(row["val"]["AP"])} | '
                     + ' | '.join(fmt(row['test100'][k]) for k in METRICS) + ' |')
    lines += ['', 'Paired differences on Test100 (mean over seeds; 95 % percentile interval of '
              f'{args.bootstrap_samples} bootstrap draws of test images and seeds, the same '
              'draw for both rows):', '',
              '| comparison | ΔAP [95 % interval] | ΔAR [95 % interval] | ΔAP interval |',
              '|---|---|---|---|']
    for name, iv in summary['intervals'].items():
        lines.append(f'| {comparison_name(name)} | {interval_text(iv["AP"])} | '
                     f'{interval_text(iv["AR"])} | {verdict(iv["AP"])} |')
    lines += ['', '![ΔAP against the control](figures/results_ap.png)', '']
    lines += tuning_lines(sorted((ROOT / 'docs/nk_sapiens').glob('tuning_val*.json')),
                          list(summary.get('stage0', {}).values()))
    lines += ['## What this shows and does not show', '']
    base = summary['intervals'].get('baseline - control')
    if base:
        met = base['AP']['mean'] >= 0.02 and base['AP']['low'] > 0
        lines.append(f'- Goal "Baseline at least 2 AP above the equal-compute control on '
                     f'Test100, interval above 0": {"met" if met else "NOT met"} (ΔAP '
                     f'{interval_text(base["AP"])}).')
    table = summary['table']
    if 'baseline' in table and 'control' in table:
        d = {s: table['baseline'][s]['AP']['mean'] - table['control'][s]['AP']['mean']
             for s in ('val', 'test100')}
        lines.append(f'- Baseline − control: {d["val"]:+.4f} AP on the validation part (where '
                     f'the Stage1 settings were chosen), {d["test100"]:+.4f} on Test100.')
    stage1 = [r['train_seconds'] for k, r in runs.items() if not k.startswith('stage0')]
    if stage1:
        lines.append(f'- Training wall-clock per run (this machine, its cores shared with the '
                     f'other runs in flight; --jobs {args.jobs} in the last invocation): '
                     f'{np.mean(stage1) / 60:.1f} min on average, {max(stage1) / 60:.1f} min at '
                     'most.')
    lines += [
        '- A val AP of settings picked on the validation part (the tuning rounds above) is '
        'biased upward by that pick, the best of several variants; the Test100 numbers are not '
        '(Test100 chose nothing).',
        '- An interval that includes 0 means this experiment cannot tell that row from the one '
        'it is compared with; it does not show that they are equal.',
        f'- {len(args.seeds)} seeds and a {summary["val_images"]}-image validation part: the '
        'checkpoint choice itself is noisy, and the seed spread is estimated from few runs.',
        *(['- CPU-size models (a 4-layer ViT from scratch at 128x96), not Sapiens-0.3b from '
           'its pretrain: nothing here predicts the size of a gain at full size.']
          if args.size == 'cpu' else []),
        *(['- ¹ CMGC rows use the STAND-IN geometric teacher (seeded random weights; no '
           'depth/normal weights can be downloaded here): they test the machinery, they do not '
           'measure the method.'] if args.size == 'cpu' else []),
        '- The control matches Stage1 in student forward/backward passes per iteration, not in '
        'all compute: Stage1 also runs the EMA teacher on the unlabeled weak views (and the '
        'ddp_prior and CMGC terms where enabled).', '']
    return '\n'.join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description='The research protocol\'s experiment: methods x '
                                'seeds, selection on val, one Test100 evaluation per run.')
    p.add_argument('--work-dir', default='work_dirs/experiments')
    p.add_argument('--methods', nargs='+', default=DEFAULT_METHODS, choices=list(METHODS))
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--size', choices=('cpu', 'full'), default='cpu')
    p.add_argument('--stage0-iters', type=int, default=None)
    p.add_argument('--stage1-iters', type=int, default=None)
    p.add_argument('--one-stage0', action='store_true',
                   help='one Stage0 (the first seed) starts every seed: seeds then vary Stage1 '
                        'only (data order, augmentation, EMA), which halves a CPU run')
    p.add_argument('--jobs', type=int, default=2, help='trainings side by side')
    p.add_argument('--bootstrap-samples', type=int, default=2000)
    p.add_argument('--record', type=Path, help='also write the results table here')
    args = p.parse_args()
    if 'control' not in args.methods:
        p.error('the control is what every method is read against: keep it in --methods')
    work = (ROOT / args.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)

    step('inputs: skeleton statistics, ddp_prior, geometric cache')
    check_stats()
    prior = ensure_prior(work)
    if args.size == 'cpu' and set(args.methods) & STAND_IN:
        ensure_cache()
    jobs = [(m, s) for s in args.seeds for m in args.methods]
    bar = tqdm(total=(1 if args.one_stage0 else len(args.seeds)) + len(jobs), desc='runs',
               unit='run')
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        stage0_seeds = args.seeds[:1] if args.one_stage0 else args.seeds
        threads = max(1, (os.cpu_count() or 1) // min(args.jobs, len(stage0_seeds)))
        trained = dict(zip(stage0_seeds, pool.map(lambda s: stage0(s, args, work, threads),
                                                  stage0_seeds)))
        stage0_ckpts = {s: trained[stage0_seeds[0] if args.one_stage0 else s] for s in args.seeds}
        bar.update(len(stage0_seeds))
        futures = {(m, s): pool.submit(method_run, m, s, stage0_ckpts[s], prior, args, work)
                   for m, s in jobs}
        runs = {}
        for key, fut in futures.items():
            runs[key] = fut.result()
            bar.update(1)
            bar.set_postfix_str(f'{key[0]} seed {key[1]}: val AP {runs[key]["val"]["AP"]:.3f}')
    bar.close()
    summary = summarize(runs, args.methods, args.seeds, args.bootstrap_samples,
                        stand_in=args.size == 'cpu')
    summary.update(
        date=datetime.date.today().isoformat(), seeds=args.seeds, size=args.size,
        machine=f'{os.cpu_count()} CPU cores, Python {platform.python_version()}',
        val_images=len(json.loads((ROOT / 'stats/splits/syrip_labeled.json').read_text())
                       ['parts']['val']['image_ids']),
        runs={f'{m}_seed{s}': r for (m, s), r in runs.items()},
        stage0={str(s): stage0_record(c) for s, c in trained.items()})
    summary.update(
        metric='Test100 AP minus the equal-compute control (mean over seeds)',
        interval_label='95 % paired bootstrap interval over Test100 images and seeds',
        note=('¹ CMGC rows use the STAND-IN geometric teacher: machinery, not the method'
              if args.size == 'cpu' else ''))
    results = work / 'results.json'
    results.write_text(json.dumps(summary, indent=1))
    print(markdown(summary, args, sys.argv[1:]))
    print(f'written: {results}')
    if args.record:  # RESULTS.md, results.json beside it (committed) and its figure
        record = ROOT / args.record
        record.parent.mkdir(parents=True, exist_ok=True)
        (record.parent / 'results.json').write_text(json.dumps(summary, indent=1))
        figure = record.parent / 'figures' / 'results_ap.png'
        source = record.parent / 'results.json'  # named in the figure: repo-relative
        subprocess.run([sys.executable, 'tools/visualize.py', 'results', '--results',
                        str(source.relative_to(ROOT) if source.is_relative_to(ROOT) else source),
                        '--out', str(figure)], cwd=ROOT, check=True)
        record.write_text(markdown(summary, args, sys.argv[1:]))
        print(f'written: {record}, {record.parent / "results.json"}, {figure}')


if __name__ == '__main__':
    main()
