"""Is it the same photo? Geometric verification that tells a copy from another shot of the scene.

Global descriptors cannot tell "the same photo, re-saved / resized / recoloured / turned /
mirrored / cropped" from "another photo of the same scene": both score high. Two steps can:

1. ORB keypoints matched between the two photos and a similarity transform (turn, scale, shift)
   fitted by RANSAC align the second photo onto the first (ORB is turn-invariant; a mirror image
   is tried by flipping the second photo).
2. Aligned, a copy agrees with its original everywhere: the normalised cross-correlation of
   every textured block of a grid over the overlap is high, even after a colour edit or a grey
   conversion (a per-block gain and offset). Another shot of the scene has blocks that disagree
   (something moved, the viewpoint changed): the low percentile of the blocks' correlations
   separates the two, measured on copies and on other views of the same objects
   (bench/duplicates.py).

OpenCV is used here only (an import-linter contract keeps it so). Its own threads are off: the
finder compares pairs in a thread pool, and small images gain nothing from more.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

#: photos are compared with their longest side at this many pixels
SIDE = 384
#: ORB keypoints per photo: matching costs their square
KEYPOINTS = 450
#: the probe: b's strongest keypoints matched first, and the clear matches they must find
PROBE = 90
PROBE_MATCHES = 4
#: fewer RANSAC inliers than this: no alignment at all
MIN_INLIERS = 10
#: the blocks' agreement (10th percentile of their correlations) a copy reaches
MIN_AGREEMENT = 0.6
#: a fitted scale beyond this (either way) is a degenerate fit, not a resized copy
MIN_SCALE = 1 / 12
#: a copy is turned by quarter turns: a tilt further than this from one is another shot
MAX_TILT_DEGREES = 1.5
#: the smaller photo lies at least this much within the larger (a crop lies wholly inside;
#: another shot of the scene shows some of what the other one does not)
MIN_COVER_INSIDE = 0.97
#: and covers at least this much of the larger one (a tiny detail is not a copy of the photo)
MIN_COVER_OF_LARGER = 0.2
#: blocks that disagree (correlation below 0.5): a copy has at most a couple (a flat corner,
#: JPEG noise), a burst shot in which someone moved has a patch of them
MAX_DISAGREEING = 1 / 12
_DISAGREE = 0.5
_GRID = 6
_MIN_SIDE = 32
_MIN_BLOCKS = 4
_FLAT = 4.0  # grey levels: a block flatter than this says nothing
_orb = threading.local()
cv2.setNumThreads(1)


@dataclass(frozen=True)
class Keypoints:
    points: np.ndarray       # (N, 2) float32, pixels
    descriptors: np.ndarray  # (N, 32) uint8
    found: tuple = ()        # the cv2.KeyPoints (to describe the mirror image at them)


@dataclass
class PhotoFeatures:
    """One photo, grey at :data:`SIDE`, with its keypoints (and, when asked, its mirror's)."""

    grey: np.ndarray
    upright: Keypoints
    _mirrored: Keypoints | None = field(default=None, repr=False)

    @classmethod
    def of(cls, grey: np.ndarray) -> PhotoFeatures:
        grey = _fit(np.ascontiguousarray(grey, dtype=np.uint8))
        if min(grey.shape) < _MIN_SIDE:  # a sliver (2400 x 6): ORB's pyramid cannot take it
            return cls(grey, Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)))
        return cls(grey, _keypoints(grey))

    @property
    def mirrored(self) -> Keypoints:
        if self._mirrored is None:  # a race computes it twice, harmlessly
            self._mirrored = _mirrored_keypoints(self.grey, self.upright)
        return self._mirrored


@dataclass(frozen=True)
class Verdict:
    same: bool
    #: how well the aligned photos agree, block by block (0..1; 0 when they could not be aligned)
    agreement: float
    inliers: int
    mirrored: bool = False


def _fit(grey: np.ndarray) -> np.ndarray:
    """Longest side :data:`SIDE`: small photos are enlarged too (ORB finds next to no keypoints
    on an 80-pixel thumbnail, which is what a downscaled copy of a small photo is)."""
    h, w = grey.shape
    scale = SIDE / max(h, w)
    if abs(scale - 1) < 0.02:
        return grey
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _detector() -> cv2.ORB:
    if not hasattr(_orb, "detector"):
        # 6 levels of 1.2: scales up to 2.5x apart (a crop of 40 % of the side) match
        _orb.detector = cv2.ORB_create(nfeatures=KEYPOINTS, fastThreshold=10, nlevels=6)
        _orb.matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    return _orb.detector


