"""The cache fingerprint covers the code that computes the cached values: a cache built by
this checkout is refused by a copy whose resampling or crop geometry was edited, naming the
module, and read by a copy whose edit touches only comments and docstrings."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from geo_cache_helpers import INDICES, REPO_ROOT, geo_settings_dict

# (file, text replaced, replacement, module the refusal must name; None = still accepted)
EDITS = {
    'resampling': ('nk_train/cmgc/teacher_maps.py', 'box = _odd_box(out_len / map_len)',
                   'box = _odd_box(out_len / map_len) + 2', 'nk_train.cmgc.teacher_maps'),
    'crop geometry': ('nk_train/crop_geometry.py', 'flags=cv2.INTER_LINEAR',
                      'flags=cv2.INTER_CUBIC', 'nk_train.crop_geometry'),
    'comment only': ('nk_train/cmgc/teacher_maps.py', '    """1-D weights (map_len x out_len)',
                     '    # reworded\n    """1-D weights (rows: map_len, cols: out_len)', None),
}

OPEN = '''
import json, sys
import nk_train
assert nk_train.__file__.startswith(sys.argv[1]), nk_train.__file__
from nk_train.cache.reader import StaleCacheError
from nk_train.data.geo_cache_transform import LoadGeoCacheMaps
try:
    LoadGeoCacheMaps(cache=json.loads(sys.argv[2]), split='labeled', indices=json.loads(sys.argv[3]))
except StaleCacheError as err:
    print('REFUSED', err)
else:
    print('ACCEPTED')
'''


def _edited_checkout(tmp: Path, file: str, old: str, new: str) -> Path:
    """A copy of the package (and what it reads from the checkout) with one edit."""
    copy = tmp / 'checkout'
    shutil.copytree(REPO_ROOT / 'nk_train', copy / 'nk_train',
                    ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copytree(REPO_ROOT / 'configs', copy / 'configs')
    (copy / 'data').symlink_to((REPO_ROOT / 'data').resolve())
    target = copy / file
    text = target.read_text()
    assert text.count(old) == 1, f'{file}: the edit no longer applies; update EDITS'
    target.write_text(text.replace(old, new))
    return copy


@pytest.mark.parametrize('edit', list(EDITS))
def test_edited_value_code_makes_the_cache_stale(reference_cache, tmp_path, edit):
    file, old, new, named = EDITS[edit]
    root, _ = reference_cache
    copy = _edited_checkout(tmp_path, file, old, new)
    cache = geo_settings_dict(root)
    out = subprocess.run([sys.executable, '-c', OPEN, str(copy), json.dumps(cache),
                          json.dumps([int(i) for i in INDICES])],
                         cwd=copy, env=dict(os.environ, PYTHONPATH=str(copy), OMP_NUM_THREADS='1'),
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    if named is None:
        assert out.stdout.strip().endswith('ACCEPTED'), out.stdout
    else:
        assert 'REFUSED' in out.stdout, out.stdout
        assert f'code.{named}: cache ' in out.stdout, out.stdout
