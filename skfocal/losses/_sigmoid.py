r"""The fused sigmoid losses: loss and logit gradient in one pass, per element or reduced.

The compute functions of :func:`~skfocal.losses._fused.run` for sigmoid outputs (binary and
multilabel): ``compute(input, target, ..., need_grad) -> (loss, d loss / d input)``, the focal
``gamma`` in fused formulas (a float) or any kernel of :mod:`~skfocal.losses._kernels`.

:math:`p` and :math:`1 - p` are both sigmoids and :math:`-\log p`,
:math:`-\log(1 - p)` both softplus values, each exact (no ``softplus(-x) + x``
cancellation). The two sides are weighted by ``(1 - y) a-`` (formed as ``a- - a- y``) and
``y a+``, each exactly 0 on the inactive side of a hard label, so neither the loss nor its
gradient ``(1 - y) g- + y g+`` suffers the ``g- - y (g- + g+)`` cancellation. Labels known to
be hard (exactly 0 or 1) skip the two sides altogether: :func:`_sigmoid_signed` computes the
one active side on the signed logit ``x - 2xy``, which is exactly ``x`` or ``-x`` (on a large
CPU input block by block, :func:`_sigmoid_signed_blocks`, so that its temporaries stay in
cache).

The forms here assume that the weights and targets need no gradient. When one of them does,
``_reduce`` switches to :func:`sigmoid_terms`: the unweighted per-element terms with the same
closed-form logit gradient, weighted by ordinary autograd operations.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ._fused import compute_dtype
from ._kernels import power


def _sigmoid_parts(x):
    """``p, q, -log p, -log q`` for ``p = sigmoid(x)``, ``q = 1 - p``, each exact.

    ``-log p = c + relu(-x)`` and ``-log q = c + relu(x)`` with ``c = log1p(exp(-|x|))``
    (sums of two non-negative terms: no cancellation). One ``log1p`` pass instead of the two
    of ``softplus(-x)`` and ``softplus(x)``: on large inputs, where ``log1p`` is the most
    expensive operation per element, that is one pass fewer of it.
    """
    nx = x.neg()
    p, q = torch.sigmoid(x), torch.sigmoid(nx)
    c = x.abs().neg_().exp_().log1p_()
    return p, q, nx.clamp_min(0.0).add_(c), x.clamp_min(0.0).add_(c)


def _times(t, w):
    """``t * w`` for ``t`` None (meaning 1) or a tensor, ``w`` None (1), a float or a tensor."""
    if w is None:
        return t
    if t is None:
        return w
    return t * w


def _label_weights(base, gamma: float, weight, y, positive: bool):
    r"""``y w base^gamma`` (``positive``) or ``(1 - y) w base^gamma``, a tensor (maybe ``y``).

    The negative side is formed as ``m - m y``, exactly 0 at ``y = 1`` and exactly ``m`` at
    ``y = 0``: with these two factors the loss and its gradient need no ``lerp``, and one of
    the two terms of each is exactly zero for a hard label.
    """
    if gamma == 0.0:
        if positive:
            return _times(y, weight)
        return _times(torch.rsub(y, 1.0), weight)
    if gamma == 2.0 and not isinstance(weight, torch.Tensor):  # one op: 0 + w * base * base
        value = 1.0 if weight is None else weight
        zero = _stacking(base.dim(), base.dtype, base.device)[1]
        mod = torch.addcmul(zero, base, base, value=value)
    else:
        mod = _times(power(base, gamma), weight)
    if positive:
        return mod * y
    return torch.addcmul(mod, mod, y, value=-1.0)


def _sigmoid_block(x, y, kernel, pos_w, neg_w, reduce, need_grad, loss_out=None, grad_out=None):
    """Loss (summed if ``reduce``) and gradient of one block of a sigmoid loss.

    ``u = y a+ q^g`` and ``v = (1 - y) a- p^g`` weight the two sides; the loss is
    ``u s+ + v s-`` and the gradient ``v (p + g q s-) - u (q + g p s+)``.
    """
    p, q, s_pos, s_neg = _sigmoid_parts(x)
    grad = None
    if isinstance(kernel, float):
        gamma = kernel
        u = _label_weights(q, gamma, pos_w, y, positive=True)
        v = _label_weights(p, gamma, neg_w, y, positive=False)
        if need_grad:
            if gamma:
                a = torch.addcmul(p, q, s_neg, value=gamma).mul_(v)
                b = torch.addcmul(q, p, s_pos, value=gamma)
            else:
                a, b = p.mul_(v), q
            grad = torch.addcmul(a, b, u, value=-1.0, out=grad_out)
        l_pos, l_neg = s_pos, s_neg
    else:
        k_pos, d_pos = kernel(s_pos.neg(), p, q, need_grad)
        k_neg, d_neg = kernel(s_neg.neg(), q, p, need_grad)
        u = _times(y, pos_w)
        v = _times(torch.rsub(y, 1.0), neg_w)
        if need_grad:  # d log p / dx = q, d log(1 - p) / dx = -p
            a = d_pos.mul_(q).mul_(u)
            grad = torch.addcmul(a, d_neg.mul_(p), v, value=-1.0, out=grad_out)
        l_pos, l_neg = k_pos, k_neg
    if reduce:
        loss = torch.vdot(u.reshape(-1), l_pos.reshape(-1)) + torch.vdot(
            v.reshape(-1), l_neg.reshape(-1)
        )
    else:
        loss = torch.addcmul(l_pos.mul_(u), v, l_neg, out=loss_out)
    return loss, grad


@functools.lru_cache(maxsize=64)
def _stacking(ndim: int, dtype: torch.dtype, device: torch.device):
    """``[1, -1]`` of shape (2, 1, ..., 1), which stacks ``[x, -x]`` in one multiplication; a
    zero scalar; the ``softplus`` threshold; and ``[1, -1]`` as a vector (row 0 minus row 1 of
    a stacked tensor in one ``matmul``).

    ``softplus(z)`` returns ``z`` above its threshold, dropping ``log1p(exp(-z))``: below the
    float32 rounding of ``z`` from 20 on, but not below float64's before 37.
    """
    vector = torch.tensor([1.0, -1.0], dtype=dtype, device=device)
    threshold = 40.0 if dtype == torch.float64 else 20.0
    zero = torch.zeros((), dtype=dtype, device=device)
    return vector.view((2,) + (1,) * ndim), zero, threshold, vector


def _scaled_weights(pos_w, neg_w, dtype, device, scale):
    """``s a+, s a-`` as tensors broadcast to one shape (None meaning a weight of 1)."""
    pos = torch.as_tensor(1.0 if pos_w is None else pos_w, dtype=dtype, device=device)
    neg = torch.as_tensor(1.0 if neg_w is None else neg_w, dtype=dtype, device=device)
    return torch.broadcast_tensors(pos * scale, neg * scale)


@functools.lru_cache(maxsize=64)
def _scalar_pair_constants(pos_w, neg_w, ndim, dtype, device, scale):
    pos = scale if pos_w is None else pos_w * scale
    neg = scale if neg_w is None else neg_w * scale
    shape = (2,) + (1,) * ndim
    c0 = torch.tensor([neg, 0.0], dtype=dtype, device=device).view(shape)
    c1 = torch.tensor([-neg, pos], dtype=dtype, device=device).view(shape)
    return c0, c1


def pair_constants(pos_w, neg_w, ndim: int, dtype: torch.dtype, device, scale: float = 1.0):
    """``c0 = s [a-, 0]``, ``c1 = s [-a-, a+]``: ``c0 + c1 y = s [(1 - y) a-, y a+]`` in one op.

    ``a- - a- y`` is exactly 0 at ``y = 1``, and ``a+ y`` exactly 0 at ``y = 0``; ``s`` is the
    ``"mean"`` reduction's ``1 / n`` (1 otherwise). The weights are None (1), floats or tensors
    broadcastable to ``ndim``-dimensional input; the constants have shape (2, 1, ...,
    *weights' shape) and are cached for floats.
    """
    if not isinstance(pos_w, torch.Tensor) and not isinstance(neg_w, torch.Tensor):
        return _scalar_pair_constants(pos_w, neg_w, ndim, dtype, device, scale)
    pos, neg = _scaled_weights(pos_w, neg_w, dtype, device, scale)
    shape = (2,) + (1,) * (ndim - pos.dim()) + tuple(pos.shape)
    c0 = torch.stack((neg, torch.zeros_like(neg))).view(shape)
    c1 = torch.stack((neg.neg(), pos)).view(shape)
    return c0, c1


def _sigmoid_stacked(x, y, gamma: float, consts, reduce: bool, need_grad: bool):
    """The focal sigmoid loss in few operations, for inputs small enough to stack.

    Row 0 is the negative side, row 1 the positive one: one multiplication stacks
    ``[x, -x]``, one ``sigmoid`` gives ``[p, q]``, one ``softplus`` ``[s-, s+]``, one
    ``addcmul`` the label weights ``[(1 - y) a-, y a+]`` (times the mean's ``1 / n``), and
    every later operation serves both sides at once; a 1-d input's gradient, row 0 minus
    row 1, is one ``matmul`` (exact: the weights are +-1).
    """
    signs, _, threshold, vector = _stacking(x.dim(), x.dtype, x.device)
    xx = x * signs
    pq = torch.sigmoid(xx)  # [p, q]
    # [s-, s+] = [-log q, -log p]; softplus's default threshold is 20 (faster without args)
    s = F.softplus(xx) if threshold == 20.0 else F.softplus(xx, 1.0, threshold)
    u = torch.addcmul(consts[0], consts[1], y)  # [(1 - y) a-, y a+]
    if gamma == 2.0:  # u = [(1 - y) a- p^2, y a+ q^2]
        u = u.mul_(pq).mul_(pq)
    elif gamma:
        u = u.mul_(pq if gamma == 1.0 else pq.pow(gamma))
    grad = None
    if need_grad:  # v (p + g q s-) - u (q + g p s+), with [v, u] the rows of u
        g = torch.addcmul(pq, pq.flip(0), s, value=gamma).mul_(u) if gamma else pq * u
        grad = torch.matmul(vector, g) if x.dim() == 1 else torch.sub(*g.unbind())
    terms = s.mul_(u)
    loss = terms.sum() if reduce else torch.add(*terms.unbind())
    return loss, grad


def _sigmoid_signed(
    x, y, gamma: float, consts, reduce: bool | None, need_grad: bool, loss_out=None, grad_out=None
):
    r"""The focal sigmoid loss for hard labels ``y`` in {0, 1}, on the signed logit.

    With :math:`z = (2y - 1) x` (so that :math:`p_t = \sigma(z)`), :math:`q = 1 - p_t =
    \sigma(-z)` and :math:`s = -\log p_t = \operatorname{softplus}(-z)`, an element's loss is
    :math:`a_t q^\gamma s` and

    .. math::

        \frac{\partial}{\partial x}\, a_t q^\gamma s
            = (1 - 2y)\, a_t q^\gamma \left(q + \gamma\, p_t\, s\right),

    with no negative power of ``q`` (finite for ``gamma < 1``). Everything is computed on
    ``-z = x - 2 x y``, exactly ``x`` or ``-x`` for a hard label: one ``sigmoid``, one
    ``softplus`` and a few products on tensors of the input's shape, where
    :func:`_sigmoid_stacked` (any label in [0, 1]) works on ``[x, -x]`` and subtracts its
    rows. ``consts`` are :func:`signed_constants`: ``a_t`` (times the mean's ``1 / n``) is
    selected by ``lerp``, which returns its end points exactly at weights 0 and 1. ``reduce``:
    True sums, False returns the per-element losses, None the factors ``(u, s)`` of the
    per-element losses ``u * s`` (for a training loop's once-per-epoch sum). ``loss_out`` and
    ``grad_out``: tensors to write the per-element losses and the gradient into (a block of
    :func:`_sigmoid_signed_blocks`' outputs), or None.
    """
    zero, one, threshold, neg, pos, scale = consts
    nz = torch.addcmul(x, x, y, value=-2.0)  # -z, exactly -x or x
    q = torch.sigmoid(nz)
    s = F.softplus(nz) if threshold == 20.0 else F.softplus(nz, 1.0, threshold)
    if neg is None:  # u = q^gamma (/ n)
        if gamma == 2.0:
            u = torch.addcmul(zero, q, q, value=scale)
        elif gamma == 1.0:
            u = torch.addcmul(zero, q, one, value=scale)
        else:
            u = torch.addcmul(zero, q.pow(gamma), one, value=scale)
    else:  # u = a_t q^gamma (/ n)
        u = torch.lerp(neg, pos, y)
        if gamma == 2.0:
            u = u.mul_(q).mul_(q)
        elif gamma:
            u = u.mul_(q if gamma == 1.0 else q.pow(gamma))
    if reduce:
        loss = torch.vdot(u, s) if x.dim() == 1 else torch.vdot(u.reshape(-1), s.reshape(-1))
    elif reduce is None:  # the sum of u * s, left to a caller that sums many batches at once
        loss = (u, s)
    else:
        loss = u * s if loss_out is None else torch.mul(u, s, out=loss_out)
    if not need_grad:
        return loss, None
    # q + gamma p s, p = 1 - q (exact where it matters: not q + gamma s - gamma q s)
    g = torch.addcmul(q, torch.sub(one, q), s, value=gamma).mul_(u) if gamma else q.mul_(u)
    if grad_out is not None:
        return loss, torch.addcmul(g, g, y, value=-2.0, out=grad_out)
    return loss, torch.addcmul(g, g, y, value=-2.0)  # (1 - 2y) g, exactly g or -g


def _sigmoid_signed_blocks(x, y, gamma: float, consts, reduce: bool, need_grad: bool):
    """:func:`_sigmoid_signed` over blocks of ``_BLOCK`` elements per thread, into one output.

    The signed form's dozen temporaries are each a pass over memory on a large CPU input;
    block by block they stay in the L2 cache (as in :func:`_sigmoid_blocks`, with half the
    operations of the two-sided form).
    """
    zero, one, threshold, neg, pos, scale = consts
    by_rows = neg is not None and neg.dim() > 0

    def evaluate(start, stop, x_part, y_part, loss_out, grad_out):
        part = consts
        if by_rows:
            ndim = x.dim()
            part = (
                zero,
                one,
                threshold,
                _rows(neg, start, stop, ndim),
                _rows(pos, start, stop, ndim),
                scale,
            )
        return _sigmoid_signed(x_part, y_part, gamma, part, reduce, need_grad, loss_out, grad_out)

    return _in_blocks(x, y, by_rows, reduce, need_grad, evaluate)


@functools.lru_cache(maxsize=64)
def _scalar_signed_constants(pos_w, neg_w, dtype, device, scale):
    return _signed_constants(pos_w, neg_w, dtype, device, scale)


def signed_constants(pos_w, neg_w, dtype: torch.dtype, device, scale: float = 1.0):
    """:func:`_sigmoid_signed`'s constants ``(0, 1, softplus threshold, s a_-, s a_+, s)``
    (``s``: the ``"mean"`` reduction's ``1 / n``, else 1; the weights None when both are None;
    cached for float weights)."""
    if not isinstance(pos_w, torch.Tensor) and not isinstance(neg_w, torch.Tensor):
        return _scalar_signed_constants(pos_w, neg_w, dtype, device, scale)
    return _signed_constants(pos_w, neg_w, dtype, device, scale)


def _signed_constants(pos_w, neg_w, dtype, device, scale):
    _, zero, threshold, _ = _stacking(0, dtype, device)
    neg = pos = None
    if pos_w is not None or neg_w is not None:
        pos, neg = _scaled_weights(pos_w, neg_w, dtype, device, scale)
    one = torch.ones((), dtype=dtype, device=device)
    return zero, one, threshold, neg, pos, scale


# elements per thread: a block's dozen temporaries stay in the L2 cache (bench_losses.py
# --only thresholds times blocks of 8k, 32k and 128k elements and the whole input)
_BLOCK = 32768


def stacks(x) -> bool:
    """Whether a sigmoid loss of ``x`` takes the stacked form (:func:`_sigmoid_stacked`): up
    to ``_BLOCK`` elements per thread on a CPU, any size on an accelerator (fewest launches).
    """
    return x.numel() <= _BLOCK * torch.get_num_threads() or not x.is_cpu


def _rows(w, start, stop, ndim):
    """Rows ``start:stop`` of a weight broadcast against ``ndim``-dimensional input."""
    if isinstance(w, torch.Tensor) and w.dim() == ndim and w.shape[0] != 1:
        return w[start:stop]
    return w


def sigmoid_compute(input, target, kernel, pos_w, neg_w, reduction, consts, need_grad):
    r"""Sigmoid loss ``(1 - y) a_- L_- + y a_+ L_+`` (weights None, float or tensor), gradient.

    ``kernel`` is the focal ``gamma`` (float) or a generic kernel; ``consts`` None or the
    :func:`pair_constants` of the weights (and scale) for this input (the modules cache them).
    With
    :math:`s_\pm = -\log p, -\log(1-p)`, the focal terms and their derivatives are

    .. math::

        L_+ = q^\gamma s_+, \quad \partial_x L_+ = -q^\gamma (q + \gamma\,p\,s_+), \qquad
        L_- = p^\gamma s_-, \quad \partial_x L_- = p^\gamma (p + \gamma\,q\,s_-).

    Up to ``_BLOCK`` elements per thread (and on accelerators, where the cost is per kernel
    launch) the two sides are stacked, so that each operation serves both: fewest operations,
    which is what costs at training batch sizes. Larger CPU inputs are processed side by side
    (fewer passes over the data) in blocks of that size: every operation is elementwise, and
    a block's temporaries stay in cache, which makes the passes cheaper (``_BLOCK``).
    """
    dtype = input.dtype
    cdtype = compute_dtype(dtype)
    x = input if dtype is cdtype else input.to(cdtype)
    y = target if target.dtype is cdtype else target.to(cdtype)
    n = x.numel()
    scale = 1.0 / n if reduction == "mean" and n else 1.0
    reduce = reduction != "none"
    block = _BLOCK * torch.get_num_threads()
    if type(kernel) is float and stacks(x):
        if consts is None:
            consts = pair_constants(pos_w, neg_w, x.dim(), cdtype, x.device, scale)
        loss, grad = _sigmoid_stacked(x, y, kernel, consts, reduce, need_grad)
    else:
        if scale != 1.0:
            pos_w = scale if pos_w is None else pos_w * scale
            neg_w = scale if neg_w is None else neg_w * scale
        tensors = isinstance(pos_w, torch.Tensor) or isinstance(neg_w, torch.Tensor)
        if n <= 2 * block or x.dim() == 0 or (tensors and x.shape[0] < 2) or not x.is_cpu:
            loss, grad = _sigmoid_block(x, y, kernel, pos_w, neg_w, reduce, need_grad)
        else:
            loss, grad = _sigmoid_blocks(x, y, kernel, pos_w, neg_w, reduce, need_grad)
    if not n and reduction == "mean":
        loss = loss * float("nan")
    if cdtype is not dtype:
        return loss.to(dtype), (None if grad is None else grad.to(dtype))
    return loss, grad


def _sigmoid_blocks(x, y, kernel, pos_w, neg_w, reduce, need_grad):
    """:func:`_sigmoid_block` over blocks of ``_BLOCK`` elements per thread, into one output."""
    by_rows = isinstance(pos_w, torch.Tensor) or isinstance(neg_w, torch.Tensor)

    def evaluate(start, stop, x_part, y_part, loss_out, grad_out):
        ndim = x_part.dim()
        return _sigmoid_block(
            x_part,
            y_part,
            kernel,
            _rows(pos_w, start, stop, ndim),
            _rows(neg_w, start, stop, ndim),
            reduce,
            need_grad,
            loss_out=loss_out,
            grad_out=grad_out,
        )

    return _in_blocks(x, y, by_rows, reduce, need_grad, evaluate)


def _in_blocks(x, y, by_rows, reduce, need_grad, evaluate):
    """A sigmoid loss evaluated block by block into one output (loss summed if ``reduce``).

    Blocks hold about ``_BLOCK`` elements per thread: whole rows when the weights have
    dimensions (``by_rows``: per label or per element, so that they broadcast against a
    block), else stretches of the flattened input. ``evaluate(start, stop, x_block, y_block,
    loss_out, grad_out)`` returns a block's loss and writes its per-element losses (unless
    ``reduce``) and gradient into the given views of the outputs.
    """
    block = _BLOCK * torch.get_num_threads()
    if by_rows:
        xs, ys, step = x, y, max(1, block // (x.numel() // x.shape[0]))
    else:
        xs, ys, step = x.reshape(-1), y.reshape(-1), block
    grad = torch.empty_like(xs) if need_grad else None
    out = None if reduce else torch.empty_like(xs)
    loss = None
    for start in range(0, xs.shape[0], step):
        stop = start + step
        part, _ = evaluate(
            start,
            stop,
            xs[start:stop],
            ys[start:stop],
            None if reduce else out[start:stop],
            None if grad is None else grad[start:stop],
        )
        if reduce:
            loss = part if loss is None else part + loss
    if not reduce:
        loss = out.view(x.shape)
    return loss, (None if grad is None else grad.view(x.shape))


def _sigmoid_terms_compute(input, kernel, need_grad):
    """Unweighted ``[L_pos, L_neg]`` (2, ...) and their logit derivatives, for autograd."""
    cdtype = compute_dtype(input.dtype)
    x = input if input.dtype is cdtype else input.to(cdtype)
    p, q, s_pos, s_neg = _sigmoid_parts(x)
    grad = None
    if isinstance(kernel, float):
        gamma = kernel
        m_pos, m_neg = power(q, gamma), power(p, gamma)
        if need_grad:
            g_pos = torch.addcmul(q, p, s_pos, value=gamma)
            g_neg = torch.addcmul(p, q, s_neg, value=gamma)
            g_pos = _times(g_pos, m_pos).neg_()
            grad = torch.stack((g_pos, _times(g_neg, m_neg)))
        terms = torch.stack((_times(s_pos, m_pos), _times(s_neg, m_neg)))
    else:
        k_pos, d_pos = kernel(s_pos.neg(), p, q, need_grad)
        k_neg, d_neg = kernel(s_neg.neg(), q, p, need_grad)
        if need_grad:
            grad = torch.stack((d_pos.mul_(q), d_neg.mul_(p).neg_()))
        terms = torch.stack((k_pos, k_neg))
    return terms.to(input.dtype), (None if grad is None else grad.to(input.dtype))


class SigmoidTerms(torch.autograd.Function):
    """Stacked unweighted terms ``[L_pos, L_neg]`` of a sigmoid loss, closed-form backward."""

    @staticmethod
    def forward(ctx, input, kernel):
        terms, grad = _sigmoid_terms_compute(input, kernel, need_grad=True)
        ctx.save_for_backward(grad)
        return terms

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return (grad * grad_output).sum(0), None


def sigmoid_terms(input, kernel):
    """``[L_pos, L_neg]`` of shape (2, *input.shape), differentiable w.r.t. ``input``."""
    if input.requires_grad and torch.is_grad_enabled():
        return SigmoidTerms.apply(input, kernel)
    return _sigmoid_terms_compute(input, kernel, need_grad=False)[0]
