"""What the installed torch supports, for tests that need it (skipped, with the reason, else).

torch 2.1-2.3 accept ``fused=True`` only for CUDA (and other accelerator) parameters: the fused
Adam(W) kernel has no CPU implementation there, so skfocal takes the public step on a CPU and
the tests that compare against torch's own fused step have nothing to compare with.
"""

import pytest
import torch


def _cpu_fused_adam():
    try:
        p = torch.zeros(1, requires_grad=True)
        opt = torch.optim.AdamW([p], fused=True)
        p.grad = torch.ones(1)
        opt.step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


#: whether ``torch.optim.AdamW(fused=True)`` steps on a CPU (torch >= 2.4)
CPU_FUSED_ADAM = _cpu_fused_adam()

requires_cpu_fused_adam = pytest.mark.skipif(
    not CPU_FUSED_ADAM, reason="torch < 2.4 has no fused Adam(W) kernel for the CPU"
)
