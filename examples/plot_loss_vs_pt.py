r"""
====================================================
Focal and margin losses as a function of :math:`p_t`
====================================================

Every loss in :mod:`skfocal.losses` is cross-entropy :math:`-\log p_t` times a modulating
factor that depends only on :math:`p_t`, the probability the model gives to the true class:

* focal loss: :math:`(1 - p_t)^\gamma`;
* hard margin loss: :math:`\lambda = 1` if :math:`p_t \le m`, else 0 -- cross-entropy cut off
  once an example is "right enough";
* soft margin loss: :math:`\lambda = \sigma(K(\operatorname{logit} m - \operatorname{logit} p_t))`,
  a differentiable version of the cut-off.

This example evaluates the real loss functions on a grid of :math:`p_t` values (a single
logit per example, target 1, so :math:`p_t = \sigma(z)`) and draws them. It also checks the
numerical claim that makes ``0 < gamma < 1`` usable: the gradient stays finite where the
textbook formula returns NaN.
"""

# %%
# Loss versus :math:`p_t` for several values of gamma
# ----------------------------------------------------
import matplotlib.pyplot as plt
import numpy as np
import torch

from skfocal.losses import binary_focal_loss_with_logits, binary_margin_loss_with_logits

p_t = torch.linspace(0.005, 0.995, 400, dtype=torch.float64)
logits = torch.logit(p_t)  # one logit per example; target 1 => p_t = sigmoid(logit)
target = torch.ones_like(logits)

fig, ax = plt.subplots(figsize=(6.4, 4.2))
for gamma in [0.0, 0.5, 1.0, 2.0, 5.0]:
    loss = binary_focal_loss_with_logits(logits, target, gamma=gamma, reduction="none")
    label = "cross-entropy (gamma=0)" if gamma == 0 else f"focal, gamma={gamma:g}"
    ax.plot(p_t, loss, label=label)
ax.set(xlabel="$p_t$ (probability of the true class)", ylabel="loss", ylim=(0, 5))
ax.set_title("Focal loss: well-classified examples ($p_t > 0.5$) are down-weighted")
ax.legend()
fig.tight_layout()

# %%
# How much an easy example still counts
# -------------------------------------
# The ratio focal / cross-entropy is exactly the modulating factor :math:`(1 - p_t)^\gamma`:
# at :math:`p_t = 0.9` and ``gamma=2`` an example counts 100 times less than under
# cross-entropy, at :math:`p_t = 0.5` four times less.
at = torch.tensor([0.5, 0.9, 0.99], dtype=torch.float64)
ce_at = binary_focal_loss_with_logits(torch.logit(at), torch.ones(3), gamma=0.0, reduction="none")
for gamma in [0.5, 1.0, 2.0, 5.0]:
    focal_at = binary_focal_loss_with_logits(
        torch.logit(at), torch.ones(3), gamma=gamma, reduction="none"
    )
    ratio = (focal_at / ce_at).tolist()
    print(
        f"gamma={gamma:g}: " + ", ".join(f"p_t={p:g}: x{r:.4g}" for p, r in zip(at.tolist(), ratio))
    )

ce = binary_focal_loss_with_logits(logits, target, gamma=0.0, reduction="none")

# %%
# Margin loss: hard and soft truncation
# -------------------------------------
# The hard margin loss is cross-entropy up to :math:`p_t = m` and zero after it. The soft
# version replaces the step by a sigmoid of sharpness ``softness``; with ``margin=0.5`` and
# ``softness=1`` it is *exactly* focal loss with ``gamma=1``, because
# :math:`\sigma(-\operatorname{logit} p_t) = 1 - p_t`.
fig, ax = plt.subplots(figsize=(6.4, 4.2))
ax.plot(p_t, ce, color="k", lw=1, ls=":", label="cross-entropy")
hard = binary_margin_loss_with_logits(logits, target, margin=0.6, reduction="none")
ax.plot(p_t, hard, lw=2, label="hard margin, m=0.6")
for softness in [2.0, 10.0]:
    soft = binary_margin_loss_with_logits(
        logits, target, margin=0.6, softness=softness, reduction="none"
    )
    ax.plot(p_t, soft, label=f"soft margin, m=0.6, K={softness:g}")
soft_half = binary_margin_loss_with_logits(
    logits, target, margin=0.5, softness=1.0, reduction="none"
)
focal_one = binary_focal_loss_with_logits(logits, target, gamma=1.0, reduction="none")
ax.plot(p_t, soft_half, lw=4, alpha=0.4, label="soft margin, m=0.5, K=1")
ax.plot(p_t, focal_one, ls="--", color="k", label="focal, gamma=1")
ax.set(xlabel="$p_t$", ylabel="loss", ylim=(0, 3))
ax.set_title("Margin loss: cross-entropy truncated at $p_t = m$")
ax.legend(fontsize="small")
fig.tight_layout()
print(
    "max |soft margin(m=0.5, K=1) - focal(gamma=1)| =", float((soft_half - focal_one).abs().max())
)

# %%
# Gradients stay finite for ``0 < gamma < 1``
# -------------------------------------------
# The derivative of :math:`(1 - p_t)^\gamma` is :math:`-\gamma (1 - p_t)^{\gamma - 1}`, which
# is infinite at :math:`p_t = 1`. In float32, :math:`\sigma(z)` rounds to exactly 1 from a
# logit of about 17, and autograd of the textbook formula then multiplies infinity by zero.
# Below, ``textbook`` is the usual formula (the one torchvision's ``sigmoid_focal_loss`` uses),
# differentiated by autograd; skfocal's loss uses a closed-form gradient written in log space.


def textbook_focal(z, y, gamma):
    p = torch.sigmoid(z)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    return ce * (1 - p_t) ** gamma


margins = torch.arange(0.0, 40.5, 0.5)
fig, ax = plt.subplots(figsize=(6.4, 4.2))
for name, fn in [
    ("textbook formula (autograd)", lambda z, y: textbook_focal(z, y, 0.5)),
    ("skfocal", lambda z, y: binary_focal_loss_with_logits(z, y, gamma=0.5, reduction="none")),
]:
    z = margins.clone().float().requires_grad_(True)
    fn(z, torch.ones_like(z)).sum().backward()
    grad = z.grad.detach()
    nan = torch.isnan(grad)
    print(f"{name}: NaN gradients from logit {margins[nan].min().item() if nan.any() else None}")
    ax.semilogy(margins[~nan], grad[~nan].abs().clamp_min(1e-30), label=name)
    if nan.any():
        ax.scatter(
            margins[nan],
            np.full(int(nan.sum()), 1e-30),
            marker="x",
            color="r",
            label=f"{name}: NaN",
        )
ax.set(xlabel="logit of the true class (float32)", ylabel="|d loss / d logit|  (gamma=0.5)")
ax.set_title("Gradient of focal loss with gamma=0.5 in float32")
ax.legend(fontsize="small")
fig.tight_layout()
plt.show()
