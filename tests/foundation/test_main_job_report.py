"""The main job: its metrics parsed from tools/test.py's log line (Stage0 and Stage1 prefixes;
a missing metric is an error) and the cache-check command lines it hands to check_cache."""
from __future__ import annotations

from pathlib import Path

import pytest
from script_loader import load_script

LOG = ('11/24 14:04:14 - mmengine - INFO - Iter(test) [7/7]    {p}coco/AP: 0.229013  '
       '{p}coco/AP .5: 0.528098  {p}coco/AP .75: 0.196317  {p}coco/AP (M): -1.000000  '
       '{p}coco/AP (L): 0.229013  {p}coco/AR: 0.277000  {p}coco/AR .5: 0.550000\n')


@pytest.fixture(scope='module')
def main_job():
    return load_script('tools/main_job.py')


@pytest.mark.parametrize('prefix', ['', 'teacher/'])
def test_coco_metrics_from_the_test_log(main_job, prefix):
    found = main_job.coco_metrics(LOG.format(p=prefix), Path('test.log'))
    assert found == dict(AP=0.229013, AP50=0.528098, AP75=0.196317, AR=0.277)


def test_missing_metric_names_the_log(main_job):
    with pytest.raises(SystemExit, match='no coco/AR in .*stage0/test.log'):
        main_job.coco_metrics(LOG.format(p='').replace('coco/AR:', 'coco/XX:'),
                              Path('stage0/test.log'))


@pytest.mark.parametrize('level', ['--files', '--full'])
def test_cache_check_commands_parse(main_job, level):
    """Both cache checks the main job runs are command lines check_cache accepts."""
    check_cache = load_script('tools/check_cache.py')
    script, *argv = main_job.cache_check(level)
    assert script == 'tools/check_cache.py'
    args = check_cache.parser().parse_args(argv)
    assert getattr(args, level.lstrip('-')) and args.split == 'unlabeled'
