"""The results figure: each recorded round's figure (RESULTS.md and a later round's folder) is
the one its command regenerates from the committed results.json beside it (and small), its
rows are the ΔAP cells that RESULTS.md prints, a results file with intervals draws them, and
unreadable results are refused naming the file."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nk_train.visualization.results_figure import read_results, results_figure

ROOT = Path(__file__).resolve().parents[2]
RECORDS = sorted((ROOT / 'docs/nk_sapiens').glob('**/RESULTS.md'))
each_record = pytest.mark.parametrize('record', RECORDS,
                                      ids=[str(r.parent.relative_to(ROOT)) for r in RECORDS])


def test_both_rounds_are_found():
    assert {r.parent.name for r in RECORDS} >= {'nk_sapiens', 'round2'}


@each_record
def test_figure_rows_are_the_recorded_differences(record):
    """Each method against the control, as RESULTS.md prints it (read with a regular
    expression, not the reader)."""
    cells = {m[1]: (float(m[2]), float(m[3]), float(m[4])) for m in re.finditer(
        r'^\| (.+?) − Control \(Stage0 continued, labeled only\) \| ([+-]\d\.\d+) '
        r'\[([+-]\d\.\d+), ([+-]\d\.\d+)\]', record.read_text(), re.M)}
    assert cells, 'RESULTS.md has no comparison against the control'
    table = read_results(record.parent / 'results.json')
    rows = {m.name.removesuffix(' ¹'): (round(m.ap, 4), round(m.interval[0], 4),
                                       round(m.interval[1], 4))
            for m in table.methods if m.interval is not None}
    assert rows == cells
    assert table.interval_label and 'bootstrap' in table.interval_label


@each_record
def test_embedded_figure_is_regenerated_by_its_command(record, tmp_path):
    embedded = re.search(r'!\[[^]]*\]\(([^)]+)\)', record.read_text())
    assert embedded, 'RESULTS.md embeds no figure'
    committed = record.parent / embedded[1]
    assert committed.is_file() and committed.stat().st_size < 150_000
    fresh = tmp_path / 'results_ap.png'
    subprocess.run([sys.executable, 'tools/visualize.py', 'results', '--results',
                    str((record.parent / 'results.json').relative_to(ROOT)), '--out', str(fresh)],
                   cwd=ROOT, check=True,
                   capture_output=True)
    assert fresh.read_bytes() == committed.read_bytes(), (
        f'{committed} is stale: regenerate it with tools/run_experiments.py --record')


def test_intervals_of_a_results_file_are_drawn(tmp_path):
    methods = [dict(name=n, ap=ap, interval=[ap - 0.01, ap + 0.02])
               for n, ap in [('control', 0.25), ('baseline', 0.27), ('full', 0.22)]]
    path = tmp_path / 'results.json'
    path.write_text(json.dumps(dict(methods=methods, interval_label='test interval')))
    table = read_results(path)
    assert table.interval_label == 'test interval'
    fig = results_figure(table)
    ax = fig.axes[0]
    # the error bars span [lo, hi] of each method
    segments = np.concatenate([c.get_segments() for c in ax.collections])
    spans = sorted((round(s[:, 0].min(), 6), round(s[:, 0].max(), 6)) for s in segments)
    assert spans == sorted((round(m['interval'][0], 6), round(m['interval'][1], 6))
                           for m in methods)


def test_bad_results_are_refused_naming_the_file(tmp_path):
    md = tmp_path / 'RESULTS.md'
    md.write_text('# no table here\n')
    with pytest.raises(ValueError, match=f'{md}: not JSON'):
        read_results(md)
    unlabeled = tmp_path / 'results.json'
    unlabeled.write_text(json.dumps(dict(methods=[dict(name='a', ap=0.2, interval=[0.1, 0.3])])))
    with pytest.raises(ValueError, match='without interval_label'):
        read_results(unlabeled)
    with pytest.raises(FileNotFoundError, match='missing.json'):
        read_results(tmp_path / 'missing.json')
