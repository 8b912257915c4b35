"""The results figure: read from the recorded run (docs/nk_sapiens/RESULTS.md), the figure
RESULTS.md embeds is the one its command regenerates now (and small), a results file with
intervals draws them, and unreadable results are refused naming the file."""
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
RESULTS = ROOT / 'docs/nk_sapiens/RESULTS.md'


def _table_rows() -> list[tuple[str, float]]:
    """(method, AP) of RESULTS.md, read with a regular expression instead of the reader."""
    return [(m[1], float(m[2])) for m in
            re.finditer(r'^\| ([^|]+?) \| `[^`]+` \| \d+ \| (\d\.\d+) \|', RESULTS.read_text(),
                        re.M)]


def test_recorded_run_is_read_row_by_row():
    table = read_results(RESULTS)
    rows = _table_rows()
    assert len(rows) >= 2
    assert [(m.name, m.ap) for m in table.methods] == rows
    assert table.interval_label is None and all(m.interval is None for m in table.methods)


def test_embedded_figure_is_regenerated_by_its_command(tmp_path):
    embedded = re.search(r'!\[[^]]*\]\(([^)]+)\)', RESULTS.read_text())
    assert embedded, 'RESULTS.md embeds no figure'
    committed = RESULTS.parent / embedded[1]
    assert committed.is_file() and committed.stat().st_size < 150_000
    fresh = tmp_path / 'results_ap.png'
    subprocess.run([sys.executable, 'tools/visualize.py', 'results', '--results',
                    'docs/nk_sapiens/RESULTS.md', '--out', str(fresh)], cwd=ROOT, check=True,
                   capture_output=True)
    assert fresh.read_bytes() == committed.read_bytes(), (
        f'{committed} is stale: regenerate it with the command in RESULTS.md')


def test_intervals_of_a_results_file_are_drawn(tmp_path):
    methods = [dict(name=n, ap=ap, interval=[ap - 0.01, ap + 0.02]) for n, ap in _table_rows()]
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
    with pytest.raises(ValueError, match=f'{md}: no results table'):
        read_results(md)
    unlabeled = tmp_path / 'results.json'
    unlabeled.write_text(json.dumps(dict(methods=[dict(name='a', ap=0.2, interval=[0.1, 0.3])])))
    with pytest.raises(ValueError, match='without interval_label'):
        read_results(unlabeled)
    with pytest.raises(FileNotFoundError, match='missing.json'):
        read_results(tmp_path / 'missing.json')
