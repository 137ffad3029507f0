"""RMSProp as TensorFlow defines it, which the Inception-v3 recipe's eps = 1.0 assumes.

TensorFlow (and TF-slim, whose trainer produced the v3 weights) differs from torch.optim.RMSprop:
the mean square starts at 1, not 0; eps goes inside the square root; the learning rate is applied
inside the momentum buffer:

    ms  = decay * ms + (1 - decay) * g^2          (ms starts at 1)
    mom = momentum * mom + lr * g / sqrt(ms + eps)
    w   = w - mom

With eps = 1.0 the two formulas give very different steps, so the v3 recipe uses this one.
Weight decay, when given, is added to the gradient (L2, as TF-slim's regularizer).
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer

from ..errors import BadValue


class RMSpropTF(Optimizer):
    """TensorFlow's RMSProp: ``decay`` (torch's alpha), ``eps`` inside the sqrt, lr inside the momentum."""

    def __init__(self, params, lr: float = 0.045, *, decay: float = 0.9, momentum: float = 0.9, eps: float = 1.0,
                 weight_decay: float = 0.0):
        if lr < 0 or not 0 <= decay < 1 or momentum < 0 or eps < 0 or weight_decay < 0:
            raise BadValue(f"RMSpropTF: lr {lr}, decay {decay} (in [0, 1)), momentum {momentum}, eps {eps} and "
                             f"weight_decay {weight_decay} must be >= 0")
        super().__init__(params, dict(lr=lr, decay=decay, momentum=momentum, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                square_avg = state["square_avg"]
                square_avg.mul_(group["decay"]).addcmul_(grad, grad, value=1 - group["decay"])
                update = grad / (square_avg + group["eps"]).sqrt_()
                buf = state["momentum_buffer"]
                if group["momentum"] > 0:
                    buf.mul_(group["momentum"]).add_(update, alpha=group["lr"])
                    p.sub_(buf)
                else:
                    p.sub_(update, alpha=group["lr"])
        return loss
