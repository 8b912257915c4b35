"""Import a CLI script of the repo (``tools/``, ``precompute/`` are not packages) to call its
functions; pytest puts this directory on sys.path (the rootdir conftest lives here)."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[1]


def load_script(rel: str) -> ModuleType:
    """The script at ``REPO_ROOT / rel`` as a module named ``<stem>_cli``."""
    spec = importlib.util.spec_from_file_location(Path(rel).stem + '_cli', REPO_ROOT / rel)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
