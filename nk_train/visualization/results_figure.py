"""The results figure: AP per method, with its interval where the results say one.

Readers turn a results source into a ``ResultsTable``; the figure draws any table:
* a results JSON with ``methods: [{name, ap, interval: [lo, hi] | null}]`` plus ``metric``,
  ``interval_label`` (what the interval is, e.g. a 95 % bootstrap over test images) and
  ``note``: what ``tools/run_experiments.py`` writes (``docs/nk_sapiens/results.json`` is the
  recorded experiment: each method's Test100 AP minus the control's, paired intervals);
* the main job's ``summary.json`` (``ap_test100``: one seed, no interval).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .drawing import TEACHER_A_COLOR, new_figure

TEST100 = 'COCO AP on SyRIP Test100'
NO_INTERVAL = ('no interval: one seed on one 100-image test set, the run-to-run spread is '
               'not measured')
# Every main job run builds its geometric cache with the stand-in teacher (no depth weights).
MAIN_JOB_NOTE = ('CMGC rows (+CMGC, +DDP+CMGC, Full) use the STAND-IN geometric teacher: they '
                 'test the machinery, not the method\nStage1 rows start from the Stage0 '
                 'checkpoint: their iterations come on top of Stage0\'s')


@dataclass(frozen=True)
class MethodAP:
    name: str
    ap: float
    interval: tuple[float, float] | None = None
    iterations: int | None = None  # training iterations of the run, where the source says

    @property
    def label(self) -> str:
        return self.name if self.iterations is None else f'{self.name}, {self.iterations} it.'


@dataclass(frozen=True)
class ResultsTable:
    methods: tuple[MethodAP, ...]
    source: str
    metric: str = TEST100
    interval_label: str | None = None  # None: no method has an interval
    note: str = ''


def read_results(path: str | Path) -> ResultsTable:
    """A ``ResultsTable`` from a results or main job summary JSON file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'results file not found: {path}')
    table = _read_json(path)
    if not table.methods:
        raise ValueError(f'{path}: no method in the results')
    return table


def _read_json(path: Path) -> ResultsTable:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f'{path}: not JSON ({err})') from err
    if 'methods' in data:
        methods = []
        for i, m in enumerate(data['methods']):
            try:
                interval = m.get('interval')
                methods.append(MethodAP(str(m['name']), float(m['ap']), None if interval is None
                                        else (float(interval[0]), float(interval[1]))))
            except (KeyError, TypeError, IndexError, ValueError) as err:
                raise ValueError(f'{path}: methods[{i}] needs name, ap and an optional '
                                 f'interval [lo, hi] ({err!r})') from err
        has_interval = any(m.interval is not None for m in methods)
        if has_interval and not data.get('interval_label'):
            raise ValueError(f'{path}: intervals given without interval_label (what are they?)')
        return ResultsTable(tuple(methods), str(path), data.get('metric', TEST100),
                            data.get('interval_label') if has_interval else None,
                            data.get('note', ''))
    if 'ap_test100' in data:  # tools/main_job.py's summary.json
        try:
            its = data.get('iterations', {})
            methods = [MethodAP(name, float(m['AP']), iterations=its.get(name))
                       for name, m in data['ap_test100'].items()]
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f'{path}: ap_test100 entries need an AP ({err!r})') from err
        return ResultsTable(tuple(methods), str(path), note=MAIN_JOB_NOTE)
    raise ValueError(f'{path}: neither a results file ("methods") nor a main job summary '
                     '("ap_test100")')


def results_figure(table: ResultsTable) -> Figure:
    """AP per method (table order, top to bottom), the interval as an error bar, the first
    method's AP as a dotted reference line."""
    methods = table.methods
    fig = new_figure(7.5, 1.7 + 0.36 * len(methods))
    ax = fig.add_subplot()
    height = fig.get_figheight()
    fig.subplots_adjust(left=0.33, right=0.97, top=1 - 1.15 / height, bottom=0.5 / height)
    y = np.arange(len(methods))[::-1]
    ap = np.array([m.ap for m in methods])
    err = np.array([[m.ap - m.interval[0], m.interval[1] - m.ap] if m.interval else [0, 0]
                    for m in methods]).T
    ax.errorbar(ap, y, xerr=err if table.interval_label else None, fmt='o',
                color=TEACHER_A_COLOR, ecolor='black', capsize=3, ms=6)
    ax.axvline(ap[0], color='0.5', ls=':', lw=1)
    for yi, m in zip(y, methods):
        text = f'{m.ap:.4f}' + (f'  [{m.interval[0]:.4f}, {m.interval[1]:.4f}]'
                                if m.interval else '')
        ax.annotate(text, (m.ap, yi), xytext=(0, 6), textcoords='offset points', fontsize=7,
                    ha='center')
    ax.set_yticks(y, [m.label for m in methods], fontsize=8)
    ends = np.array([m.interval for m in methods if m.interval] + [(a, a) for a in ap])
    lo, hi = ends.min(), ends.max()
    pad = max(0.02, 0.15 * (hi - lo))
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(-0.6, len(methods) - 0.3)
    ax.set_xlabel(f'AP; dotted line: {methods[0].name}', fontsize=8)
    ax.tick_params(axis='x', labelsize=7)
    ax.grid(axis='x', alpha=0.3)
    fig.text(0.02, 1 - 0.08 / height, f'AP per method ({table.metric})', fontsize=10,
             fontweight='bold', va='top')
    lines = [table.interval_label or NO_INTERVAL, table.note, f'source: {table.source}']
    fig.text(0.02, 1 - 0.36 / height, '\n'.join(line for line in lines if line), fontsize=7.5,
             va='top', color='0.25')
    return fig
