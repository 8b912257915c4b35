"""Stage1 step time at Sapiens size on a GPU: no CMGC vs CMGC with the geometric teachers
online, the cache's device-side cost, and the ddp_prior's share.

    python benchmarks/sapiens_gpu_step.py [--arch sapiens_0.3b] [--teacher-arch sapiens_0.3b]
        [--labeled 8] [--unlabeled 8] [--steps 10] [--warmup 3]
        [--prior work_dirs/ddp_prior/ddp_prior.pth] [--out benchmarks/results/sapiens_gpu_step.json]

The CPU benchmark (``stage1_step_time.py``) runs the real Stage1 code with a tiny student and
a tiny stand-in teacher, so its ratios say little about Sapiens-size models. This script
needs only PyTorch and a CUDA GPU (it runs on a bare GPU node, no mmpose): it rebuilds the
Sapiens ViT (mmpretrain's layout: conv patch embedding with padding 2, pre-norm blocks,
final norm) with the pose heatmap head of ``stage0_supervised.py`` at 1024 x 768, and times
with bf16 autocast, interleaving the variants step by step:

* ``no_cmgc``: one Stage1 step: the student forward + backward on ``labeled`` labeled crops
  and ``unlabeled`` strong views, Teacher A forward on the weak views, AdamW, EMA update;
* ``cmgc_cache``: the same plus the host-to-device copy of the cached maps of the unlabeled
  crops (float16 depth + int8 normals on the heatmap grid, pinned memory), all the cache adds
  on the GPU (reads happen in dataloader workers: ``geo_cache_bench.py``);
* ``cmgc_online``: the same plus the depth and normal teachers (``--teacher-arch`` backbones
  with 1- and 3-channel heads) on the unlabeled crops inside the step.

The ddp_prior's networks (denoiser + noise-level estimator, from ``--prior`` if given) are
timed on the unlabeled batch's poses. The CMGC losses and KPS are elementwise work on B x 17
keypoints: their CPU time in ``stage1_step_time.py`` is an upper bound.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from results_io import write_results  # benchmarks/ is on sys.path when run as a script
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]


def _load(relpath: str):
    """A torch-only module of nk_train, loaded by path (nk_train's package needs mmpose)."""
    name = f'_nk_{Path(relpath).stem}'
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / relpath)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


SAPIENS_ARCHS = _load('nk_train/compat/sapiens_arch.py').SAPIENS_ARCHS
IMAGE_HW = (1024, 768)
HEATMAP_HW = (256, 192)
HEAD_CHANNELS = 768  # stage0_supervised.py head_channels
NUM_KEYPOINTS = 17


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Linear(ffn, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, c // self.heads) \
            .permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, c)
        x = x + self.proj(attn)
        return x + self.ffn(self.ln2(x))