def _keypoints(grey: np.ndarray) -> Keypoints:
    """ORB keypoints of the equalised photo: a dark, low-contrast photo (a black garment on a
    bed) has next to none otherwise. ORB compares intensities, which equalising keeps in order."""
    kp, desc = _detector().detectAndCompute(cv2.equalizeHist(grey), None)
    if desc is None:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
    order = np.argsort([-k.response for k in kp], kind="stable")  # strongest first (the probe)
    kept = tuple(kp[i] for i in order)
    return Keypoints(np.float32([k.pt for k in kept]), desc[order], kept)


def _mirrored_keypoints(grey: np.ndarray, upright: Keypoints) -> Keypoints:
    """The mirror image's keypoints: the upright ones mirrored, described anew (a third of the
    cost of finding them again, and the same descriptors)."""
    if not upright.found:
        return upright
    width = grey.shape[1]
    mirrored = [cv2.KeyPoint(width - 1 - k.pt[0], k.pt[1], k.size, (180.0 - k.angle) % 360.0,
                             k.response, k.octave) for k in upright.found]
    found, desc = _detector().compute(cv2.equalizeHist(np.ascontiguousarray(grey[:, ::-1])),
                                      mirrored)
    if desc is None:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8))
    return Keypoints(np.float32([k.pt for k in found]), desc, tuple(found))


def _probe(a: Keypoints, b: Keypoints) -> bool:
    """A quick look before the full matching: do some of b's strongest keypoints find a clear
    match in a? Two photos that are not copies rarely pass; copies always do (measured on the
    dev sets). It costs a fifth of the full matching, which most candidate pairs then skip."""
    pairs = _orb.matcher.knnMatch(b.descriptors[:PROBE], a.descriptors, k=2)
    good = sum(1 for m in pairs if len(m) == 2 and m[0].distance < 0.8 * m[1].distance)
    return good >= PROBE_MATCHES


def _align(a: Keypoints, b: Keypoints) -> tuple[np.ndarray | None, int]:
    """The similarity transform taking b's pixels onto a's, and its RANSAC inliers; a turn close
    to a quarter turn is snapped to it (copies are turned exactly; RANSAC's estimate is a fraction
    of a pixel off, which costs fine-textured photos their agreement)."""
    if len(a.descriptors) < MIN_INLIERS or len(b.descriptors) < MIN_INLIERS:
        return None, 0
    _detector()
    if not _probe(a, b):
        return None, 0
    pairs = _orb.matcher.knnMatch(b.descriptors, a.descriptors, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.8 * m[1].distance]
    if len(good) < MIN_INLIERS:
        return None, 0
    src = b.points[[m.queryIdx for m in good]]
    dst = a.points[[m.trainIdx for m in good]]
    matrix, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                                  ransacReprojThreshold=4.0, maxIters=2000)
    if matrix is None or inliers is None:
        return None, 0
    keep = inliers.ravel().astype(bool)
    if _tilt(matrix) <= MAX_TILT_DEGREES and keep.sum() >= MIN_INLIERS:
        matrix = _snapped(matrix, src[keep], dst[keep])
    return matrix, int(keep.sum())


def _snapped(matrix: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``matrix`` with its turn made an exact quarter turn, scale and shift fitted again (least
    squares over the inliers)."""
    quarter = round(float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))) / 90.0) % 4
    cos, sin = ((1, 0), (0, 1), (-1, 0), (0, -1))[quarter]
    turn = np.array([[cos, -sin], [sin, cos]], dtype=np.float64)
    s0, d0 = src.mean(axis=0), dst.mean(axis=0)
    turned = (src - s0) @ turn.T
    spread = float((turned**2).sum())
    if spread <= 0:
        return matrix
    scale = float(((dst - d0) * turned).sum()) / spread
    shift = d0 - scale * (turn @ s0)
    return np.hstack([scale * turn, shift[:, None]])


def _tilt(matrix: np.ndarray) -> float:
    """Degrees between the transform's turn and the nearest quarter turn."""
    angle = float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0])))
    return abs((angle + 45.0) % 90.0 - 45.0)


