"""Training plots from mmengine's ``WORK_DIR/<timestamp>/vis_data/scalars.json``: the loss
terms, the Teacher A / B counts, L_cons' keep ratio, the gate means, the learning rate and the
validation AP, one run or several overlaid (the ablations), one small panel per quantity, so
a collapsing run or a term stuck at zero shows at a glance.

Reading: every ``scalars.json`` of a work dir is read in timestamp order (a resumed run writes
a new one); a later file's value of an iteration replaces an earlier one (a resume repeats the
iterations after its checkpoint). Training rows carry ``iter``. Validation rows carry
``step``, which mmengine's ``LoggerHook`` sets to the epoch (0 in iteration-based loops) unless
``log_metric_by_epoch=False``; a validation row with ``step`` 0 is placed at the last training
iteration logged before it, which is exact when the logger interval divides the validation
interval (as in every config here). Loss terms are mmengine's means over the log window; the
other quantities are the logged iteration's values (``LogProcessor.mean_pattern``), and the
figure says so.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .drawing import new_figure

# (panel title, its series); a series lists alternative keys (the first a run logs is drawn:
# Stage0 logs L_sup as loss_kpt). A panel is drawn when any run logs one of its series.
TRAIN_PANELS: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ('total loss', (('loss',),)),
    ('L_sup (labeled heatmap MSE)', (('loss_sup', 'loss_kpt'),)),
    ('L_cons (x lambda_cons)', (('loss_cons',),)),
    ('L_dev (x lambda_dev)', (('loss_dev',),)),
    ('L_geo_depth (x lambda_geo_depth)', (('loss_geo_depth',),)),
    ('L_geo_normal (x lambda_geo_normal)', (('loss_geo_normal',),)),
    ('unlabeled samples per batch: Teacher A / B', (('num_use_teacherA',),
                                                   ('num_use_teacherB',))),
    ('cons_keep_ratio (keypoints L_cons kept)', (('cons_keep_ratio',),)),
    ('gate means: conf / KPS', (('gate_conf',), ('gate_kps',))),
    ('learning rate', (('lr',),)),
)
AP_KEY = re.compile(r'(^|/)coco/AP$')
LINESTYLES = ('-', '--', ':', '-.')
PANEL_IN = (3.6, 2.4)
# mmengine's LogProcessor averages keys matching loss|time|grad_norm over its window and logs
# the others (counts, ratios, gate means, lr) at the logged iteration only.
LOGGED_VALUES = ('loss terms: mean over the log window (log_processor.window_size '
                 'iterations); the other panels: the value at the logged iteration')


@dataclass
class TrainingRun:
    """The logged scalars of one work dir."""

    name: str
    source: Path
    train: dict[int, dict] = field(default_factory=dict)  # iteration -> row
    val: dict[int, dict] = field(default_factory=dict)  # iteration -> validation metrics

    def series(self, key: str, val: bool = False) -> tuple[np.ndarray, np.ndarray]:
        rows = self.val if val else self.train
        its = sorted(i for i, r in rows.items() if key in r)
        return np.array(its), np.array([float(rows[i][key]) for i in its])

    def keys(self) -> set[str]:
        return {k for r in self.train.values() for k in r}

    def ap_keys(self) -> list[str]:
        return sorted({k for r in self.val.values() for k in r if AP_KEY.search(k)})


def scalars_files(work_dir: str | Path) -> list[Path]:
    """The ``scalars.json`` files of a work dir, oldest first (or the file itself)."""
    path = Path(work_dir)
    if path.is_file():
        return [path]
    files = sorted(path.glob('*/vis_data/scalars.json'))
    if not files:
        raise FileNotFoundError(f'{path}: no */vis_data/scalars.json (not an mmengine work dir, '
                                'or training logged nothing yet)')
    return files


def read_run(work_dir: str | Path, name: str | None = None) -> TrainingRun:
    """All logged scalars of ``work_dir`` (see the module docstring for the rules)."""
    path = Path(work_dir)
    run = TrainingRun(name=name or path.name, source=path)
    for file in scalars_files(path):
        last_iter = None
        for n, line in enumerate(file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f'{file}:{n}: not a JSON line ({err})') from err
            if not isinstance(row, dict):
                raise ValueError(f'{file}:{n}: expected a JSON object, got {type(row).__name__}')
            if 'iter' in row:
                last_iter = int(row['iter'])
                run.train[last_iter] = row
            elif any(AP_KEY.search(k) for k in row):
                step = int(row.get('step', 0))
                if step == 0 and last_iter is None:
                    raise ValueError(f'{file}:{n}: validation row with step 0 before any '
                                     'training row: cannot tell its iteration')
                run.val[step or last_iter] = row
    if not run.train:
        raise ValueError(f'{path}: no training row (with "iter") in {scalars_files(path)}')
    return run


def training_figure(runs: Sequence[TrainingRun], title: str = '', ncols: int = 4) -> Figure:
    """One panel per logged quantity, every run in its own colour, keys of a shared panel in
    their own line style; a panel names the runs that do not log it."""
    if not runs:
        raise ValueError('training plots: no run given')
    panels = [(t, series, False) for t, series in TRAIN_PANELS
              if any(k in r.keys() for r in runs for keys in series for k in keys)]
    ap_keys = sorted({k for r in runs for k in r.ap_keys()})
    if ap_keys:
        panels.append(('validation AP (COCO, area = bbox w x h)',
                       tuple((k,) for k in ap_keys), True))
    nrows = -(-len(panels) // ncols)
    fig = new_figure(PANEL_IN[0] * ncols, PANEL_IN[1] * nrows + 1.1)
    fig.suptitle(f'{title or "Training curves"}\n{LOGGED_VALUES}', fontsize=10)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.06, top=1 - 1.05 / fig.get_figheight(),
                        hspace=0.55, wspace=0.28)
    colors = [f'C{i % 10}' for i in range(len(runs))]
    for ax, (panel_title, series, val) in zip(axes, panels):
        missing = []
        for run, color in zip(runs, colors):
            logged = False
            for keys, ls in zip(series, LINESTYLES):
                key = next((k for k in keys if k in (run.ap_keys() if val else run.keys())),
                           None)
                its, values = run.series(key, val) if key else ((), ())
                if len(its):
                    logged = True
                    ax.plot(its, values, color=color, ls=ls, lw=1.3,
                            marker='o' if val or len(its) < 5 else None, ms=3)
            if not logged:
                missing.append(run.name)
        ax.set_title(panel_title, fontsize=9)
        ax.set_xlabel('iteration', fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(handles=[Line2D([], [], color='0.3', ls=ls, label=keys[0])
                               for keys, ls in zip(series, LINESTYLES)], fontsize=7)
        if missing:
            ax.text(0.02, 0.02, 'not logged by: ' + ', '.join(missing), fontsize=7,
                    color='0.3', transform=ax.transAxes, zorder=5,
                    bbox=dict(facecolor='white', alpha=0.8, lw=0, pad=1))
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    fig.legend(handles=[Line2D([], [], color=c, lw=2, label=r.name)
                        for r, c in zip(runs, colors)], loc='upper center', ncol=min(len(runs), 6),
               fontsize=9, frameon=False, bbox_to_anchor=(0.5, 1 - 0.5 / fig.get_figheight()))
    return fig
