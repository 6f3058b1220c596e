"""Finding the person when no box is given: OpenCV's HOG people detector and face cascade.

Both run on the CPU with the models OpenCV's wheel carries (the HOG SVM is
built in, the Haar cascade ships in cv2.data); nothing is downloaded. They
need OpenCV 4 (`opencv-python-headless<5`): OpenCV 5 moved both out of its
main wheel, and there `default_detector` raises DetectorUnavailable (the
demos then use the whole image and say so).

  HOG       Dalal-Triggs' pedestrian detector: whole upright bodies.
  face      the frontal-face Haar cascade; the body box is grown from the face
            (FACE_TO_BODY: about 4 faces wide, from half a face above it to 7.5
            faces below, clipped to the image): portraits and half bodies.

Measured with the settings below (a hit: the largest detection has IoU >= 0.5
with the true box): synthetic_humans validation renders 0-23 at 256 px: 7 of 24
(all HOG; 5 more get a box off the person, 12 none: the mannequins have no
face and few upright-pedestrian poses); the synthetic walking clip (8 frames,
256 px): 0 of 8 (1 box off the person); scikit-image's astronaut photo (a
half-body portrait): found by its face, IoU 0.83 with a hand-made box (HOG
alone misses her). 5 of 15 of scikit-image's photos without a person get a box
(rocket, logo, page: HOG; coins, moon: a face). About 0.15 s per 256 px image,
0.5 s at 512 px, on one CPU core.
The demos take the largest detection; --bbox / --detections always win.
"""

import dataclasses
import os
from typing import Iterable, Protocol, Sequence

import cv2
import numpy as np

from hybrik_jax import errors
from hybrik_jax.data import boxes as boxes_lib

# Body box from a face box (x, y, w, h): centre x +- FACE_TO_BODY[0] w,
# y - FACE_TO_BODY[1] h .. y + FACE_TO_BODY[2] h.
FACE_TO_BODY = (2.0, 0.5, 7.5)
# HOG's window is 64x128 px: small images are upscaled to this short side.
HOG_MIN_SIDE = 400
# HOG scans at this SVM margin (below OpenCV's default 0: more synthetic
# renders found) and keeps the grouped boxes scoring at least HOG_MIN_SCORE;
# faces need FACE_MIN_SCORE (the cascade's last-stage weight). Chosen on the
# images above: HOG >= 0 instead of 0.3 finds one more render and 2 clip
# frames, but puts about twice as many boxes off the person or on photos
# without one.
HOG_HIT_THRESHOLD = -0.5
HOG_MIN_SCORE = 0.3
FACE_MIN_SCORE = 3.0
# Faces and boxes smaller than this fraction of the image's short side are ignored.
MIN_FRACTION = 0.08
# Non-maximum suppression between the two detectors' boxes.
NMS_IOU = 0.4
# In a video, a detection continues the track if it overlaps the previous box this much.
TRACK_IOU = 0.3
# A video's track is used only if the person was detected in this fraction of
# its frames (one stray box must not stand for the whole video).
MIN_TRACK_FRACTION = 0.25


class DetectorUnavailable(errors.InputError):
  """The installed OpenCV lacks the detector (OpenCV 5 has neither HOG nor the cascades)."""


@dataclasses.dataclass(frozen=True)
class Detection:
  """A person: box (4,) float32 xyxy px, the detector's score, and what found it."""
  box: np.ndarray
  score: float
  source: str  # 'HOG' or 'face'

  @property
  def area(self) -> float:
    return float((self.box[2] - self.box[0]) * (self.box[3] - self.box[1]))


class PersonDetector(Protocol):
  name: str

  def __call__(self, image: np.ndarray) -> list[Detection]:
    """(H, W, 3) uint8 RGB -> one Detection per person, the largest first."""


