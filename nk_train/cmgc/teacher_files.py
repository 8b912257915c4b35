"""Loading the geometric teacher's networks as Sapiens ships them, with the dtype they run in.

* ``torchscript``: Sapiens-Lite ``*_torchscript.pt2`` (``torch.jit.trace`` in float32);
* ``export``: Sapiens-Lite ``*_bfloat16.pt2`` (the model cast to bf16, saved with
  ``torch.export``): it must be fed inputs of the dtype its graph was exported with;
* ``module``: a registry config + a state-dict file (float32).

The dtype a file runs in is read from the file itself (the exported graph's input, the scripted
module's parameters): a config ``dtype`` that disagrees is an error before the first batch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from mmpose.registry import MODELS
from torch import nn

FILE_KINDS = ('torchscript', 'export')
DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}


def dtype_name(dtype: torch.dtype) -> str:
    return next(k for k, v in DTYPES.items() if v == dtype)


def _exported_input_dtype(program: Any, path: Path) -> torch.dtype:
    """The dtype of the exported program's (single) tensor input."""
    placeholders = {n.name: n for n in program.graph.nodes if n.op == 'placeholder'}
    names = list(program.graph_signature.user_inputs)
    vals = [placeholders[n].meta.get('val') for n in names if n in placeholders]
    tensors = [v for v in vals if isinstance(v, torch.Tensor)]
    if len(tensors) != 1:
        raise ValueError(f'{path}: expected an exported program with one tensor input, found '
                         f'{len(tensors)}')
    return tensors[0].dtype


def _scripted_dtype(module: nn.Module) -> torch.dtype:
    floats = [p.dtype for p in module.parameters() if p.is_floating_point()]
    return floats[0] if floats else torch.float32


def load_network(kind: str, spec: Any, task: str) -> tuple[nn.Module, torch.dtype]:
    """The network of ``task`` and the dtype its inputs must have."""
    if kind in FILE_KINDS:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f'geometric teacher {task} file not found: {path}')
        if kind == 'torchscript':
            module = torch.jit.load(str(path), map_location='cpu')
            return module, _scripted_dtype(module)
        program = torch.export.load(str(path))
        return program.module(), _exported_input_dtype(program, path)
    return _build_registry_model(spec, task), torch.float32


def _build_registry_model(spec: Mapping[str, Any], task: str) -> nn.Module:
    """``MODELS.build(spec['model'])`` + the state dict in ``spec['checkpoint']`` (strict)."""
    if not isinstance(spec, Mapping) or 'model' not in spec or 'checkpoint' not in spec:
        raise ValueError(f'teacher.{task} for kind="module" needs model=dict(type=...) and '
                         f'checkpoint=PATH, got {spec!r}')
    model = MODELS.build(dict(spec['model']))
    path = Path(spec['checkpoint'])
    if not path.is_file():
        raise FileNotFoundError(f'geometric teacher {task} checkpoint not found: {path}')
    # weights_only stays on; nk_train.compat allow-lists what mmengine checkpoints carry.
    state = torch.load(str(path), map_location='cpu', weights_only=True)
    if isinstance(state, Mapping) and 'state_dict' in state:
        state = state['state_dict']
    model.load_state_dict(state, strict=True)
    return model


def check_dtype(declared: str | None, found: torch.dtype, task: str, spec: Any) -> None:
    """A config ``dtype`` must be 'auto' (or absent) or the file's own."""
    if declared in (None, 'auto'):
        return
    if declared not in DTYPES:
        raise ValueError(f'teacher dtype must be auto or one of {sorted(DTYPES)}, got '
                         f'{declared!r}')
    if DTYPES[declared] != found:
        raise ValueError(f'geometric teacher {task} ({spec}) runs in {dtype_name(found)} but '
                         f'the config says dtype={declared!r}: set teacher.dtype="auto" or '
                         f'{dtype_name(found)!r}')
