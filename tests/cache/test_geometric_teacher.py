"""The frozen geometric teacher: eval-mode invariant, Sapiens preprocessing, outputs in the
real teacher's format (relative depth with a background at the input resolution, normals at
half of it), the loaders with the dtype each file runs in, the declared normal axes and the
foreground rules."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import nk_train  # noqa: F401
from nk_train.cmgc import build_geometric_teacher, teacher_description
from nk_train.cmgc.geometric_teacher import SAPIENS_MEAN, SAPIENS_STD
from nk_train.cmgc.stand_in_teacher import StandInGeometricNet, stand_in_networks

SMALL = dict(input_size=(64, 48), mean=SAPIENS_MEAN, std=SAPIENS_STD, bgr_to_rgb=True)


@pytest.fixture(scope='module')
def crops(syrip_root):
    """Two real SyRIP images resized to the small teacher input, as B x 3 x H x W uint8."""
    names = sorted(p.name for p in (syrip_root / 'images').glob('train*.jpg'))[:2]
    imgs = [cv2.resize(cv2.imread(str(syrip_root / 'images' / n)), (48, 64)) for n in names]
    return torch.from_numpy(np.stack([i.transpose(2, 0, 1) for i in imgs]))


def _normalised(crops: torch.Tensor) -> torch.Tensor:
    return (crops.float().flip(1) - torch.tensor(SAPIENS_MEAN).view(1, 3, 1, 1)) / \
        torch.tensor(SAPIENS_STD).view(1, 3, 1, 1)


def test_stand_in_has_the_real_teachers_format(crops):
    cfg = dict(kind='stand_in', seed=3, width=8, num_layers=2,
               foreground=dict(source='depth', below=0.0), **SMALL)
    teacher = build_geometric_teacher(cfg)
    torch.nn.Sequential(teacher).train()
    assert not teacher.training and all(not m.training for m in teacher.modules())
    assert all(not p.requires_grad for p in teacher.parameters())
    out = teacher(crops)
    assert out.depth.shape == (2, 1, 64, 48) and out.normal.shape == (2, 3, 32, 24)
    fg = out.foreground[:, 0] > 0
    assert 0.3 < fg.float().mean() < 0.7  # a background: outside the centred ellipse
    assert torch.all(out.depth[:, 0][~fg] == -1.0)
    for b in range(2):  # relative: each crop's foreground spans [0, 1]
        assert out.depth[b, 0][fg[b]].min() == 0.0 and out.depth[b, 0][fg[b]].max() == 1.0
    torch.testing.assert_close(out.normal.norm(dim=1), torch.ones(2, 32, 24), atol=1e-5,
                               rtol=0)
    _, raw_normal = stand_in_networks(seed=3, width=8, num_layers=2)
    assert (raw_normal(_normalised(crops)).norm(dim=1) - 1).abs().max() > 0.1  # not unit
    again = build_geometric_teacher(cfg)
    torch.testing.assert_close(again(crops).depth, out.depth, atol=0, rtol=0)  # seeded


def test_preprocessing_is_sapiens(crops):
    teacher = build_geometric_teacher(dict(kind='stand_in', **SMALL))
    torch.testing.assert_close(teacher.preprocess(crops), _normalised(crops))


def _save(net: torch.nn.Module, path, kind: str, dtype=torch.float32) -> None:
    """As Sapiens' exporters write their Lite files: torch.jit.trace in float32
    (pytorch2torchscript.py), or the model cast to bf16 and torch.export'ed with a dynamic
    batch (torch_optimization.py, without its CUDA and compile steps)."""
    example = torch.zeros(1 if kind == 'torchscript' else 2, 3, 64, 48, dtype=dtype)
    if kind == 'torchscript':  # (an export example of batch 1 would fix the batch to 1)
        torch.jit.save(torch.jit.trace(net, example), str(path))
        return
    net = net.to(dtype)
    batch = torch.export.Dim('batch', min=1, max=32)
    torch.export.save(torch.export.export(net, (example,), dynamic_shapes={'x': {0: batch}}),
                      str(path))


@pytest.mark.parametrize('kind, dtype', [('torchscript', torch.float32),
                                         ('export', torch.bfloat16)])
def test_file_loaders_run_each_file_in_its_own_dtype(tmp_path, crops, kind, dtype):
    torch.manual_seed(0)
    nets = {'depth': StandInGeometricNet(1, 8, 2).eval(),
            'normal': StandInGeometricNet(3, 8, 2).eval()}
    cfg = dict(kind=kind, dtype='auto', **SMALL)
    for task, net in nets.items():
        cfg[task] = str(tmp_path / f'{task}.pt2')
        _save(net, cfg[task], kind, dtype)
    teacher = build_geometric_teacher(cfg)
    assert teacher.description['runs_in'] == {'depth': str(dtype).split('.')[1],
                                              'normal': str(dtype).split('.')[1]}
    out = teacher(crops[:1])  # another batch size than the export example
    assert out.depth.shape[0] == 1
    out = teacher(crops)
    with torch.no_grad():
        x = _normalised(crops).to(dtype)
        torch.testing.assert_close(out.depth, nets['depth'].to(dtype)(x).float())
        want = torch.nn.functional.normalize(nets['normal'].to(dtype)(x).float(), dim=1)
        torch.testing.assert_close(out.normal, want, atol=1e-5, rtol=1e-5)
    assert len(teacher_description(cfg)['depth']['sha256']) == 64
    wrong = 'float32' if dtype == torch.bfloat16 else 'bfloat16'
    with pytest.raises(ValueError, match=rf'depth .*runs in .* but the config says dtype={wrong!r}'):
        build_geometric_teacher(dict(cfg, dtype=wrong))


def test_registry_module_loader(tmp_path, crops):
    torch.manual_seed(1)
    nets = {t: StandInGeometricNet(c, 8, 2).eval() for t, c in (('depth', 1), ('normal', 3))}
    cfg = dict(kind='module', **SMALL)
    for task, net in nets.items():
        path = tmp_path / f'{task}.pth'
        torch.save(dict(state_dict=net.state_dict()), path)
        cfg[task] = dict(model=dict(type='StandInGeometricNet', out_channels=net.head.out_channels,
                                    width=8, num_layers=2), checkpoint=str(path))
    out = build_geometric_teacher(cfg)(crops)
    with torch.no_grad():
        torch.testing.assert_close(out.depth, nets['depth'](_normalised(crops)))
    before = teacher_description(cfg)['depth']['sha256']
    torch.save(dict(state_dict={k: v + 1 for k, v in nets['depth'].state_dict().items()}),
               cfg['depth']['checkpoint'])
    assert teacher_description(cfg)['depth']['sha256'] != before  # content enters the fingerprint


def test_declared_normal_axes_bring_normals_into_the_loss_frame(crops):
    default = build_geometric_teacher(dict(kind='stand_in', **SMALL))(crops).normal
    other = build_geometric_teacher(dict(kind='stand_in', normal_axes=('left', 'down', 'toward'),
                                         **SMALL))(crops).normal
    torch.testing.assert_close(other, default * torch.tensor([-1.0, 1.0, -1.0]).view(1, 3, 1, 1))
    with pytest.raises(ValueError, match='normal_axes'):
        build_geometric_teacher(dict(kind='stand_in', normal_axes=('down', 'right', 'away'),
                                     **SMALL))


def test_segmentation_foreground(tmp_path, crops):
    """A third network's argmax decides the foreground (class 0 = background, as Sapiens'
    body-part segmentation)."""
    torch.manual_seed(2)
    cfg = dict(kind='torchscript', foreground=dict(source='segmentation'), **SMALL)
    nets = {'depth': StandInGeometricNet(1, 8, 2), 'normal': StandInGeometricNet(3, 8, 2),
            'segmentation': StandInGeometricNet(4, 8, 2)}
    for task, net in nets.items():
        cfg[task] = str(tmp_path / f'{task}.pt2')
        _save(net.eval(), cfg[task], 'torchscript')
    out = build_geometric_teacher(cfg)(crops)
    with torch.no_grad():
        labels = nets['segmentation'](_normalised(crops)).argmax(1, keepdim=True)
    torch.testing.assert_close(out.foreground, (labels != 0).float())
    assert 'segmentation' in teacher_description(cfg)
    with pytest.raises(ValueError, match="needs a 'segmentation' entry"):
        teacher_description({k: v for k, v in cfg.items() if k != 'segmentation'})


def test_missing_checkpoint_and_unknown_keys_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pt2'):
        build_geometric_teacher(dict(kind='torchscript', depth=str(tmp_path / 'nope.pt2'),
                                     normal=str(tmp_path / 'nope.pt2'), **SMALL))
    with pytest.raises(ValueError, match="unknown keys \\['normal_axis'\\]"):
        teacher_description(dict(kind='stand_in', normal_axis=('right', 'down', 'away')))


def test_segmentation_file_is_located_and_hashed_like_the_others(repo_root):
    """The full-size config's relative segmentation path resolves inside the checkout (as
    depth and normal do), and an absent segmentation file is as unverifiable as theirs."""
    from mmengine.config import Config

    from nk_train.cmgc.cache_inputs import unverifiable_keys
    from nk_train.cache.settings import GeoCacheSettings

    cfg = Config.fromfile(str(repo_root / 'configs/nk_sapiens/infant/_base_/geo_cache.py'))
    settings = GeoCacheSettings.from_config(cfg.geo_cache)
    teacher = settings.teacher_files_resolved()
    assert teacher['foreground']['source'] == 'segmentation'
    for task in ('depth', 'normal', 'segmentation'):
        assert teacher[task] == str(repo_root / cfg.geo_cache.teacher[task]), task
    desc = teacher_description(cfg.geo_cache.teacher, hash_files=False)
    assert set(unverifiable_keys(desc)) == {f'teacher.{t}.sha256'
                                            for t in ('depth', 'normal', 'segmentation')}