class OpenCVPersonDetector:
  """HOG people detector + frontal-face cascade (grown to a body box); one box per person."""

  name = 'OpenCV HOG + face'

  def __init__(self):
    if not hasattr(cv2, 'HOGDescriptor') or not hasattr(cv2, 'CascadeClassifier'):
      raise DetectorUnavailable(
          f'OpenCV {cv2.__version__} has no HOG people detector (OpenCV 5 moved it '
          "out of its wheel): pip install 'opencv-python-headless>=4.9,<5', or give "
          '--bbox x,y,w,h')
    self._hog = cv2.HOGDescriptor()
    self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    path = os.path.join(cv2.data.haarcascades, 'haarcascade_frontalface_default.xml')
    self._face = cv2.CascadeClassifier(path)
    if self._face.empty():
      raise DetectorUnavailable(f'OpenCV face cascade {path} could not be loaded')

  def hog(self, image: np.ndarray) -> list[Detection]:
    """Whole upright bodies; score: the SVM margin."""
    h, w = image.shape[:2]
    scale = max(1.0, HOG_MIN_SIDE / min(h, w))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if scale > 1:
      gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    rects, weights = self._hog.detectMultiScale(
        gray, hitThreshold=HOG_HIT_THRESHOLD, winStride=(8, 8), padding=(32, 32), scale=1.05)
    out = []
    for (x, y, bw, bh), score in zip(np.reshape(rects, (-1, 4)), np.ravel(weights)):
      xywh = np.array([x, y, bw, bh], np.float64) / scale
      out.append(Detection(boxes_lib.xywh_to_xyxy(xywh, w, h), float(score), 'HOG'))
    return out

  def faces(self, image: np.ndarray) -> list[Detection]:
    """Frontal faces grown to body boxes (FACE_TO_BODY); score: the cascade's neighbours."""
    h, w = image.shape[:2]
    gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    min_side = max(12, int(MIN_FRACTION * min(h, w)))
    rects, _, weights = self._face.detectMultiScale3(
        gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side),
        outputRejectLevels=True)
    out = []
    for (x, y, fw, fh), score in zip(np.reshape(rects, (-1, 4)), np.ravel(weights)):
      cx = x + fw / 2
      wide, above, below = FACE_TO_BODY
      xywh = (cx - wide * fw, y - above * fh, 2 * wide * fw, (above + below) * fh)
      out.append(Detection(boxes_lib.xywh_to_xyxy(xywh, w, h), float(score), 'face'))
    return out

  def __call__(self, image: np.ndarray) -> list[Detection]:
    h, w = image.shape[:2]
    found = [d for d in self.hog(image) + self.faces(image)
             if d.score >= (HOG_MIN_SCORE if d.source == 'HOG' else FACE_MIN_SCORE)
             and min(d.box[2] - d.box[0], d.box[3] - d.box[1]) >= MIN_FRACTION * min(h, w)]
    return suppress(found)


def suppress(detections: Sequence[Detection], max_iou: float = NMS_IOU) -> list[Detection]:
  """One box per person: the larger of two overlapping boxes; largest first."""
  kept = []
  for d in sorted(detections, key=lambda d: -d.area):
    if all(boxes_lib.iou(d.box, k.box) < max_iou for k in kept):
      kept.append(d)
  return kept


def default_detector() -> PersonDetector:
  """The demos' detector; DetectorUnavailable if this OpenCV cannot provide it."""
  return OpenCVPersonDetector()


def track_largest(detector: PersonDetector, frames: Iterable[np.ndarray],
                  num_frames: int) -> tuple[np.ndarray, int]:
  """One person's box in every frame of a video, by detection.

  The first frame with a detection starts the track at its largest person;
  each later frame continues it with the detection overlapping the previous
  box most (IoU >= TRACK_IOU), else keeps the previous box. Frames before
  the first detection take its box.

  Returns:
    boxes (num_frames, 4) float32 xyxy (NaN if no frame had a person), and
    the number of frames whose box was detected.
  """
  out = np.full((num_frames, 4), np.nan, np.float32)
  prev, hits, first = None, 0, None
  for t, frame in enumerate(frames):
    found = detector(frame)
    best = None
    if prev is None and found:
      best = found[0]
    elif found:
      overlaps = [boxes_lib.iou(d.box, prev) for d in found]
      if max(overlaps) >= TRACK_IOU:
        best = found[int(np.argmax(overlaps))]
    if best is not None:
      prev, hits = best.box, hits + 1
      first = t if first is None else first
    if prev is not None:
      out[t] = prev
  if first is not None:
    out[:first] = out[first]
  return out, hits
