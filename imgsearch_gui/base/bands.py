"""Score bands: what a search score means, in words a person can read.

A cosine similarity of 0.71 says little by itself; where it falls among the scores of known pairs
says a lot. The thresholds are measured (``bench/score_bands.py``) on the shipped search
(rotations, DBA) for each model they are given for: the scores of edited copies (crops,
rotations, downscales, grey, contrast, mirror, JPEG q30) against other shots of the same object,
photos of the same class, and the best score of a query whose library holds nothing related.
Settings without measured bands (another backbone, pooling, size or DBA / QE setting, fine-tuned
weights, a whitening) get no band: their scores are spread otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Band(str, Enum):
    SAME_PHOTO = "same photo"  # the photo itself or an edited copy of it
    VERY_SIMILAR = "very similar"  # the same object or scene, another shot; a close classmate
    SIMILAR = "similar"  # the same kind of thing
    UNRELATED = "unrelated"  # what a query with no real match gets

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ScoreBands:
    """Lower bounds of the bands above "unrelated"."""

    same_photo: float
    very_similar: float
    similar: float

    def band(self, score: float) -> Band:
        if score >= self.same_photo:
            return Band.SAME_PHOTO
        if score >= self.very_similar:
            return Band.VERY_SIMILAR
        if score >= self.similar:
            return Band.SIMILAR
        return Band.UNRELATED


@dataclass(frozen=True)
class MeasuredFor:
    """What a measurement of bands holds for: the model and the search settings that shape the
    scores (DBA lifts the scores of photos with close neighbours; alpha-QE moves the query)."""

    backbone: str
    pooling: str
    size: int
    multiscale: bool
    dba: int
    qe: int


#: measured with ``python bench/score_bands.py`` (see README, "Score bands"): the shipped model
#: and search. "same photo" from 0.997: every exact copy, 17 % of edited copies, 0.9 % of other
#: shots of the same object; "very similar" from 0.93: 96 % of edited copies, 97 % of same-object
#: pairs, 6 % of same-class pairs; "similar" from 0.80: 63 % of same-class pairs and 1.5 % of the
#: best hits of queries with nothing related in the library (the rest say "unrelated").
MEASURED: dict[MeasuredFor, ScoreBands] = {
    MeasuredFor("efficientnet_lite0", "rmac", 384, False, dba=5, qe=2):
        ScoreBands(same_photo=0.997, very_similar=0.93, similar=0.80),
}


def bands_for(setting: MeasuredFor, *, weights: str | None = None, whitening: str | None = None,
              layer: str | None = None) -> ScoreBands | None:
    """The bands measured for exactly this model (bundled weights) and search, or None: a
    fine-tuned or whitened model, another layer or other settings spread their scores otherwise,
    and a band that was never measured would only pretend to know."""
    if weights is not None or whitening is not None or layer is not None:
        return None
    return MEASURED.get(setting)
