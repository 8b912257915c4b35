"""Choose Stage1 settings on the validation split: variants of one method, one seed, from
Stage0's best checkpoint; each trained and read on the validation part only (never on Test100).

    .venv/bin/python tools/tune_on_val.py --stage0 work_dirs/experiments/stage0_seed0 \
        --variant lam1="semi_train_cfg=dict(lambda_cons=1.0)" \
        --variant lam10="semi_train_cfg=dict(lambda_cons=10.0)" \
        --lines r31="train_dataloader = dict(sampler=dict(source_ratio=[3, 1]))" \
        [--method baseline] [--seed 0] [--stage1-iters N] [--work-dir work_dirs/tuning]
        [--out docs/nk_sapiens/tuning_val.json]

A variant is the inside of ``model = dict(...)`` (``--variant``), merged into the method's CPU
config, and/or config lines put after it (``--lines``, for what lies outside the model: batch
composition, hooks); a name may take both. Runs go side by side (one thread each), resume like
tools/run_experiments.py, and the JSON lists per variant its overrides, the best validation
AP/AP50/AP75/AR and the iteration it was reached, and the Stage0 checkpoint's digest.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))

from run_experiments import (METHODS, best_checkpoint, code_version, config,  # noqa: E402
                             run_config, tool, val_metrics)

from nk_train.compat import checkpoint_weights_sha256  # noqa: E402
from nk_train.utils import sha256_file  # noqa: E402


def tune(name: str, overrides: str, lines: str, args, stage0: Path, work: Path,
         threads: int) -> dict:
    run_dir = work / f'{args.method}_seed{args.seed}_{name}'
    cfg = run_config(config(METHODS[args.method], 'cpu'), run_dir, args.seed, args.stage1_iters,
                     f'model = dict(init_from={str(stage0)!r}, {overrides})\n'
                     + (f'{lines}\n' if lines else ''))
    if not (run_dir / 'done').is_file():
        resume = ['--resume'] if (run_dir / 'last_checkpoint').is_file() else []
        tool(['tools/train.py', str(cfg), '--work-dir', str(run_dir), *resume],
             run_dir / 'run.log', threads)
        (run_dir / 'done').touch()
    best = best_checkpoint(run_dir)
    found = dict(overrides=overrides, best_checkpoint=best.name, val=val_metrics(run_dir, best))
    return dict(found, config_lines=lines) if lines else found


def main() -> None:
    p = argparse.ArgumentParser(description='Stage1 variants on the validation split only.')
    p.add_argument('--stage0', type=Path, required=True,
                   help='a Stage0 run folder of tools/run_experiments.py (its best_*.pth)')
    p.add_argument('--variant', action='append', default=[], metavar='NAME=OVERRIDES',
                   help='the inside of model = dict(...) for this variant')
    p.add_argument('--lines', action='append', default=[], metavar='NAME=LINES',
                   help='config lines for this variant, after its model overrides')
    p.add_argument('--method', default='baseline', choices=[m for m in METHODS])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--stage1-iters', type=int, default=None)
    p.add_argument('--work-dir', type=Path, default=Path('work_dirs/tuning'))
    p.add_argument('--out', type=Path, default=Path('docs/nk_sapiens/tuning_val.json'))
    args = p.parse_args()
    models = dict(v.split('=', 1) for v in args.variant)
    lines = dict(v.split('=', 1) for v in args.lines)
    variants = {n: (models.get(n, ''), lines.get(n, '')) for n in {**models, **lines}}
    if not variants:
        p.error('give at least one --variant or --lines')
    stage0 = best_checkpoint((ROOT / args.stage0).resolve())
    work = (ROOT / args.work_dir).resolve()
    threads = max(1, (os.cpu_count() or 1) // len(variants))
    with ThreadPoolExecutor(len(variants)) as pool:
        found = dict(zip(variants, pool.map(
            lambda kv: tune(kv[0], *kv[1], args, stage0, work, threads), variants.items())))
    for name, r in found.items():
        print(f'{name:24s} val AP {r["val"]["AP"]:.4f}  AR {r["val"]["AR"]:.4f}  '
              f'({r["best_checkpoint"]})')
    record = dict(method=args.method, seed=args.seed, stage1_iters=args.stage1_iters,
                  stage0=str(stage0.relative_to(ROOT) if stage0.is_relative_to(ROOT) else stage0),
                  # a retrained Stage0 has the same name: the weights' digest tells rounds
                  # apart (the file's also differs for the same weights saved twice)
                  stage0_sha256=sha256_file(stage0)[:12],
                  stage0_weights_sha256=checkpoint_weights_sha256(stage0)[:12],
                  # the code (configs included) a variant's overrides apply to
                  code_version=code_version(),
                  split='validation part of stats/splits/syrip_labeled.json', variants=found)
    (ROOT / args.out).write_text(json.dumps(record, indent=1) + '\n')
    print(f'written: {args.out}')


if __name__ == '__main__':
    main()
