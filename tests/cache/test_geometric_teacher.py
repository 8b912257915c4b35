"""The frozen geometric teacher: eval-mode invariant, preprocessing, and the three loaders
(TorchScript / torch.export files, registry module + state dict, the stand-in)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import nk_train  # noqa: F401
from nk_train.cmgc import build_geometric_teacher, teacher_description
from nk_train.cmgc.geometric_teacher import SAPIENS_MEAN, SAPIENS_STD, StandInGeometricNet

SMALL = dict(input_size=(64, 48), mean=SAPIENS_MEAN, std=SAPIENS_STD, bgr_to_rgb=True,
             dtype='float32')


@pytest.fixture(scope='module')
def crops(syrip_root):
    """Two real SyRIP images resized to the small teacher input, as B x 3 x H x W uint8."""
    names = sorted(p.name for p in (syrip_root / 'images').glob('train*.jpg'))[:2]
    imgs = [cv2.resize(cv2.imread(str(syrip_root / 'images' / n)), (48, 64)) for n in names]
    return torch.from_numpy(np.stack([i.transpose(2, 0, 1) for i in imgs]))


def test_stand_in_is_frozen_and_outputs_unit_normals(crops):
    teacher = build_geometric_teacher(dict(kind='stand_in', seed=3, width=8, num_layers=2,
                                           **SMALL))
    parent = torch.nn.Sequential(teacher)
    parent.train()
    assert not teacher.training and all(not m.training for m in teacher.modules())
    assert all(not p.requires_grad for p in teacher.parameters())
    depth, normal = teacher(crops)
    assert depth.shape == (2, 1, 16, 12) and normal.shape == (2, 3, 16, 12)  # 1/4 input
    assert depth.dtype == normal.dtype == torch.float32
    torch.testing.assert_close(normal.norm(dim=1), torch.ones(2, 16, 12), atol=1e-5, rtol=0)
    again = build_geometric_teacher(dict(kind='stand_in', seed=3, width=8, num_layers=2,
                                         **SMALL))
    torch.testing.assert_close(again(crops)[0], depth, atol=0, rtol=0)  # seeded


def test_preprocessing_is_sapiens(crops):
    teacher = build_geometric_teacher(dict(kind='stand_in', **SMALL))
    x = teacher.preprocess(crops)
    rgb = crops.float().flip(1)
    mean = torch.tensor(SAPIENS_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(SAPIENS_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(x, (rgb - mean) / std)


def _reference(net: torch.nn.Module, crops: torch.Tensor, normalize: bool) -> torch.Tensor:
    x = (crops.float().flip(1) - torch.tensor(SAPIENS_MEAN).view(1, 3, 1, 1)) / \
        torch.tensor(SAPIENS_STD).view(1, 3, 1, 1)
    out = net(x)
    return torch.nn.functional.normalize(out, dim=1, eps=1e-6) if normalize else out


@pytest.mark.parametrize('kind', ['torchscript', 'export'])
def test_file_loaders_match_the_exported_modules(tmp_path, crops, kind):
    torch.manual_seed(0)
    depth_net, normal_net = StandInGeometricNet(1, 8, 2).eval(), StandInGeometricNet(3, 8, 2).eval()
    example = torch.zeros(1, 3, 64, 48)
    paths = {}
    for task, net in (('depth', depth_net), ('normal', normal_net)):
        paths[task] = tmp_path / f'{task}_{kind}.pt2'
        if kind == 'torchscript':
            torch.jit.save(torch.jit.trace(net, example), str(paths[task]))
        else:
            torch.export.save(torch.export.export(net, (example,)), str(paths[task]))
    cfg = dict(kind=kind, depth=str(paths['depth']), normal=str(paths['normal']), **SMALL)
    teacher = build_geometric_teacher(cfg)
    depth, normal = teacher(crops[:1])
    with torch.no_grad():
        torch.testing.assert_close(depth, _reference(depth_net, crops[:1], False))
        torch.testing.assert_close(normal, _reference(normal_net, crops[:1], True))
    desc = teacher_description(cfg)
    assert len(desc['depth']['sha256']) == 64
    assert desc['depth']['sha256'] != desc['normal']['sha256']


def test_registry_module_loader(tmp_path, crops):
    torch.manual_seed(1)
    nets = {t: StandInGeometricNet(c, 8, 2).eval() for t, c in (('depth', 1), ('normal', 3))}
    cfg = dict(kind='module', **SMALL)
    for task, net in nets.items():
        path = tmp_path / f'{task}.pth'
        torch.save(dict(state_dict=net.state_dict()), path)
        cfg[task] = dict(model=dict(type='StandInGeometricNet', out_channels=net.head.out_channels,
                                    width=8, num_layers=2), checkpoint=str(path))
    teacher = build_geometric_teacher(cfg)
    depth, normal = teacher(crops)
    with torch.no_grad():
        torch.testing.assert_close(depth, _reference(nets['depth'], crops, False))
        torch.testing.assert_close(normal, _reference(nets['normal'], crops, True))
    before = teacher_description(cfg)['depth']['sha256']
    torch.save(dict(state_dict={k: v + 1 for k, v in nets['depth'].state_dict().items()}),
               cfg['depth']['checkpoint'])
    assert teacher_description(cfg)['depth']['sha256'] != before  # content enters the fingerprint


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pt2'):
        build_geometric_teacher(dict(kind='torchscript', depth=str(tmp_path / 'nope.pt2'),
                                     normal=str(tmp_path / 'nope.pt2'), **SMALL))
