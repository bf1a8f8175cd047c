from __future__ import annotations

import numpy as np
from PIL import Image

from imgsearch_gui.base import thumbprint as tp


def test_a_turned_photo_has_the_turned_thumbprint(real_photos):
    img = real_photos["chelsea"]
    views = tp.features(tp.orientations(tp.thumbprint(img)))
    for k in range(1, 4):
        turned = tp.features(np.frombuffer(tp.thumbprint(img.rotate(90 * k, expand=True)),
                                           np.uint8).reshape(16, 16))[0]
        assert views[k] @ turned > 0.98
        assert views[0] @ turned < 0.9  # and it differs from the upright one
    mirror = tp.features(np.frombuffer(tp.thumbprint(img.transpose(Image.FLIP_LEFT_RIGHT)),
                                       np.uint8).reshape(16, 16))[0]
    assert views[4] @ mirror > 0.98


def test_sizes_and_flat_photos():
    flat = Image.new("RGB", (40, 30), (10, 200, 30))
    assert len(tp.thumbprint(flat)) == tp.SIZE == 256
    assert not tp.features(tp.orientations(tp.thumbprint(flat))).any()  # flat: zero rows
    chw = np.zeros((3, 20, 30), np.uint8)
    assert tp.thumbprint_of_array(chw) == tp.thumbprint(Image.new("RGB", (30, 20)))

