"""No package of nk_train imports one that imports it back (read from the source's imports,
lazy ones inside functions included), so the packages stack in layers."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / 'nk_train'


def _unit(path: Path) -> str:
    """The package (``cache``) or top-level module (``skeleton``) a file belongs to."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_units(path: Path) -> set[str]:
    units = set()
    depth = len(path.relative_to(PACKAGE).parts) - 1  # 0: nk_train/x.py, 1: nk_train/p/x.py
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or '').startswith('nk_train.'):
                units.add(node.module.split('.')[1])
            elif node.level == depth + 1 and node.module:  # ``..cache`` from inside a package
                units.add(node.module.split('.')[0])
            elif node.level == depth + 1:  # ``from .. import cache``
                units.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            units.update(a.name.split('.')[1] for a in node.names
                         if a.name.startswith('nk_train.'))
    return units


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob('*.py'):
        unit = _unit(path)
        if unit == '__init__':
            continue
        graph.setdefault(unit, set()).update(_imported_units(path) - {unit})
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle, as the path that closes it (depth-first search)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 'open'
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 'done'

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_package_imports_one_that_imports_it_back():
    graph = import_graph()
    assert {'cache', 'cmgc', 'data', 'models', 'kps', 'ddp_prior'} <= set(graph)
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_loop():
    graph = import_graph()
    graph['cache'] = graph['cache'] | {'models'}  # what a model import in cache/ would do
    assert any(c[0] == c[-1] and 'cache' in c for c in cycles(graph))


def test_cache_holds_no_model_code():
    assert import_graph()['cache'] <= {'crop_geometry', 'paths', 'utils'}
