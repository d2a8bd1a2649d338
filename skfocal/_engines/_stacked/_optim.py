r"""AdamW and Adam for ``M`` stacked members, each with its own learning rate and weight decay.

Member ``m``'s parameters are row ``m`` of a ``(M, P)`` tensor (``StackedMLP.flat_params``).
At its :math:`t_m`-th step a member is updated exactly as ``torch.optim.AdamW`` (or ``Adam``)
with ``betas=(\beta_1, \beta_2)``, ``eps``, ``amsgrad=False``, ``maximize=False`` updates a
single model:

.. math::

    \theta &\leftarrow \theta\,(1 - \eta_m \lambda_m) \quad \text{(AdamW; Adam adds }
        \lambda_m \theta \text{ to } g\text{ instead)} \\
    m &\leftarrow \beta_1 m + (1 - \beta_1) g, \qquad
    v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
    \theta &\leftarrow \theta - \frac{\eta_m}{1 - \beta_1^{t_m}}\,
        \frac{m}{\sqrt{v} / \sqrt{1 - \beta_2^{t_m}} + \epsilon}

When the updated members share the learning rate and the weight decay, a step is one call of
torch's fused kernel (the kernel of ``AdamW(fused=True)``, the single fits' step, where
:func:`skfocal._fastpaths.fused_adam_kernel` offers it for the device and dtype): on the flat
``(M, P)`` tensors when they also share the step count, else on each member's row as a tensor
of its own with its own count (members with more batches per epoch than others, a refit beside
fold members, a subset of members). Otherwise every operation is one elementwise pass over the
``(M, P)`` tensors, with the per-member factors as ``(M, 1)`` columns, in the order of torch's
single-tensor implementation.

Members that are frozen (:meth:`StackedAdamW.freeze`: stopped or failed) or that have no batch
in a step (``step(active=...)``) are not touched at all: parameters, moments and step count
stay as they are.
"""

from __future__ import annotations

import math
import numbers

import torch

from ... import _fastpaths


