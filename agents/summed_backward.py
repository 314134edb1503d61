"""The gradient of :meth:`BatchedPPO.update_summed`'s loss, written out: autograd's own
arithmetic, without autograd.

At the sizes this project trains (ten seeds, two 64 x 64 MLPs, about thirty distinct
observations) an epoch of the summed update is a few hundred small tensor operations, and
recording the graph, running torch's backward engine and moving each gradient into its
``.grad`` cost about a sixth of the update (``docs/performance.md``). Here each backward
node is the formula torch's ``derivatives.yaml`` gives it, with the same kernels on the same
operands, and where one tensor feeds several others, their gradients are added in the order
the engine adds them (it runs the ready node created last first). So the gradients are
autograd's, bit for bit, and a seed's training is what it was: ``tests/test_batched_ppo.py``
trains with both and compares the weights exactly, for each case this covers.

It covers the defaults' loss: the clipped surrogate, the value error without clipping
(``clip_range_vf`` unset), the entropy bonus, the probability floor's hinge
(``prob_floor``), tanh or ReLU between layers, on the CPU. The learner falls back on
autograd otherwise (``kl_coef``, ``clip_range_vf``, a CUDA device).

What each step mirrors, from the loss back (``g_*``: a gradient):

* ``total.sum()``, ``a + b``, ``-a``, ``a / n``, ``c * a``: ones, passed on, negated, divided,
  multiplied: the constants of an update, computed once (:class:`LossWeights`);
* ``torch.min(r, c)`` and ``torch.max(r, c)``: ``where(r == c, g / 2, g)``, then zero where
  the other is smaller (larger); ``clamp(r, lo, hi)``: ``where(lo <= r <= hi, g, 0)``;
* ``exp``: ``g * exp(x)``; ``where(m, x, 0)``: ``where(m, g, 0)``; ``(v - m) ** 2``:
  ``g * (2 * (v - m).pow(1))``; ``relu``: ``threshold_backward``;
* ``logits - logsumexp``: ``g`` to the logits and ``-g`` summed over the actions to the
  log-sum-exp, whose own gradient is ``g * exp(logits - lse)``; ``softmax``:
  ``_softmax_backward_data``;
* a layer ``baddbmm(b, x, W)``: ``x^T g`` (``bmm``), ``g W^T`` and ``g`` summed over the
  rows; the value head ``(x * w^T).sum(-1) + b`` likewise with products and sums; tanh:
  ``tanh_backward`` of its output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

Layers = list[tuple[torch.Tensor, torch.Tensor]]


def mlp_forward(
    x: torch.Tensor,
    layers: Sequence[tuple[torch.Tensor, torch.Tensor]],
    act: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Every seed's MLP at once, ``x [K, n, in]`` (may be an expanded view) to ``[K, n,
    out]``, one ``baddbmm`` per layer and ``act`` between layers: ``(out, hidden)``, with
    each hidden layer's output for :func:`mlp_backward`.

    A layer with one output (the value head) is a product and a sum instead: ``bmm`` with
    one output column takes another path for one seed than for several, which would give
    a seed trained alone different last bits than among others."""
    hidden = []
    for j, (w, b) in enumerate(layers):
        if w.shape[-1] == 1:
            x = (x * w.transpose(1, 2)).sum(-1, keepdim=True) + b
        else:
            x = torch.baddbmm(b, x, w)
        if j < len(layers) - 1:
            x = act(x)
            hidden.append(x)
    return x, hidden


ACTIVATION_BACKWARD: dict[Callable, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    torch.tanh: torch.ops.aten.tanh_backward,
    torch.relu: lambda grad, out: torch.ops.aten.threshold_backward(grad, out, 0),
}
"""The gradient of an activation's input from its output's gradient and its output, as
autograd computes it, for each activation :func:`mlp_backward` handles."""


