"""The image and video demos' library.

  core      crop, predict, place (the translation fit), draw: one person or many
  image     the image demo's pipeline (photo -> PNG + .npz)
  video     the video demo's pipeline (video -> mp4 + results file)
  detect    the person detector used when no box is given (OpenCV HOG + face)
  video_io  video files, detections files, tracking from joints, track colours
  smoothing One Euro filters (rotations, shape, translation)
  results   the video results file (.npz / .json)
  inputs    demo inputs: a dataset's images as PNG, a rendered clip
"""

# The demos' --placement values: 'camera' places the body with the model's
# predicted camera, 'fit' by the 2D fit, 'auto' is 'camera' for a model that
# predicts a camera, else 'fit'. (Here, so that the CLI's --help needs no JAX.)
PLACEMENTS = ('auto', 'camera', 'fit')