def _per_member(name, value, n_members, allowed, low_open):
    """``value`` (a float or one per member) as a float64 tensor of shape (M,), validated."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be {allowed}, got {value!r}.")
    if isinstance(value, numbers.Real):
        values = torch.full((n_members,), float(value), dtype=torch.float64)
    else:
        try:
            values = torch.as_tensor(value, dtype=torch.float64).detach().cpu().reshape(-1)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{name} must be {allowed}, got {value!r}.") from exc
        if values.numel() != n_members:
            raise ValueError(
                f"{name} must be a float or hold one value per member ({n_members}), got "
                f"{values.numel()} values."
            )
    bad = ~torch.isfinite(values) | ((values <= 0) if low_open else (values < 0))
    if bool(bad.any()):
        raise ValueError(f"{name} must be {allowed}, got {values.tolist()}.")
    return values


class StackedAdamW:
    r"""AdamW over ``M`` stacked members with per-member learning rate and weight decay.

    Parameters
    ----------
    params : Tensor of shape (M, P)
        Parameters, one row per member (``StackedMLP.flat_params``); updated in place.
    grads : Tensor of shape (M, P)
        Their gradients (``StackedMLP.flat_grads``), read at every :meth:`step`.
    lr : float or array-like of shape (M,), default=1e-3
        Learning rate :math:`\eta_m > 0` of each member.
    weight_decay : float or array-like of shape (M,), default=1e-2
        Weight decay :math:`\lambda_m \ge 0` of each member (``AdamW``'s default).
    betas : tuple of float, default=(0.9, 0.999)
        Shared :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps : float, default=1e-8
        Shared :math:`\epsilon \ge 0`.

    Attributes
    ----------
    exp_avg, exp_avg_sq : Tensor of shape (M, P)
        First and second moments.
    steps : LongTensor of shape (M,)
        Number of updates each member has taken.
    frozen : BoolTensor of shape (M,)
        Members that are no longer updated.

    Examples
    --------
    >>> import torch
    >>> from skfocal._engines._stacked import StackedAdamW
    >>> params = torch.zeros(2, 3, dtype=torch.float64)
    >>> grads = torch.ones(2, 3, dtype=torch.float64)
    >>> opt = StackedAdamW(params, grads, lr=[0.1, 0.01], weight_decay=0.0)
    >>> opt.step()  # the members updated
    [0, 1]
    >>> params[:, 0]
    tensor([-0.1000, -0.0100], dtype=torch.float64)
    >>> opt.freeze([0]); opt.step(); opt.steps
    [1]
    tensor([1, 2])
    """

    decoupled_weight_decay = True

    def __init__(self, params, grads, lr=1e-3, weight_decay=1e-2, betas=(0.9, 0.999), eps=1e-8):
        if not isinstance(params, torch.Tensor) or params.dim() != 2:
            raise ValueError(
                "params must be a tensor of shape (n_members, n_params), got "
                f"{getattr(params, 'shape', type(params).__name__)}."
            )
        if not isinstance(grads, torch.Tensor) or grads.shape != params.shape:
            raise ValueError(
                f"grads must have the shape of params {tuple(params.shape)}, got "
                f"{getattr(grads, 'shape', type(grads).__name__)}."
            )
        if not params.is_contiguous() or not grads.is_contiguous():
            raise ValueError("params and grads must be contiguous (M, P) tensors.")
        beta1, beta2 = (float(b) for b in betas)
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must be two floats in [0, 1), got {tuple(betas)!r}.")
        if not 0.0 <= float(eps) < math.inf:
            raise ValueError(f"eps must be a finite float >= 0, got {eps!r}.")
        n_members = params.shape[0]
        # updated in place through a detached alias: no autograd recording, no no_grad scope
        self.params, self.grads = params.detach(), grads
        self.n_members = n_members
        self.beta1, self.beta2, self.eps = beta1, beta2, float(eps)
        self.lr = _per_member("lr", lr, n_members, "a float > 0 or one per member", True)
        self.weight_decay = _per_member(
            "weight_decay", weight_decay, n_members, "a float >= 0 or one per member", False
        )
        self.exp_avg = torch.zeros_like(params)
        self.exp_avg_sq = torch.zeros_like(params)
        # per-step bookkeeping in Python lists: a step's few decisions cost less than the
        # torch calls on tiny tensors they replace (``steps`` / ``frozen`` give tensors)
        self._counts = [0] * n_members
        self._frozen = [False] * n_members
        self._step_t = torch.zeros(n_members, dtype=torch.float32, device=params.device)
        self._runs = None  # (rows, the fused kernel's lists) of the last fused step
        self._fused = _fastpaths.fused_adam_kernel(
            self.decoupled_weight_decay, params.device, params.dtype
        )
        self._prepare()

    def _prepare(self):
        """Per-member columns and the flags that pick the fast paths (after lr/wd change)."""
        device = self.params.device
        self._lr_col = self.lr.to(device).unsqueeze(1)  # float64
        self._wd_col = self.weight_decay.to(device, self.params.dtype).unsqueeze(1)
        # decoupled decay factor 1 - lr * wd, rounded to the parameters' dtype like torch's
        self._decay_col = (1.0 - self._lr_col * self.weight_decay.to(device).unsqueeze(1)).to(
            self.params.dtype
        )
        self._any_decay = bool((self.weight_decay != 0).any())
        self._shared = bool((self.lr == self.lr[0]).all()) and bool(
            (self.weight_decay == self.weight_decay[0]).all()
        )
        self._lr0, self._wd0 = float(self.lr[0]), float(self.weight_decay[0])
        self._runs = None

    @property
    def steps(self):
        """LongTensor of shape (M,): the number of updates each member has taken."""
        return torch.tensor(self._counts, dtype=torch.long)

    @property
    def frozen(self):
        """BoolTensor of shape (M,): the members that are no longer updated."""
        return torch.tensor(self._frozen, dtype=torch.bool)

    def set_hyperparameters(self, lr=None, weight_decay=None):
        """Change the per-member learning rates and/or weight decays (e.g. a schedule)."""
        if lr is not None:
            self.lr = _per_member("lr", lr, self.n_members, "a float > 0 or one per member", True)
        if weight_decay is not None:
            self.weight_decay = _per_member(
                "weight_decay",
                weight_decay,
                self.n_members,
                "a float >= 0 or one per member",
                False,
            )
        self._prepare()

    def freeze(self, members):
        """Stop updating ``members`` (indices or a boolean mask of shape (M,))."""
        self._set_frozen(members, True)

    def unfreeze(self, members):
        """Resume updating ``members``."""
        self._set_frozen(members, False)

    def _set_frozen(self, members, value):
        mask = torch.zeros(self.n_members, dtype=torch.bool)
        mask[self._index(members)] = True
        for m, selected in enumerate(mask.tolist()):
            if selected:
                self._frozen[m] = value

    def _index(self, members):
        index = torch.as_tensor(members).cpu()
        if index.dtype == torch.bool:
            if index.shape != (self.n_members,):
                raise ValueError(
                    f"a boolean members mask must have shape ({self.n_members},), got "
                    f"{tuple(index.shape)}."
                )
            return index
        index = index.long().reshape(-1)
        if index.numel() and not (
            -self.n_members <= int(index.min()) and int(index.max()) < self.n_members
        ):
            raise IndexError(
                f"members must be indices in [0, {self.n_members}), got {index.tolist()}."
            )
        return index

    def zero_grad(self):
        """Zero the gradients in place."""
        self.grads.zero_()

    def step(self, active=None):
        """Update every member that is not frozen and, if given, is in ``active``.

        Parameters
        ----------
        active : BoolTensor of shape (M,), default=None
            Members that had a batch in this step (the others are skipped like frozen ones).

        Returns
        -------
        rows : list of int
            The members updated.
        """
        frozen = self._frozen
        if active is None:
            rows = [m for m, f in enumerate(frozen) if not f]
        else:
            flags = active.tolist() if isinstance(active, torch.Tensor) else list(active)
            rows = [m for m, (a, f) in enumerate(zip(flags, frozen, strict=True)) if a and not f]
        if not rows:
            return rows
        counts = self._counts
        for m in rows:
            counts[m] += 1
        if self._shared and self._fused is not None:
            self._fused_runs(rows)
        else:
            self._step_rows(rows)
        return rows

    def _fused_runs(self, rows):
        """torch's fused Adam(W) kernel (shared lr and weight decay) on ``rows``: one tensor
        per run of consecutive members at one step count (a view of their rows), each with
        its count. The runs are kept while the same members step (their counts move
        together)."""
        cached = self._runs
        step_t = self._step_t
        if cached is None or cached[0] != rows:
            step_t.copy_(torch.tensor(self._counts, dtype=step_t.dtype))
            counts, runs, start = self._counts, [], 0
            for i in range(1, len(rows) + 1):
                if (
                    i == len(rows)
                    or rows[i] != rows[i - 1] + 1
                    or counts[rows[i]] != counts[rows[start]]
                ):
                    runs.append(slice(rows[start], rows[i - 1] + 1))
                    start = i
            lists = (
                [self.params[r] for r in runs],
                [self.grads[r] for r in runs],
                [self.exp_avg[r] for r in runs],
                [self.exp_avg_sq[r] for r in runs],
                [step_t[r.start] for r in runs],  # one count per run: its first member's
            )
            cached = self._runs = (rows, lists)
        else:  # the same members as the last step: every count moved by one
            step_t.add_(1)
        self._call_fused(*cached[1])

    def _step_rows(self, rows):
        """Step ``rows`` (member indices, their counts already advanced) op by op."""
        n_rows = len(rows)
        first = rows[0]
        counts = [self._counts[m] for m in rows]
        if n_rows == self.n_members:
            index = slice(None)
        elif rows[-1] - first + 1 == n_rows:
            index = slice(first, first + n_rows)  # a contiguous run: views, no copies
        else:
            index = None
        if index is not None:
            tensors = (
                self.params[index],
                self.grads[index],
                self.exp_avg[index],
                self.exp_avg_sq[index],
            )
            self._update(*tensors, index, counts)
            return
        device_rows = torch.tensor(rows, device=self.params.device)
        tensors = [
            t.index_select(0, device_rows)
            for t in (self.params, self.grads, self.exp_avg, self.exp_avg_sq)
        ]
        self._update(*tensors, device_rows, counts)
        for full, part in zip(
            (self.params, None, self.exp_avg, self.exp_avg_sq), tensors, strict=True
        ):
            if full is not None:
                full.index_copy_(0, device_rows, part)

    def _call_fused(self, params, grads, exp_avgs, exp_avg_sqs, state_steps):
        """One call of the fused kernel on lists of tensors, with the shared hyperparameters."""
        self._fused(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            state_steps,
            lr=self._lr0,
            beta1=self.beta1,
            beta2=self.beta2,
            weight_decay=self._wd0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def _update(self, param, grad, exp_avg, exp_avg_sq, rows, counts):
        """One Adam(W) step of the given rows, whose step counts are ``counts``."""
        beta1, beta2 = self.beta1, self.beta2
        step = counts[0] if all(c == counts[0] for c in counts) else None
        lr = self._lr_col[rows]
        if self._any_decay:
            if self.decoupled_weight_decay:
                param.mul_(self._decay_col[rows])
            else:
                grad = torch.addcmul(grad, param, self._wd_col[rows])
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        if step is not None:  # Python floats, exactly as torch's single-tensor implementation
            bias_correction1 = 1 - beta1**step
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            neg_step_size = torch.div(lr, -bias_correction1)
            denom = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(self.eps)
        else:
            count = torch.tensor(counts, dtype=torch.float64, device=param.device).unsqueeze(1)
            bias_correction1 = 1 - torch.pow(beta1, count)
            bias_correction2_sqrt = (1 - torch.pow(beta2, count)).sqrt_().to(param.dtype)
            neg_step_size = torch.div(lr, bias_correction1).neg_()
            denom = exp_avg_sq.sqrt().div_(bias_correction2_sqrt).add_(self.eps)
        param.addcdiv_(exp_avg.mul(neg_step_size.to(param.dtype)), denom)


class StackedAdam(StackedAdamW):
    r"""Adam (L2 weight decay added to the gradient) over ``M`` stacked members.

    Same parameters as :class:`StackedAdamW`, but ``weight_decay`` defaults to 0 (``Adam``'s
    default) and enters as :math:`g \leftarrow g + \lambda_m \theta`, like ``torch.optim.Adam``.

    Examples
    --------
    >>> import torch
    >>> from skfocal._engines._stacked import StackedAdam
    >>> params, grads = torch.ones(2, 1), torch.ones(2, 1)
    >>> StackedAdam(params, grads, lr=[0.5, 0.1]).step()
    [0, 1]
    >>> params.flatten()
    tensor([0.5000, 0.9000])
    """

    decoupled_weight_decay = False

    def __init__(self, params, grads, lr=1e-3, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, grads, lr=lr, weight_decay=weight_decay, betas=betas, eps=eps)
