"""The main job's results table: metrics parsed from tools/test.py's log line (Stage0 and
Stage1 prefixes), a missing metric is an error, and the markdown table has one row per run
and embeds its AP figure."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOG = ('11/24 14:04:14 - mmengine - INFO - Iter(test) [7/7]    {p}coco/AP: 0.229013  '
       '{p}coco/AP .5: 0.528098  {p}coco/AP .75: 0.196317  {p}coco/AP (M): -1.000000  '
       '{p}coco/AP (L): 0.229013  {p}coco/AR: 0.277000  {p}coco/AR .5: 0.550000\n')


@pytest.fixture(scope='module')
def main_job():
    spec = importlib.util.spec_from_file_location('main_job_cli', ROOT / 'tools/main_job.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('prefix', ['', 'teacher/'])
def test_coco_metrics_from_the_test_log(main_job, prefix):
    found = main_job.coco_metrics(LOG.format(p=prefix), Path('test.log'))
    assert found == dict(AP=0.229013, AP50=0.528098, AP75=0.196317, AR=0.277)


def test_missing_metric_names_the_log(main_job):
    with pytest.raises(SystemExit, match='no coco/AR in .*stage0/test.log'):
        main_job.coco_metrics(LOG.format(p='').replace('coco/AR:', 'coco/XX:'),
                              Path('stage0/test.log'))


def test_record_writes_one_row_per_run(main_job, tmp_path):
    metrics = dict(AP=0.2, AP50=0.5, AP75=0.1, AR=0.3)
    summary = dict(
        ap_test100={'stage0': metrics, 'full': dict(metrics, AP=0.25)},
        teacher_a_b_counts={'full': dict(teacherA=41, teacherB=119, logged_iterations=20)},
        iterations={'stage0': 3000, 'full': 1000}, date='2026-11-24', machine='2 CPU cores',
        gating_report={'teacherA_accepted': dict(n=100, pck=0.633, oks=0.625)},
        cache_size_mb=2.3, cache_check='OK')
    out = tmp_path / 'RESULTS.md'
    main_job.record(out, summary, ['--record', str(out)])
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith('| ') and '`' in line]
    assert len(rows) == 2
    assert '| 3000 | 0.2000 |' in rows[0] and '| 1000 | 0.2500 |' in rows[1]
    assert '41 / 119 (20 logged it.)' in rows[1]
    assert '| teacherA_accepted | 100 | 0.633 | 0.625 |' in text
    assert '.venv/bin/python tools/main_job.py --record' in text
    # the AP figure beside it, with the command that regenerates it
    assert '![AP per method](figures/results_ap.png)' in text
    assert f'tools/visualize.py results --results {out} --out {out.parent}/figures/' in text
    assert main_job.record_figure(out) == out.parent / 'figures' / 'results_ap.png'
