"""Image metrics per frame: PSNR and SSIM (Wang et al. 2004, 11×11 Gaussian window, σ = 1.5).

Per frame, then averaged: a mean over frames of PSNR (not PSNR of the mean error), as video
prediction papers report it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def to_unit(img: torch.Tensor) -> torch.Tensor:
    """uint8 or float images → float in [0, 1]."""
    return img.float() / 255.0 if img.dtype == torch.uint8 else img.float().clamp(0, 1)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) → (...) in dB (capped at 60 dB for identical frames)."""
    mse = (to_unit(pred) - to_unit(target)).square().flatten(-3).mean(-1)
    return -10 * torch.log10(mse.clamp_min(1e-6))


def _gauss(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32) - size // 2
    g = torch.exp(-x.square() / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) → (...): mean SSIM over pixels and channels."""
    lead = pred.shape[:-3]
    x = to_unit(pred).reshape(-1, *pred.shape[-3:])
    y = to_unit(target).reshape(-1, *target.shape[-3:])
    C = x.shape[1]
    w = _gauss().to(x.device).expand(C, 1, 11, 11)
    blur = lambda t: F.conv2d(t, w, groups=C)  # noqa: E731  (valid window, as the reference implementation)
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(-1).reshape(lead)