def _scale(matrix: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def _invert(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(matrix)


def _warp(image: np.ndarray, matrix: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray,
                                                                                   np.ndarray]:
    """``image`` warped by ``matrix`` into a frame of ``shape``, and where it landed."""
    h, w = shape
    scale = _scale(matrix)
    src = image.astype(np.float32)
    if scale < 0.8:  # shrinking: blur first, or the warp aliases
        src = cv2.GaussianBlur(src, (0, 0), 0.5 / scale)
    warped = cv2.warpAffine(src, matrix, (w, h), flags=cv2.INTER_LINEAR)
    ones = np.ones(image.shape, np.uint8)
    mask = cv2.warpAffine(ones, matrix, (w, h), flags=cv2.INTER_NEAREST) > 0
    return warped, mask


def _block_agreement(frame: np.ndarray, warped: np.ndarray, mask: np.ndarray) -> float:
    """The 10th percentile of the blocks' correlations over the overlap (a copy agrees in almost
    every block), or the worst block's when too many disagree; the whole overlap's correlation
    when too few blocks have texture."""
    a = cv2.GaussianBlur(frame.astype(np.float32), (0, 0), 0.7)
    b = cv2.GaussianBlur(warped, (0, 0), 0.7)
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    scores = []
    for i in range(_GRID):
        for j in range(_GRID):
            sy = slice(y0 + (y1 - y0) * i // _GRID, y0 + (y1 - y0) * (i + 1) // _GRID)
            sx = slice(x0 + (x1 - x0) * j // _GRID, x0 + (x1 - x0) * (j + 1) // _GRID)
            inside = mask[sy, sx]
            if inside.size == 0 or inside.mean() < 0.95:
                continue
            score = _correlation(a[sy, sx][inside], b[sy, sx][inside])
            if score is not None:
                scores.append(score)
    if len(scores) >= _MIN_BLOCKS:
        if np.mean(np.array(scores) < _DISAGREE) > MAX_DISAGREEING:
            return min(scores)  # a patch that differs: not a copy, whatever the rest says
        return float(np.percentile(scores, 10))
    whole = _correlation(a[mask], b[mask])
    return 0.0 if whole is None else whole


def _correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    """Pearson correlation of two pixel sets; None when either is flat (it says nothing)."""
    if x.size < 16:
        return None
    x = x - x.mean()
    y = y - y.mean()
    xx, yy = float(x @ x), float(y @ y)
    flat = _FLAT * _FLAT * x.size
    if xx < flat or yy < flat:
        return None
    return float(x @ y) / np.sqrt(xx * yy)


def _verdict(a: PhotoFeatures, b_grey: np.ndarray, b_points: Keypoints, mirrored: bool
             ) -> Verdict:
    matrix, inliers = _align(a.upright, b_points)
    if (matrix is None or inliers < MIN_INLIERS or _tilt(matrix) > MAX_TILT_DEGREES
            or not MIN_SCALE <= _scale(matrix) <= 1 / MIN_SCALE):
        return Verdict(False, 0.0, inliers, mirrored)
    inverse = _invert(matrix)
    # compare in the frame of the photo shown smaller, so the other one is shrunk, not magnified
    if _scale(matrix) > 1.0:
        frame, other, to_frame = b_grey, a.grey, inverse
    else:
        frame, other, to_frame = a.grey, b_grey, matrix
    warped, mask = _warp(other, to_frame, frame.shape)
    back = _warp(np.ones_like(frame), _invert(to_frame), other.shape)[1]
    # the shares of each photo the overlap covers: all of a crop, part of its original
    inside, covered = sorted((mask.mean(), back.mean()), reverse=True)
    if not mask.any() or inside < MIN_COVER_INSIDE or covered < MIN_COVER_OF_LARGER:
        return Verdict(False, 0.0, inliers, mirrored)
    agreement = max(0.0, _block_agreement(frame, warped, mask))
    return Verdict(agreement >= MIN_AGREEMENT, agreement, inliers, mirrored)


def compare(a: PhotoFeatures, b: PhotoFeatures, mirrored_first: bool = False,
            try_mirror: bool = True) -> Verdict:
    """Whether ``b`` is a copy of ``a`` (or ``a`` of ``b``): upright, then as a mirror image
    (first when a hint says so; not at all without ``try_mirror``: it costs the mirror image's
    keypoints and a second matching); the better verdict."""
    order = (True, False) if mirrored_first else (False, True) if try_mirror else (False,)
    best: Verdict | None = None
    for mirrored in order:
        grey = np.ascontiguousarray(b.grey[:, ::-1]) if mirrored else b.grey
        verdict = _verdict(a, grey, b.mirrored if mirrored else b.upright, mirrored)
        if verdict.same:
            return verdict
        if best is None or verdict.agreement > best.agreement:
            best = verdict
    assert best is not None
    return best
