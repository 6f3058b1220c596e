"""The person detector (demos/detect.py) and the box the demos choose without --bbox.

The detector finds the person on a synthetic render and on a real photo
(scikit-image's astronaut, a half-body portrait: found by the face), --bbox
wins over it, and the output says which box was used.
"""

import cv2
import numpy as np
import pytest
from skimage import data as skdata

from hybrik_jax import demo
from hybrik_jax.data import boxes
from hybrik_jax.data import synthetic
from hybrik_jax.demos import detect
from hybrik_jax.demos import image as image_demo

# Drawn by hand on the astronaut photo (512x512): her hair to the bottom edge,
# her left arm to her right shoulder (the helmet she holds left out).
ASTRONAUT_BOX = np.array([18, 14, 365, 511], np.float32)
# A synthetic_humans validation render (256 px) that HOG finds (7 of the
# first 24 are; see demos/detect.py).
SYNTHETIC_INDEX = 22


@pytest.fixture(scope='module')
def detector():
  return detect.default_detector()


@pytest.fixture(scope='module')
def astronaut_path(tmp_path_factory):
  path = str(tmp_path_factory.mktemp('photo') / 'astronaut.png')
  cv2.imwrite(path, cv2.cvtColor(skdata.astronaut(), cv2.COLOR_RGB2BGR))
  return path


def test_finds_the_person_on_a_synthetic_render(detector):
  config = synthetic.SyntheticConfig(image_size=256)
  generator = synthetic.SyntheticGenerator(config, batch_size=1)
  scene = synthetic.sample_scene(SYNTHETIC_INDEX, config, synthetic.STREAMS['validation'])
  body = {k: v[0] for k, v in generator.pose_bodies([scene]).items()}
  example = generator.make_example(SYNTHETIC_INDEX, scene, body, 'validation')
  found = detector(example['image'])
  assert found and found[0].source == 'HOG'
  assert boxes.iou(found[0].box, example['bbox']) > 0.6, (found[0], example['bbox'])


def test_finds_the_astronaut(detector):
  found = detector(skdata.astronaut())
  assert found[0].source == 'face'
  assert boxes.iou(found[0].box, ASTRONAUT_BOX) > 0.75, found[0]
  # One box per person: nothing left overlapping the chosen one.
  assert all(boxes.iou(d.box, found[0].box) < detect.NMS_IOU for d in found[1:])


def test_no_person_and_no_detector_give_the_whole_image(monkeypatch):
  image = np.full((120, 90, 3), 128, np.uint8)
  box, source = image_demo.person_box(image)
  assert source == 'box: whole image (no person detected)'
  np.testing.assert_allclose(box, [0, 0, 89, 119])
  monkeypatch.delattr(cv2, 'HOGDescriptor')  # as in OpenCV 5
  box, source = image_demo.person_box(image)
  assert source.startswith('box: whole image (OpenCV') and 'opencv-python-headless' in source
  np.testing.assert_allclose(box, [0, 0, 89, 119])


def test_cli_says_which_box_and_bbox_wins(astronaut_path, tiny_checkpoint, tmp_path, capsys):
  out = str(tmp_path / 'astronaut_out.png')
  assert demo.main(['--image', astronaut_path, '--checkpoint', tiny_checkpoint, '--out', out,
                    '--noflip_test']) == 0
  printed = capsys.readouterr().out
  assert 'box: detected (OpenCV HOG + face: face, score' in printed, printed
  saved = np.load(out[:-4] + '.npz')
  assert boxes.iou(saved['bbox'], ASTRONAUT_BOX) > 0.75
  assert str(saved['box_source']).startswith('box: detected')
  assert demo.main(['--image', astronaut_path, '--checkpoint', tiny_checkpoint, '--out', out,
                    '--noflip_test', '--bbox', '300,300,100,150']) == 0
  assert 'box: --bbox' in capsys.readouterr().out
  np.testing.assert_allclose(np.load(out[:-4] + '.npz')['bbox'], [300, 300, 400, 450])


class _ScriptedDetector:
  """Returns given boxes per call (one call per frame)."""
  name = 'scripted'

  def __init__(self, per_frame):
    self.per_frame = list(per_frame)

  def __call__(self, image):
    del image
    return [detect.Detection(np.asarray(b, np.float32), 1.0, 'HOG')
            for b in self.per_frame.pop(0)]


def test_track_largest_follows_one_person():
  a0, a1 = [10, 10, 50, 90], [14, 10, 54, 90]
  big_other = [100, 0, 190, 150]
  frames = [[], [a0], [a1, big_other], [big_other], [a1]]
  # Frame 0 has none: it takes frame 1's box. Frame 2: the box overlapping the
  # track, not the larger one. Frame 3: nothing overlaps, the box is kept.
  found, hits = detect.track_largest(_ScriptedDetector(frames), [None] * 5, 5)
  assert hits == 3
  np.testing.assert_allclose(found, [a0, a0, a1, a1, a1])
  found, hits = detect.track_largest(_ScriptedDetector([[]] * 3), [None] * 3, 3)
  assert hits == 0 and np.isnan(found).all()


def test_suppress_keeps_the_larger_of_overlapping_boxes():
  d = lambda b: detect.Detection(np.asarray(b, np.float32), 1.0, 'HOG')
  kept = detect.suppress([d([0, 0, 10, 10]), d([0, 0, 12, 12]), d([50, 50, 60, 60])])
  np.testing.assert_allclose([k.box for k in kept], [[0, 0, 12, 12], [50, 50, 60, 60]])


def test_video_without_boxes_uses_the_detector(tmp_path):
  from hybrik_jax.demos import video as video_demo  # pylint: disable=g-import-not-at-top
  from hybrik_jax.demos import video_io  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'grey.mp4')
  video_io.write_video(path, [np.full((48, 64, 3), 90, np.uint8)] * 5, 10.0)
  info = video_io.probe_video(path)
  person, moved = [5, 4, 30, 44], [7, 4, 32, 44]
  dets, tracking, source = video_demo.people_boxes(
      info, None, None, None, _ScriptedDetector([[], [person], [moved], [], []]))
  assert not tracking and source == 'boxes: detected (scripted) in 2 of 5 frames'
  np.testing.assert_allclose(dets.boxes[:, 0], [person, person, moved, moved, moved])
  # One stray box in five frames is not trusted; none at all: the whole frame.
  for per_frame, why in (([[], [person], [], [], []], 'a person detected in only 1 of 5 frames'),
                         ([[]] * 5, 'no person detected')):
    dets, _, source = video_demo.people_boxes(info, None, None, None,
                                              _ScriptedDetector(per_frame))
    assert source == f'boxes: whole frame ({why})'
    np.testing.assert_allclose(dets.boxes[:, 0], [[0, 0, 63, 47]] * 5)
  # --bbox wins: the detector is not asked.
  dets, tracking, source = video_demo.people_boxes(info, None, '1,2,20,30', None,
                                                   _ScriptedDetector([]))
  assert tracking and source.startswith('boxes: --bbox')
  np.testing.assert_allclose(dets.boxes[0, 0], [1, 2, 21, 32])