def mlp_backward(
    x: torch.Tensor,
    layers: Layers,
    hidden: list[torch.Tensor],
    grad: torch.Tensor,
    act: Callable[[torch.Tensor], torch.Tensor],
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The gradients ``[(g_W, g_b), ...]`` of every layer of :func:`mlp_forward` from
    ``grad``, the gradient of its output (the input ``x`` takes none)."""
    act_backward = ACTIVATION_BACKWARD[act]
    grads = []
    for j in reversed(range(len(layers))):
        w, _ = layers[j]
        inputs = x if j == 0 else hidden[j - 1]
        g_bias = grad.sum(1, keepdim=True)
        if w.shape[-1] == 1:  # (inputs * w^T).sum(-1, keepdim=True) + b
            g_product = grad.expand(*inputs.shape[:-1], w.shape[-2])
            g_weight = (g_product * inputs).sum(1, keepdim=True).transpose(1, 2)
            g_inputs = g_product * w.transpose(1, 2) if j else None
        else:  # baddbmm(b, inputs, w)
            g_weight = inputs.transpose(1, 2).bmm(grad)
            g_inputs = grad.bmm(w.transpose(1, 2)) if j else None
        grads.append((g_weight, g_bias))
        if g_inputs is not None:
            grad = act_backward(g_inputs, hidden[j - 1])
    return grads[::-1]


class LossWeights(NamedTuple):
    """The gradients of the loss's linear part, constant over an update's epochs: what
    each sum's element gets from ``total.sum()``."""

    gains: torch.Tensor
    """``-G+ / n`` (``[K, cells]``): the gradient of ``min(r, clip r)``."""
    gains_half: torch.Tensor
    losses: torch.Tensor
    """``-G- / n``: the gradient of ``max(r, clip r)``."""
    losses_half: torch.Tensor
    squared_error: torch.Tensor
    """``vf_coef / n * n(u)`` (``[K, U]``)."""
    entropy: torch.Tensor
    """``ent_coef / n * n(u)``, expanded over the actions (``[K, U, A]``)."""
    hinge: torch.Tensor | None
    """``n(u) / n``, expanded over the actions, where the probability floor is on."""


def loss_weights(
    gains: torch.Tensor,
    losses: torch.Tensor,
    count_u: torch.Tensor,
    n: int,
    ent_coef: float,
    vf_coef: float,
    n_actions: int,
    floor: bool,
) -> LossWeights:
    """:class:`LossWeights` for an update (the arguments as in ``update_summed``)."""
    k, rows = count_u.shape
    one = torch.ones(k, device=count_u.device)
    per_sample = (-(one / n)).unsqueeze(1).expand_as(gains)
    surrogate_gains, surrogate_losses = per_sample * gains, per_sample * losses
    entropy = (-((one * ent_coef) / n)).unsqueeze(1).expand(k, rows) * count_u
    hinge = None
    if floor:
        hinge = ((one / n).unsqueeze(1).expand(k, rows) * count_u).unsqueeze(-1)
        hinge = hinge.expand(k, rows, n_actions)
    return LossWeights(
        surrogate_gains,
        surrogate_gains / 2,
        surrogate_losses,
        surrogate_losses / 2,
        ((one * vf_coef) / n).unsqueeze(1).expand(k, rows) * count_u,
        (-entropy).unsqueeze(-1).expand(k, rows, n_actions),
        hinge,
    )


def policy_head_gradient(
    weights: LossWeights,
    logits: torch.Tensor,
    lse: torch.Tensor,
    log_p: torch.Tensor,
    clamped: torch.Tensor,
    softmax: torch.Tensor,
    visited: torch.Tensor,
    ratio: torch.Tensor,
    clipped: torch.Tensor,
    clip_range: float,
    floor_relu: torch.Tensor | None,
) -> torch.Tensor:
    """The gradient of the loss in the logits ``[K, U, A]``, from the forward pass's
    tensors (``floor_relu``: the hinge's ``relu(log floor - log_p)``, where it is on)."""
    k, rows, n_actions = log_p.shape
    zero = torch.scalar_tensor(0.0, device=log_p.device)
    tie, below, above = ratio == clipped, ratio < clipped, ratio > clipped
    # min's and max's gradient to each input: halved at a tie, zero where the other wins.
    g_max = torch.where(tie, weights.losses_half, weights.losses)
    g_ratio_max, g_clipped_max = g_max.masked_fill(below, 0), g_max.masked_fill_(above, 0)
    g_min = torch.where(tie, weights.gains_half, weights.gains)
    g_ratio_min, g_clipped_min = g_min.masked_fill(above, 0), g_min.masked_fill_(below, 0)
    inside = (ratio >= 1 - clip_range).logical_and_(ratio <= 1 + clip_range)
    g_ratio_clamp = torch.where(inside, g_clipped_max + g_clipped_min, zero)
    # The engine adds a tensor's gradients in the order its consumers run: last made, first.
    g_ratio = (g_ratio_max + g_ratio_min) + g_ratio_clamp
    g_log_p = torch.where(visited, g_ratio * ratio, zero).reshape(k, rows, n_actions)
    if floor_relu is not None:
        g_hinge = -torch.ops.aten.threshold_backward(weights.hinge, floor_relu, 0)
        g_log_p = g_hinge + g_log_p
    g_clamped = weights.entropy * softmax
    g_log_p = g_log_p + torch.where(log_p >= torch.finfo(log_p.dtype).min, g_clamped, zero)
    g_softmax = weights.entropy * clamped
    g_logits = torch._softmax_backward_data(g_softmax, softmax, -1, log_p.dtype) + g_log_p
    return g_logits + (-g_log_p).sum(2, keepdim=True) * (logits - lse).exp()


def value_head_gradient(weights: LossWeights, error: torch.Tensor) -> torch.Tensor:
    """The gradient of the loss in the critic's output ``[K, U, 1]``, from ``error``, each
    observation's ``V(u) - mean R(u)``."""
    return (weights.squared_error * (2.0 * error.pow(1.0))).unsqueeze(-1)