class SapiensPose(nn.Module):
    """Sapiens ViT + deconv heatmap head (2 x deconv 4x4, 2 x conv 1x1, final 1x1)."""

    def __init__(self, arch: str, out_channels: int) -> None:
        super().__init__()
        a = SAPIENS_ARCHS[arch]
        dim = a['embed_dims']
        self.patch = nn.Conv2d(3, dim, 16, stride=16, padding=2)
        self.grid = ((IMAGE_HW[0] + 4 - 16) // 16 + 1, (IMAGE_HW[1] + 4 - 16) // 16 + 1)
        self.pos = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], dim))
        self.blocks = nn.ModuleList(Block(dim, a['num_heads'], a['feedforward_channels'])
                                    for _ in range(a['num_layers']))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        layers, c = [], dim
        for _ in range(2):
            layers += [nn.ConvTranspose2d(c, HEAD_CHANNELS, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(HEAD_CHANNELS), nn.ReLU(inplace=True)]
            c = HEAD_CHANNELS
        for _ in range(2):
            layers += [nn.Conv2d(c, HEAD_CHANNELS, 1), nn.BatchNorm2d(HEAD_CHANNELS),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(c, out_channels, 1))
        self.head = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        for block in self.blocks:
            x = block(x)
        x = self.norm(x).transpose(1, 2).reshape(x.shape[0], -1, *self.grid)
        return self.head(x)


def timed(fn, sync=torch.cuda.synchronize) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--arch', default='sapiens_0.3b', choices=list(SAPIENS_ARCHS))
    parser.add_argument('--teacher-arch', default='sapiens_0.3b', choices=list(SAPIENS_ARCHS))
    parser.add_argument('--labeled', type=int, default=8)
    parser.add_argument('--unlabeled', type=int, default=8)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--prior', default=None, help='ddp_prior checkpoint (optional)')
    parser.add_argument('--out', default='benchmarks/results/sapiens_gpu_step.json')
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit('sapiens_gpu_step.py needs a CUDA GPU')
    dev = torch.device('cuda')
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)

    student = SapiensPose(args.arch, NUM_KEYPOINTS).to(dev).train()
    teacher = copy.deepcopy(student).eval().requires_grad_(False)
    geo = {name: SapiensPose(args.teacher_arch, ch).to(dev).eval().requires_grad_(False)
           for name, ch in (('depth', 1), ('normal', 3))}
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-5, fused=True)
    L, U = args.labeled, args.unlabeled
    labeled = torch.randn(L, 3, *IMAGE_HW, device=dev)
    weak = torch.randn(U, 3, *IMAGE_HW, device=dev)
    strong = torch.randn(U, 3, *IMAGE_HW, device=dev)
    target = torch.rand(L, NUM_KEYPOINTS, *HEATMAP_HW, device=dev)
    cached = (torch.zeros(U, 1, *HEATMAP_HW, dtype=torch.float16).pin_memory(),
              torch.zeros(U, 3, *HEATMAP_HW, dtype=torch.int8).pin_memory())
    s_params, t_params = list(student.parameters()), list(teacher.parameters())

    def step(variant: str) -> None:
        with torch.autocast('cuda', dtype=torch.bfloat16):
            with torch.no_grad():
                t_heat = teacher(weak)
                if variant == 'cmgc_online':
                    geo['depth'](weak)
                    geo['normal'](weak)
            if variant == 'cmgc_cache':
                [m.to(dev, non_blocking=True) for m in cached]
            out = student(torch.cat([labeled, strong]))
            loss = F.mse_loss(out[:L].float(), target) + F.mse_loss(out[L:].float(),
                                                                    t_heat.float())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            torch._foreach_lerp_(t_params, s_params, 1e-3)

    variants = ('no_cmgc', 'cmgc_cache', 'cmgc_online')
    times = {v: [] for v in variants}
    torch.cuda.reset_peak_memory_stats()
    for i in range(args.warmup + args.steps):
        for v in variants:
            dt = timed(lambda: step(v))
            if i >= args.warmup:
                times[v].append(dt)
    med = {v: statistics.median(t) for v, t in times.items()}
    for v in variants:
        print(f'{v:12s} {med[v] * 1e3:8.1f} ms   x{med[v] / med["no_cmgc"]:.3f}', flush=True)

    with torch.no_grad(), torch.autocast('cuda', dtype=torch.bfloat16):
        teacher_fwd = statistics.median(timed(lambda: (geo['depth'](weak), geo['normal'](weak)))
                                        for _ in range(5))
    prior_ms = None
    if args.prior:
        dn = _load('nk_train/ddp_prior/denoiser.py')
        ckpt = torch.load(args.prior, map_location='cpu', weights_only=True)
        cfg = dn.DenoiserConfig(**ckpt['denoiser'])
        nets = nn.ModuleDict({'denoiser': dn.JointDenoiser(cfg),
                              'noise_estimator': dn.NoiseLevelEstimator(cfg)})
        nets.load_state_dict(ckpt['state_dict'])
        nets.to(dev).eval()
        x = torch.randn(U, NUM_KEYPOINTS, 2, device=dev)
        mask = torch.ones(U, NUM_KEYPOINTS, dtype=torch.bool, device=dev)

        def prior_call():  # x0 with noise_level="auto": estimate the level, one denoiser
            # call (the level -> step mapping is a few scalar ops, stood in by a sigmoid)
            with torch.no_grad():
                level = nets['noise_estimator'](x, mask)
                nets['denoiser'](x, mask, level.sigmoid())
        for _ in range(5):
            prior_call()
        prior_ms = statistics.median(timed(prior_call) for _ in range(20)) * 1e3

    props = torch.cuda.get_device_properties(dev)
    results = dict(
        arch=args.arch, teacher_arch=args.teacher_arch, image_hw=IMAGE_HW,
        labeled=L, unlabeled=U, steps=args.steps, warmup=args.warmup, autocast='bf16',
        median_step_s=med, step_s_all=times,
        ratio_to_no_cmgc={v: med[v] / med['no_cmgc'] for v in variants},
        geo_teachers_forward_ms_per_crop=teacher_fwd / U * 1e3,
        prior_networks_ms_per_step=prior_ms,
        prior_share_of_no_cmgc_step=None if prior_ms is None else prior_ms / 1e3 / med['no_cmgc'],
        peak_memory_gib=torch.cuda.max_memory_allocated() / 2 ** 30,
        machine=dict(gpu=props.name, torch=torch.__version__, cuda=torch.version.cuda,
                     python=platform.python_version()))
    print(f'geometric teachers (depth + normal) forward: '
          f'{results["geo_teachers_forward_ms_per_crop"]:.2f} ms per crop')
    if prior_ms is not None:
        print(f'ddp_prior networks: {prior_ms:.3f} ms per step '
              f'({results["prior_share_of_no_cmgc_step"]:.3%} of a no_cmgc step)')
    print(f'peak memory {results["peak_memory_gib"]:.1f} GiB on {props.name}')
    write_results(args.out, results)


if __name__ == '__main__':
    main()
