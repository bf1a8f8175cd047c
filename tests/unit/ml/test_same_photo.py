"""ml/same_photo: copies of a photo pass, other photos and other shots of a scene do not."""

from __future__ import annotations

import numpy as np
import pytest
from photo_edits import EDITS
from PIL import Image

from imgsearch_gui.ml.same_photo import PhotoFeatures, compare


def features(img: Image.Image) -> PhotoFeatures:
    return PhotoFeatures.of(np.asarray(img.convert("L")))


@pytest.fixture(scope="module")
def originals(real_photos):
    return {n: real_photos[n] for n in ("chelsea", "astronaut", "coffee", "rocket")}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_every_kind_of_copy_is_the_same_photo(originals, edit):
    for name, img in originals.items():
        verdict = compare(features(img), features(EDITS[edit](img)))
        assert verdict.same, (name, edit, verdict)
        assert verdict.agreement > 0.6


def test_a_turned_mirror_image_is_the_same_photo(originals):
    img = originals["astronaut"]
    assert compare(features(img), features(EDITS["mirrored"](EDITS["turned"](img)))).same


def test_other_photos_are_not(originals):
    names = sorted(originals)
    for a in names:
        for b in names:
            if a != b:
                assert not compare(features(originals[a]), features(originals[b])).same, (a, b)


def test_another_shot_of_the_same_scene_is_not_the_same_photo():
    """The left and right views of a stereo pair: the same scene from two viewpoints."""
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    verdict = compare(features(Image.fromarray(left)), features(Image.fromarray(right)))
    assert not verdict.same, verdict


def test_a_small_detail_is_not_a_copy_of_the_photo(originals):
    img = originals["astronaut"]
    w, h = img.size
    detail = img.crop((w // 4, h // 4, w // 4 + w * 2 // 5, h // 4 + h * 2 // 5))  # 16 %
    assert compare(features(img), features(detail)).inliers >= 10  # it aligns, yet
    assert not compare(features(img), features(detail)).same


def test_a_shot_in_which_something_moved_is_not_the_same_photo(originals):
    """The same frame with a part of it changed (a burst shot: someone moved): it aligns
    everywhere else, but the blocks over the change disagree."""
    img = originals["chelsea"].copy()
    w, h = img.size
    patch = originals["coffee"].resize((w // 3, h // 3))
    img.paste(patch, (w // 2, h // 2))
    verdict = compare(features(originals["chelsea"]), features(img))
    assert verdict.inliers >= 10 and not verdict.same, verdict


def test_a_flat_photo_gives_no_verdict_of_same():
    flat = Image.new("RGB", (200, 150), (120, 120, 120))
    assert not compare(features(flat), features(flat.copy())).same
