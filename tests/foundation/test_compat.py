"""Compat layer: Sapiens arch names on stock mmpretrain; safe loading of mmengine checkpoints."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import _load_checkpoint

import nk_train  # noqa: F401  (registers the compat shims)
from nk_train.compat import SAPIENS_ARCHS, checkpoint_weights_sha256, register_sapiens_archs
from nk_train.utils import sha256_file


def test_sapiens_archs_known_to_vision_transformer():
    from mmpretrain.models.backbones.vision_transformer import VisionTransformer
    for name, settings in SAPIENS_ARCHS.items():
        assert VisionTransformer.arch_zoo[name] == settings
    assert SAPIENS_ARCHS['sapiens_1b'] == dict(
        embed_dims=1536, num_layers=40, num_heads=24, feedforward_channels=6144)


def test_existing_arch_definitions_are_left_alone(monkeypatch):
    from mmpretrain.models.backbones.vision_transformer import VisionTransformer
    bundled = {**VisionTransformer.arch_zoo, 'sapiens_0.3b': dict(embed_dims=7)}
    monkeypatch.setattr(VisionTransformer, 'arch_zoo', bundled)
    added = register_sapiens_archs()
    assert VisionTransformer.arch_zoo['sapiens_0.3b'] == dict(embed_dims=7)
    assert 'sapiens_0.3b' not in added


def test_mmengine_style_checkpoint_loads_with_weights_only(tmp_path):
    buf = HistoryBuffer()
    buf.update(np.float64(0.5))
    ckpt = dict(
        meta=dict(epoch=1, iter=np.int64(50), seed=np.int64(3), lr=np.array([1e-3, 2e-3])),
        state_dict={'w': torch.ones(2)},
        message_hub=dict(log_scalars={'train/loss': buf}))
    path = tmp_path / 'ckpt.pth'
    torch.save(ckpt, path)
    loaded = _load_checkpoint(str(path), map_location='cpu')
    assert loaded['meta']['iter'] == 50
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == 0.5


def test_weights_digest_names_the_model_not_the_file(tmp_path):
    """Two saves of the same weights under different run metadata (mmengine's timestamped
    experiment name) differ as files and agree as weights; one changed value changes it."""
    state = {'backbone.w': torch.arange(6.0).reshape(2, 3), 'head.b': torch.zeros(3)}
    paths = []
    for n, name in enumerate(['20261204_101010', '20261207_090909']):
        paths.append(tmp_path / f'ckpt{n}.pth')
        torch.save(dict(meta=dict(experiment_name=name, iter=np.int64(2500)),
                        state_dict=dict(state)), paths[-1])
    assert sha256_file(paths[0]) != sha256_file(paths[1])
    assert checkpoint_weights_sha256(paths[0]) == checkpoint_weights_sha256(paths[1])
    changed = dict(state, **{'head.b': torch.tensor([0.0, 0.0, 1e-6])})
    torch.save(dict(meta=dict(experiment_name='20261204_101010', iter=np.int64(2500)),
                    state_dict=changed), tmp_path / 'changed.pth')
    assert checkpoint_weights_sha256(tmp_path / 'changed.pth') != \
        checkpoint_weights_sha256(paths[0])
    torch.save(dict(meta={}), tmp_path / 'empty.pth')
    with pytest.raises(ValueError, match='empty.pth: not an mmengine checkpoint'):
        checkpoint_weights_sha256(tmp_path / 'empty.pth')


class _Payload:
    """An arbitrary object: must never be unpickled by a checkpoint load."""

    def __reduce__(self):
        return (print, ('arbitrary code ran',))


def test_checkpoint_with_arbitrary_object_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={'w': torch.ones(1)}, meta=dict(x=_Payload())), path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')


@pytest.mark.parametrize('target', [(np.ndarray, 'tofile'),
                                    (HistoryBuffer, '_set_default_statistics')])
def test_getattr_is_only_allowed_for_history_buffer_methods(tmp_path, target):
    class _GetattrPayload:
        def __reduce__(self):
            return (getattr, target)

    path = tmp_path / 'getattr.pth'
    torch.save(dict(meta=dict(x=_GetattrPayload())), path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')
