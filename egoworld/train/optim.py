"""Adam, written out: twenty lines whose whole state is named tensors (so it saves as safetensors).

Why not ``torch.optim.Adam``: in torch 2.13 constructing it imports ``torch._dynamo`` (2–6 s per
process — every CLI run, every torchrun rank, every test), and its ``state_dict`` mixes tensors
with Python objects that then need flattening for safetensors. The update is the textbook one
(Kingma & Ba 2015, bias-corrected, L2 weight decay added to the gradient) with the same
semantics as ``torch.optim.Adam(foreach=False)``; ``tests/test_train.py`` checks that.
"""
from __future__ import annotations

import torch


class Adam:
    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.step_count += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.step_count, 1 - b2 ** self.step_count
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            g = p.grad if self.weight_decay == 0 else p.grad + self.weight_decay * p
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            p.addcdiv_(m, (v / c2).sqrt_().add_(self.eps), value=-self.lr / c1)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The whole state as named tensors (for safetensors)."""
        out = {"step": torch.tensor(self.step_count, dtype=torch.int64)}
        for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq)):
            out[f"{i}.exp_avg"] = m.detach().clone()
            out[f"{i}.exp_avg_sq"] = v.detach().clone()
        return out

    def load_tensors(self, t: dict[str, torch.Tensor]) -> None:
        n = sum(1 for k in t if k.endswith(".exp_avg"))
        if n != len(self.params):
            raise ValueError(f"optimizer state has {n} parameters, the model {len(self.params)}: wrong checkpoint?")
        self.step_count = int(t["step"])
        for i in range(n):
            self.exp_avg[i].copy_(t[f"{i}.exp_avg"])
            self.exp_avg_sq[i].copy_(t[f"{i}.exp_avg_sq"])
