"""Writing a benchmark's results file (stdlib only: GPU-node scripts import it too)."""
from __future__ import annotations

import json
from pathlib import Path


def write_results(path: str | Path, results: dict) -> None:
    """Write ``results`` as indented JSON to ``path`` (parents created) and say where."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + '\n')
    print(f'written: {out}')
