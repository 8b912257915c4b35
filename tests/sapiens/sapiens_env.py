"""How the tests run Sapiens' own code: its forks first on the path, its tools from a copy.

``../shared/sapiens`` is a trimmed real Sapiens checkout (read-only in CI). A Sapiens user
puts the forks' folders first on ``PYTHONPATH``, adds pandas and yapf 0.40.1 (installed by
``tools/setup_env.sh`` into ``$VENV/sapiens_extras``, outside the stock stack), places the
NK-Sapiens configs under ``pose/configs/`` and runs ``tools/train.py`` / ``tools/test.py`` from
``pose/``. ``make_checkout`` does exactly that on a temporary copy, as the README says.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SAPIENS_ROOT = Path(os.environ.get('NK_SAPIENS_ROOT', REPO_ROOT.parent / 'shared' / 'sapiens'))
FORKS = ('pose', 'pretrain', 'det', 'engine')
EXTRAS = Path(sys.prefix) / 'sapiens_extras'
# The small real inputs of these tests (dataset indices), here rather than in conftest.py:
# pytest imports every directory's conftest.py under the one module name ``conftest``.
CFG = 'configs/nk_sapiens/infant'
LABELED = list(range(0, 160, 16))  # 10 labeled train-part images
UNLABELED = list(range(0, 300, 30))  # 10 unlabeled instances
VAL = [0, 5, 10, 15]


def require_sapiens() -> Path:
    if not (SAPIENS_ROOT / 'pose' / 'tools' / 'train.py').is_file():
        raise FileNotFoundError(f'no Sapiens checkout at {SAPIENS_ROOT}: put ../shared beside the '
                                'repo or set NK_SAPIENS_ROOT')
    if not (EXTRAS / 'yapf').is_dir():
        raise FileNotFoundError(f'{EXTRAS} is missing: run bash tools/setup_env.sh')
    return SAPIENS_ROOT


def fork_env(root: Path, *more: str) -> dict:
    """Environment of a Sapiens user: the forks of ``root`` (and ``more`` of its folders, e.g.
    ``seg`` for its depth/normal code) and the extras first. The checkout under test comes
    last: before the editable install of nk_train, which may point at another checkout."""
    path = [str(root / f) for f in (*FORKS, *more)] + [str(EXTRAS), str(REPO_ROOT)]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path), OMP_NUM_THREADS='1')


def make_checkout(dest: Path) -> Path:
    """A Sapiens checkout at ``dest`` with the NK-Sapiens configs and data linked in, as the
    README's "Using the configs from a Sapiens checkout" says; returns its ``pose/``."""
    shutil.copytree(require_sapiens(), dest, ignore=shutil.ignore_patterns('__pycache__'))
    pose = dest / 'pose'
    (pose / 'configs' / 'nk_sapiens').symlink_to(REPO_ROOT / 'configs' / 'nk_sapiens')
    (pose / 'configs' / '_base_' / 'datasets' / 'infant_coco17.py').symlink_to(
        REPO_ROOT / 'configs' / '_base_' / 'datasets' / 'infant_coco17.py')
    (pose / 'data').symlink_to((REPO_ROOT / 'data').resolve())
    return pose


def run(args: list[str], cwd: Path, env: dict | None = None, ok: bool = True
        ) -> subprocess.CompletedProcess:
    """``python ARGS`` in ``cwd``; with ``ok`` the run must succeed (the output tail is the
    failure message)."""
    env = env or dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True)
    proc.output = proc.stdout + proc.stderr
    if ok:
        assert proc.returncode == 0, proc.output[-5000:]
    return proc
