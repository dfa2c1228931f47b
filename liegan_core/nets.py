"""Small networks shared by methods: MLPs and the GAN discriminator over (x, y) pairs."""
from __future__ import annotations

from typing import Any, Sequence

import torch
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
