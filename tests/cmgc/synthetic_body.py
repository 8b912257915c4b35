"""Synthetic geometry with known answers for the CMGC tests.

A real labeled 2D infant pose is lifted to 3D with chosen joint depths; its limbs become
cylinders of radius ``radius`` (map pixels) seen orthographically. The renderer makes what
Sapiens' geometric teacher is trained to output: relative depth (each map's foreground depth
min-max normalised to [0, 1], larger = farther, background -1) and unit surface normals in the
loss frame (x right, y down, z away from the camera), plus the foreground mask. A pixel belongs
to the limb whose axis is closest; depth there is the axis depth interpolated between the
limb's joints (a flat ribbon, so the depth at a joint is exactly that joint's), and the normal
is the cylinder's, orthogonal to the limb's 3D direction.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from nk_train.skeleton import load_skeleton

SKELETON = load_skeleton()


@dataclass
class Body:
    coords: torch.Tensor  # 1 x K x 2, map pixels
    z: torch.Tensor  # K, depth in map pixels (away from the camera)
    depth: torch.Tensor  # 1 x 1 x h x w, relative depth, background -1
    normal: torch.Tensor  # 1 x 3 x h x w, unit, loss frame (0 on background)
    valid: torch.Tensor  # 1 x 1 x h x w, {0, 1}
    depth_range: float  # map pixels per unit of relative depth (the true s)

    def limb_lengths_3d(self) -> dict[str, float]:
        p = torch.cat([self.coords[0], self.z[:, None]], dim=1)
        return {name: float((p[i] - p[j]).norm())
                for name, (i, j) in zip(SKELETON.edge_names, SKELETON.edges)}


def labeled_pose(syrip_root: Path, index: int, size: tuple[int, int]) -> torch.Tensor:
    """Annotation ``index`` of train_labeled.json, every joint labeled, fitted into ``size``
    (w, h) with a margin: K x 2."""
    coco = json.loads((syrip_root / 'annotations/train_labeled.json').read_text())
    full = [a for a in coco['annotations'] if all(v > 0 for v in a['keypoints'][2::3])]
    k = torch.tensor(full[index]['keypoints'], dtype=torch.float32).view(-1, 3)[:, :2]
    k = k - k.min(0).values
    scale = 0.7 * min(size[0] / float(k[:, 0].max()), size[1] / float(k[:, 1].max()))
    return k * scale + 0.15 * torch.tensor(size, dtype=torch.float32)


def render(pose: torch.Tensor, z: torch.Tensor, size: tuple[int, int],
           radius: float = 3.0) -> Body:
    """Render the lifted pose (K x 2 map pixels, K depths in map pixels) into ``size`` (w, h)."""
    w, h = size
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing='ij')
    pix = torch.stack([xs, ys], -1)  # h x w x 2
    nearest = torch.full((h, w), float('inf'))  # distance to the closest limb axis
    best = torch.full((h, w), float('inf'))
    normal = torch.zeros(h, w, 3)
    for i, j in SKELETON.edges:
        a2, b2 = pose[i], pose[j]
        seg = b2 - a2
        t = (((pix - a2) * seg).sum(-1) / seg.dot(seg).clamp_min(1e-6)).clamp(0, 1)
        foot = a2 + t[..., None] * seg
        dist = (pix - foot).norm(dim=-1)
        depth = z[i] + t * (z[j] - z[i])
        inside = (dist <= radius) & (dist < nearest)
        nearest = torch.where(inside, dist, nearest)
        best = torch.where(inside, depth, best)
        axis = torch.cat([seg, (z[j] - z[i])[None]])
        axis = axis / axis.norm()
        toward = torch.tensor([0.0, 0.0, -1.0])  # the camera side of the cylinder
        n0 = toward - toward.dot(axis) * axis
        n0 = n0 / n0.norm()
        side = torch.linalg.cross(axis, n0)
        offset = pix - foot
        sign = torch.sign((offset * side[:2]).sum(-1))
        sin_phi = (dist / radius).clamp(max=1.0) * sign
        n = torch.sqrt(1 - sin_phi ** 2)[..., None] * n0 + sin_phi[..., None] * side
        normal = torch.where(inside[..., None], n, normal)
    fg = torch.isfinite(best)
    lo, hi = best[fg].min(), best[fg].max()
    rel = torch.where(fg, (best - lo) / (hi - lo), torch.full_like(best, -1.0))
    return Body(coords=pose[None].clone(), z=z.clone(), depth=rel[None, None],
                normal=normal.permute(2, 0, 1)[None], valid=fg.float()[None, None],
                depth_range=float(hi - lo))


def lifted_body(syrip_root: Path, index: int = 0, size: tuple[int, int] = (96, 128),
                depth_scale: float = 20.0, seed: int = 0) -> Body:
    """A real pose with seeded joint depths (about ``depth_scale`` map pixels of spread)."""
    pose = labeled_pose(syrip_root, index, size)
    gen = torch.Generator().manual_seed(seed)
    z = 200.0 + depth_scale * torch.rand(len(pose), generator=gen)
    return render(pose, z, size)
