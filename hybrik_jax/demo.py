r"""Run a model on one image (or a video) and draw the predicted body.

  python -m hybrik_jax.demo --image PATH --checkpoint DIR --out out.png \
      [--bbox x,y,w,h] [--smpl SMPL_NEUTRAL.pkl] [--noflip_test]
  python -m hybrik_jax.demo --video in.mp4 --checkpoint DIR --out out.mp4 \
      [--detections FILE | --bbox x,y,w,h] [--json] [--smooth]

An SMPL-X model (HybrIK-X, converted) draws the SMPL-X mesh and writes its
parameters (--smpl SMPLX_NEUTRAL.npz [--kid_template smplx_kid_template.npy];
default the synthetic SMPL-X body).

Either demo: --placement camera|fit (default auto: a model that predicts a
camera, as HybrIK's models do, places the body with it; others by fitting the
body to the predicted 2D joints), --hybrik_res_pk PATH (also write HybrIK's
res.pk layout, which its Blender add-on imports; docs/DEMO.md).

The command line of the two demos; the pipelines are hybrik_jax/demos/image.py
and hybrik_jax/demos/video.py over one core (demos/core.py: crop, predict,
place, draw). Without --bbox (or --detections) a person detector finds the
person (demos/detect.py); the output says which box was used.
"""

import os
import sys
from typing import Sequence

from absl import flags
import numpy as np

from hybrik_jax import cli
from hybrik_jax import cli_flags
from hybrik_jax import errors
from hybrik_jax.demos import PLACEMENTS


def parse(argv: Sequence[str] | None = None) -> flags.FlagValues:
  """The flags of `python -m hybrik_jax.demo` (see --help)."""
  fs = cli_flags.FlagSet('python -m hybrik_jax.demo', __doc__)
  fs.string('image', None, 'input image (JPEG/PNG)')
  fs.string('video', None, 'input video (mp4, mov, avi, ...): see hybrik_jax/demos/video.py')
  fs.one_of('image', 'video')
  fs.checkpoint()
  fs.out('output PNG (.npz beside it); with --video an .mp4 '
         '(default demo_out.png / demo_out.mp4)')
  fs.string('bbox', None, 'person box x,y,w,h in pixels (default: the largest '
            'person the detector finds, else the whole image); with --video '
            'the box in the first frame, then tracked')
  fs.smpl(cli_flags.SMPL_HELP + ' (default: the synthetic body); for an SMPL-X model '
          '(HybrIK-X) SMPLX_NEUTRAL.npz (default: the synthetic SMPL-X body)')
  fs.kid_template()
  fs.h36m_regressor()
  fs.flip_test()
  fs.enum('placement', 'auto', PLACEMENTS, "where the body is put: 'camera' with the "
          "model's predicted camera (HybrIK's camera models, as HybrIK's demo), 'fit' "
          "fitted to the predicted 2D joints; 'auto': camera if the model predicts one")
  fs.string('hybrik_res_pk', None, "also write the results in the layout of HybrIK's "
            'res.pk (its Blender add-on reads it; docs/DEMO.md); --video: one file per '
            'track (PATH_track<id>.pk for several)')
  fs.boolean('full_resolution', False, '--image: draw the PNG at the input\'s '
             'full resolution (default: longer side at most 2048 px per panel; '
             'the prediction always reads the full-resolution crop)')
  # --video only.
  fs.string('detections', None, '--video: person boxes: COCO results JSON, '
            'or frame,x,y,w,h[,track_id] lines')
  fs.string('tracks', None, '--video: keep these track ids, e.g. 1,3')
  fs.string('results', None, '--video: results .npz (default: beside --out)')
  fs.boolean('json', False, '--video: also write the results as JSON')
  fs.batch_size(8, '--video: people per network call')
  fs.number('focal', None, '--video: focal length, px (default: 1000 px per '
            '256 px of crop, as HybrIK)')
  fs.boolean('smooth', False, '--video: One Euro filter on rotations, shape '
             'and translation')
  fs.number('smooth_min_cutoff', 1.0, '--video: One Euro cutoff at rest, Hz '
            '(lower: smoother)')
  fs.number('smooth_beta', 0.0, '--video: One Euro speed coefficient (higher: '
            'less lag in fast motion)')
  return fs.parse(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse(argv)
  if args.video:
    return _main_video(args)
  from hybrik_jax.demos import image as image_demo  # pylint: disable=g-import-not-at-top
  try:
    pred = image_demo.run(args.image, args.checkpoint, args.out or 'demo_out.png',
                          bbox=args.bbox, smpl_path=args.smpl,
                          h36m_regressor=args.h36m_regressor, flip_test=args.flip_test,
                          full_resolution=args.full_resolution, placement=args.placement,
                          hybrik_res_pk=args.hybrik_res_pk, kid_template=args.kid_template)
  except (errors.InputError, FileNotFoundError) as e:  # not every ValueError: bugs
    print(f'error: {e}', file=sys.stderr)          # keep their tracebacks
    return 2
  if not bool(pred['valid']) or not np.all(np.isfinite(pred['vertices'])):
    print(f"error: the prediction is invalid (the network's outputs are not "
          f"finite: a broken or non-finite checkpoint?); {pred['png']} shows "
          'no body.', file=sys.stderr)
    return 3
  print(pred['box_source'])
  if str(pred['placement']) == 'camera':
    camera = (f"the model's, focal {float(pred['focal']):.0f} px (its focal length per "
              'crop)')
  else:
    camera = f"assumed focal {float(pred['focal']):.0f} px (HybrIK's 1000 px per 256 px crop)"
  print(f"body model: {pred['body_model']}; camera: {camera}, principal point at the "
        f"image centre; root depth {float(pred['joints'][0, 2]):.2f} m "
        f"({pred['depth_source']}).")
  print(f"wrote {pred['png']} and {pred['npz']}" +
        (f" and {pred['res_pk']}" if pred['res_pk'] else ''))
  return 0


def _main_video(args) -> int:
  """--video: dispatches to demos.video.run_from_checkpoint."""
  from hybrik_jax.demos import video as video_demo  # pylint: disable=g-import-not-at-top
  out = args.out or 'demo_out.mp4'
  try:
    res = video_demo.run_from_checkpoint(
        args.video, args.checkpoint, out, smpl_path=args.smpl,
        h36m_regressor=args.h36m_regressor, kid_template=args.kid_template,
        detections=args.detections, bbox=args.bbox,
        tracks=video_demo.parse_tracks(args.tracks), results_path=args.results,
        json_path=os.path.splitext(args.results or out)[0] + '.json' if args.json else None,
        flip_test=args.flip_test, batch_size=args.batch_size, focal=args.focal,
        smooth=args.smooth, smooth_min_cutoff=args.smooth_min_cutoff,
        smooth_beta=args.smooth_beta, placement=args.placement,
        hybrik_res_pk=args.hybrik_res_pk)
  except (errors.InputError, FileNotFoundError) as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(res['box_source'])
  valid = res['valid']
  print(f"{valid.shape[0]} frames x {valid.shape[1]} track(s): {int(valid.sum())} valid "
        f"predictions; {res['seconds']:.1f} s ({res['frames_per_second']:.2f} frames/s)")
  print(f"placement: {res['placement']}")
  written = [res['out'], res['results']] + ([res['json']] if res['json'] else []) + list(
      res['res_pk'])
  print('wrote ' + ', '.join(written[:-1]) + ' and ' + written[-1])
  return 0


if __name__ == '__main__':
  cli.run(main)  # UserError -> one line, status 2; Ctrl-C -> one line, 130
