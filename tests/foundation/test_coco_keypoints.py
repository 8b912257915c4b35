"""nk_train.coco_keypoints stays a leaf module that data and evaluation share without a loop."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / 'nk_train'


def _nk_train_imports(path: Path) -> set[str]:
    """The ``nk_train`` top-level modules/packages a file imports (relative or absolute)."""
    inside = path.relative_to(PACKAGE.parent).with_suffix('').parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name.split('.') for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module.split('.') if node.module else []
            base = [*inside[:len(inside) - node.level], *module] if node.level else module
            targets = [base + [a.name] for a in node.names]
        else:
            continue
        found.update(t[1] for t in targets if t[0] == 'nk_train' and len(t) > 1)
    return found


def test_coco_keypoints_is_a_leaf_and_data_and_evaluation_no_loop():
    assert _nk_train_imports(PACKAGE / 'coco_keypoints.py') == set()
    data = set().union(*map(_nk_train_imports, (PACKAGE / 'data').glob('*.py')))
    evaluation = set().union(*map(_nk_train_imports, (PACKAGE / 'evaluation').glob('*.py')))
    assert 'coco_keypoints' in data and 'coco_keypoints' in evaluation
    assert not ('evaluation' in data and 'data' in evaluation), (data, evaluation)
