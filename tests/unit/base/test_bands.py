"""Score bands: thresholds in order, measured for the shipped defaults, none where unmeasured."""

from __future__ import annotations

from imgsearch_gui.base import registry
from imgsearch_gui.base.bands import MEASURED, Band, MeasuredFor, ScoreBands, bands_for

SHIPPED = MeasuredFor(registry.DEFAULT_BACKBONE, registry.DEFAULT_POOLING, registry.DEFAULT_SIZE,
                      False, registry.DEFAULT_DBA, registry.DEFAULT_QE)


def test_the_shipped_defaults_have_measured_bands():
    """Changing a default that shapes the scores means measuring the bands again
    (bench/score_bands.py): until then this fails."""
    bands = bands_for(SHIPPED)
    assert bands is not None
    assert 1.0 > bands.same_photo > bands.very_similar > bands.similar > 0.0


def test_band_edges():
    bands = ScoreBands(same_photo=0.99, very_similar=0.9, similar=0.7)
    assert [bands.band(s) for s in (1.0, 0.99, 0.989, 0.9, 0.7, 0.699, -1.0)] == [
        Band.SAME_PHOTO, Band.SAME_PHOTO, Band.VERY_SIMILAR, Band.VERY_SIMILAR, Band.SIMILAR,
        Band.UNRELATED, Band.UNRELATED]
    assert str(Band.VERY_SIMILAR) == "very similar"


def test_no_band_where_it_was_not_measured():
    assert bands_for(SHIPPED, weights="/tuned.pt") is None
    assert bands_for(SHIPPED, whitening="w.npz") is None
    assert bands_for(SHIPPED, layer="blocks.4") is None
    assert bands_for(MeasuredFor("resnet50", "gem", 384, False, 5, 2)) is None
    other_search = MeasuredFor(*[getattr(SHIPPED, f) for f in ("backbone", "pooling", "size",
                                                                "multiscale")], dba=0, qe=0)
    assert other_search not in MEASURED and bands_for(other_search) is None
