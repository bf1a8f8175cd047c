"""Training objectives on L2-normalised descriptors: a cosine-softmax head (classification),
cirtorch's contrastive loss and the batch-all triplet loss (metric learning)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imgsearch_gui.ml import functional as LF


class CosineHead(nn.Module):
    """Linear classifier on unit descriptors with unit weight rows: logits = cos / temperature."""

    def __init__(self, dim: int, classes: int, temperature: float = 0.05) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(LF.l2n(x), LF.l2n(self.weight)) / self.temperature


def contrastive_loss(desc: torch.Tensor, labels: torch.Tensor, margin: float = 0.7,
                     hard_negatives: int = 5) -> torch.Tensor:
    """cirtorch's contrastive loss over the batch: every positive pair pulled together
    (0.5 d^2), each anchor's ``hard_negatives`` closest other-class images pushed beyond
    ``margin`` (0.5 max(0, margin - d)^2)."""
    dist = torch.cdist(desc, desc).clamp(min=1e-8)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=desc.device)
    pos = same & ~eye
    pos_loss = 0.5 * dist[pos].pow(2)
    neg_dist = dist.masked_fill(same, float("inf"))
    k = min(hard_negatives, int((~same).sum(dim=1).min().item()))
    if k <= 0:
        return pos_loss.mean()
    hardest = neg_dist.topk(k, dim=1, largest=False).values
    neg_loss = 0.5 * (margin - hardest).clamp(min=0).pow(2)
    return torch.cat([pos_loss, neg_loss.flatten()]).sum() / max(1, len(labels))


def triplet_loss(desc: torch.Tensor, labels: torch.Tensor, margin: float = 0.1) -> torch.Tensor:
    """Batch-all triplet loss (Hermans et al.) on squared distances: every (anchor, classmate,
    other-class image) triplet of the batch, averaged over those that still violate the margin.
    With mined negatives in the batch the hard ones dominate without one hardest image per anchor
    deciding everything (batch-hard with pool-mined negatives stalls at the margin)."""
    dist = torch.cdist(desc, desc).pow(2)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=desc.device)
    pos = same & ~eye
    terms = margin + dist[:, :, None] - dist[:, None, :]  # [anchor, positive, negative]
    valid = pos[:, :, None] & ~same[:, None, :]
    losses = terms.clamp(min=0)[valid]
    active = losses > 1e-12
    return losses[active].mean() if active.any() else desc.sum() * 0


def batch_loss(loss: str, desc: torch.Tensor, labels: torch.Tensor, head: CosineHead | None,
               margin: float, label_smoothing: float) -> torch.Tensor:
    """The loss named ``loss`` (one of ``LOSSES``) of a batch of descriptors."""
    if loss == "classification":
        assert head is not None
        return F.cross_entropy(head(desc), labels, label_smoothing=label_smoothing)
    if loss == "contrastive":
        return contrastive_loss(desc, labels, margin)
    return triplet_loss(desc, labels, margin)
