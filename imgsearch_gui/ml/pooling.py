"""nn.Module wrappers around ``functional`` so poolings compose with models (GeM learns p)."""

from __future__ import annotations

import torch
from torch import nn

from imgsearch_gui.base import registry
from imgsearch_gui.ml import functional as LF


class Pooling(nn.Module):
    """Any pooling by name, with fixed parameters; output is L2-normalised."""

    def __init__(self, method: str, **params: float) -> None:
        super().__init__()
        registry.check_pooling(method)  # UnknownChoiceError naming the choices
        self.method = method
        self.params = {**LF.DEFAULT_PARAMS.get(method, {}), **params}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return LF.pool(x, self.method, **self.params)

    def extra_repr(self) -> str:
        return f"{self.method}, {self.params}"


class GeM(nn.Module):
    """Generalised-mean pooling with a learnable exponent p (fine-tuning learns it)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return LF.l2n(LF.gem(x.float(), p=self.p, eps=self.eps))

    def extra_repr(self) -> str:
        return f"p={self.p.item():.4f}"


def make_pooling(method: str, **params: float) -> nn.Module:
    if method == "gem":
        return GeM(**{"p": 3.0, **params})
    return Pooling(method, **params)
