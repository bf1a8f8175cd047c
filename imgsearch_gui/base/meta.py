"""ModelMeta: everything that decides what a descriptor means.

It travels with every checkpoint and every index header, so an index is only ever searched with
the embedder that built it. Pure Python (no torch) so that ``index/`` can read it cheaply.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class ModelMeta:
    backbone: str
    weights_id: str
    pooling: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dim: int
    pooling_params: tuple[tuple[str, float], ...] = ()
    layer: str | None = None
    scales: tuple[float, ...] = (1.0,)
    whitening_id: str | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> ModelMeta:
        return cls(
            backbone=str(data["backbone"]),
            weights_id=str(data["weights_id"]),
            pooling=str(data["pooling"]),
            input_size=int(data["input_size"]),
            mean=tuple(float(v) for v in data["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in data["std"]),  # type: ignore[arg-type]
            dim=int(data["dim"]),
            pooling_params=tuple((str(k), float(v)) for k, v in data.get("pooling_params", ())),
            layer=data.get("layer"),
            scales=tuple(float(s) for s in data.get("scales", (1.0,))),
            whitening_id=data.get("whitening_id"),
            extra=tuple((str(k), str(v)) for k, v in data.get("extra", ())),
        )

    @classmethod
    def from_json(cls, text: str) -> ModelMeta:
        return cls.from_dict(json.loads(text))

    @property
    def fingerprint(self) -> str:
        """Short stable id of the descriptor space (equal metas <=> equal fingerprints)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def describe(self) -> str:
        params = ", ".join(f"{k}={v:g}" for k, v in self.pooling_params)
        pooling = f"{self.pooling}({params})" if params else self.pooling
        scales = "" if self.scales == (1.0,) else f", scales={list(self.scales)}"
        layer = f", layer={self.layer}" if self.layer else ""
        return (
            f"{self.backbone}{layer} [{self.weights_id[:12]}], {pooling}, "
            f"size {self.input_size}{scales}, dim {self.dim}"
        )
