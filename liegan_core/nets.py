"""Small networks shared by methods: MLPs, the GAN discriminator over (x, y) pairs and its stacked form."""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU, **act_kwargs: Any) -> nn.Sequential:
    """Linear layers of the given sizes with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(activation(**act_kwargs))
    return nn.Sequential(*layers)


def flat_dim(shape: Sequence[int]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


class PairDiscriminator(nn.Module):
    """MLP on the concatenated, flattened (x, y); a class label y enters through a learned embedding.

    Returns logits [B] (the sigmoid lives in the loss, BCE-with-logits, which is the same
    objective as sigmoid + BCE but numerically safer).
    """

    def __init__(
        self,
        x_shape: Sequence[int],
        y_shape: Sequence[int],
        y_rep: dict[str, Any],
        hidden: Sequence[int] = (512, 512),
        embedding_dim: int = 32,
    ):
        super().__init__()
        self.label = y_rep["type"] == "label"
        in_dim = flat_dim(x_shape)
        if self.label:
            self.embed = nn.Embedding(int(y_rep["classes"]), embedding_dim)
            in_dim += embedding_dim
        else:
            in_dim += flat_dim(y_shape)
        self.net = mlp([in_dim, *hidden, 1], nn.LeakyReLU, negative_slope=0.2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        yf = self.embed(y.long()) if self.label else y.reshape(y.shape[0], -1)
        return self.net(torch.cat([x.reshape(x.shape[0], -1), yf], dim=1)).squeeze(1)


class StackedDiscriminator(nn.Module):
    """S PairDiscriminators as one module: weights [S, in, out], biases [S, 1, out], baddbmm per layer.

    The S members are independent networks trained side by side (LieGAN: one per seed;
    SymmetryGAN: one per seed and channel). Built from S initialised PairDiscriminators, so each
    member starts from exactly the weights it would have alone; forward takes x [S, B, ...],
    y [S, B, ...] (labels [S, B]) -> logits [S, B].
    """

    def __init__(self, discs: Sequence[PairDiscriminator]):
        super().__init__()
        first = discs[0]
        self.label = first.label
        if self.label:
            self.embed = nn.Parameter(torch.stack([d.embed.weight.detach() for d in discs]))
        layers = list(first.net)
        linear_idx = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
        slopes = {float(m.negative_slope) for m in layers if isinstance(m, nn.LeakyReLU)}
        if len(slopes) > 1 or len(layers) != 2 * len(linear_idx) - 1:
            raise ValueError("StackedDiscriminator expects Linear layers with one LeakyReLU between each")
        self.slope = slopes.pop() if slopes else 0.0
        # A layer with one output unit is kept as [S, 1, in] and applied as w @ h^T: batched matrix
        # products with a single output column take a different (slower) kernel for S > 1 than for
        # S = 1, so a member's numbers would depend on the ensemble size. Other layers: [S, in, out].
        self.row_layer = [first.net[i].out_features == 1 for i in linear_idx]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([d.net[i].weight.detach() if row else d.net[i].weight.detach().t() for d in discs])
                         .contiguous())
            for i, row in zip(linear_idx, self.row_layer)
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([d.net[i].bias.detach() for d in discs]).unsqueeze(1)) for i in linear_idx
        )

    def features(self, x: torch.Tensor, y: torch.Tensor, members: slice = slice(None)) -> torch.Tensor:
        """The network's input [S, B, in]: flattened x, then flattened y or y's embedding."""
        s, b = x.shape[:2]
        if self.label:
            embed = self.embed[members]
            yf = torch.gather(embed, 1, y.long().unsqueeze(-1).expand(s, b, embed.shape[-1]))
        else:
            yf = y.reshape(s, b, -1)
        return torch.cat([x.reshape(s, b, -1), yf], dim=2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Logits [S, B] (differentiable; the training loop uses `gan_step`)."""
        h = self.features(x, y)
        last = len(self.weights) - 1
        for i, (w, bias, row) in enumerate(zip(self.weights, self.biases, self.row_layer)):
            h = torch.baddbmm(bias, w, h.transpose(1, 2)).transpose(1, 2) if row else torch.baddbmm(bias, h, w)
            if i < last:
                h = F.leaky_relu(h, self.slope)
        return h.squeeze(2)

    @staticmethod
    def gan_targets(members: int, rows: int, batch_size: int, device: torch.device) -> dict[int, torch.Tensor]:
        """gan_step's targets per batch size of an epoch over `rows` rows: [members, 2B] (1 for the B real
        pairs, 0 for the B transformed ones), for full batches and the short last one."""
        sizes = {batch_size} | ({rows % batch_size} if rows % batch_size else set())
        return {b: torch.cat([torch.ones(members, b, device=device), torch.zeros(members, b, device=device)], 1)
                for b in sizes}

    @torch.no_grad()
    def gan_step(
        self, x: torch.Tensor, y: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor, targets: torch.Tensor,
        members: slice = slice(None),
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """Both GAN losses and their gradients from ONE forward pass over [real; fake] pairs.

        Returns (loss_d [S], adv [S], grads of loss_d.sum() for self.parameters() in order,
        d adv.sum() / d fake features [S, B, in]). loss_d is the mean BCE over real (target 1) and
        fake (target 0) pairs; adv the mean BCE of the fake pairs against target 1. `members` selects
        the members (x, y, gx, gy, targets hold those members only).

        Exact, not an approximation: the logit is a scalar per row, so the back-propagation from a
        row's logit to that row's hidden units is one vector per row, J_r = d o_r / d h_r, shared
        by both losses, which differ only in the scalar d loss / d o_r. J is computed once (the
        one large input-gradient product), then scaled per row for the discriminator's weight
        gradients and for the generator's input gradient: against autograd's generator step
        (forward + backward through the discriminator) plus discriminator step, this saves one
        forward pass over the fake half and one backward product through the hidden layer.
        """
        b = x.shape[1]
        weights = [w[members] for w in self.weights]
        biases = [bias[members] for bias in self.biases]
        inp = torch.cat([self.features(x, y, members), self.features(gx, gy, members)], 1)
        hs = [inp]
        h = inp
        for w, bias in zip(weights[:-1], biases[:-1]):
            h = F.leaky_relu(torch.baddbmm(bias, h, w), self.slope)
            hs.append(h)
        w_out, b_out = weights[-1], biases[-1]
        logits = torch.baddbmm(b_out, w_out, h.transpose(1, 2)).squeeze(1)  # [S, 2B]
        loss_d = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(1)
        fake = logits[:, b:]
        adv = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake), reduction="none").mean(1)
        prob = torch.sigmoid(logits)
        dlog_d = (prob - targets) / (2 * b)  # d loss_d / d logits  [S, 2B]
        dlog_g = (prob[:, b:] - 1) / b  # d adv / d fake logits    [S, B]

        n_layers = len(weights)
        grads_w: list[torch.Tensor] = [inp] * n_layers  # placeholders, all overwritten below
        grads_b: list[torch.Tensor] = [inp] * n_layers
        grads_w[-1] = torch.bmm(dlog_d.unsqueeze(1), hs[-1])  # [S, 1, H]
        grads_b[-1] = dlog_d.sum(1).reshape(-1, 1, 1)
        jac = w_out.expand(-1, inp.shape[1], -1)  # d logit / d h_last, per row
        d_input_fake = None
        row_d = dlog_d.unsqueeze(1)  # [S, 1, 2B]
        for i in range(n_layers - 2, -1, -1):
            jac = torch.ops.aten.leaky_relu_backward(jac, hs[i + 1], self.slope, True)  # d logit / d pre-activation
            # weight gradient h^T diag(dlog_d) jac: the row scaling goes on the layer's input (16 wide
            # for the first layer instead of 512), the bias gradient is dlog_d^T jac
            grads_w[i] = torch.bmm((hs[i] * dlog_d.unsqueeze(2)).transpose(1, 2), jac)
            grads_b[i] = torch.bmm(row_d, jac)
            if i > 0:
                jac = torch.bmm(jac, weights[i].transpose(1, 2))
            else:
                d_input_fake = torch.bmm(jac[:, b:], weights[0].transpose(1, 2)) * dlog_g.unsqueeze(2)
                if self.label:
                    d_input = torch.bmm(jac, weights[0].transpose(1, 2)) * dlog_d.unsqueeze(2)
        if d_input_fake is None:  # no hidden layer: the logit is linear in the input
            d_input_fake = w_out * dlog_g.unsqueeze(2)
            d_input = w_out * dlog_d.unsqueeze(2)
        grads: list[torch.Tensor] = []
        if self.label:
            embed = self.embed[members]
            labels = torch.cat([y, gy], 1).long().unsqueeze(-1).expand(-1, -1, embed.shape[-1])
            grads.append(torch.zeros_like(embed).scatter_add_(1, labels, d_input[..., -embed.shape[-1]:]))
        return loss_d, adv, grads + grads_w + grads_b, d_input_fake


class ConvPairDiscriminator(nn.Module):
    """Discriminator for (image, label) pairs: a small CNN on [B, C, H, W], label embedding, MLP head."""

    def __init__(self, x_shape: Sequence[int], y_rep: dict[str, Any], embedding_dim: int = 32, width: int = 32):
        super().__init__()
        c, h, w = (int(v) for v in x_shape)
        self.features = nn.Sequential(
            nn.Conv2d(c, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        feat = 2 * width * ((h + 3) // 4) * ((w + 3) // 4)
        self.label = y_rep["type"] == "label"
        extra = embedding_dim if self.label else 0
        if self.label:
            self.embed = nn.Embedding(int(y_rep["classes"]), embedding_dim)
        self.head = mlp([feat + extra, 256, 1], nn.LeakyReLU, negative_slope=0.2)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        parts = [self.features(x)]
        if self.label:
            parts.append(self.embed(y.long()))
        return self.head(torch.cat(parts, dim=1)).squeeze(1)
