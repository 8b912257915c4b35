"""Shared test fixtures: paths to the real SyRIP / coco_mini data and the repo root."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = REPO_ROOT / 'data'


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f'{path} is missing: run `bash tools/setup_env.sh` (it links data/ to ../shared/data)')
    return path


@pytest.fixture(scope='session')
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope='session')
def syrip_root() -> Path:
    return _require(DATA_ROOT / 'syrip')


@pytest.fixture(scope='session')
def coco_mini_root() -> Path:
    return _require(DATA_ROOT / 'coco_mini')
