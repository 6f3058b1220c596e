r"""Run an exported artefact with its own runtime, without hybrik_jax.

  python hybrik_jax/export/run_artefact.py ARTEFACT_DIR INPUTS.npz OUTPUTS.npz \
      [--repeat N]

Run as a file (not with -m): it imports numpy and the artefact's runtime only
(jax for StableHLO, tensorflow for SavedModel, onnxruntime for ONNX), never
hybrik_jax, so it shows that an artefact works on its own; copy it anywhere.
INPUTS.npz holds the inputs by name (export.json lists them); OUTPUTS.npz
gets the outputs by name. With --repeat N it also prints the mean seconds per
call after one warm-up call. `load(artefact_dir)` gives a callable
{name: array} -> {name: array} for other programs (benchmarks, notebooks).
"""

import argparse
import json
import os
import sys
import time

import numpy as np


def load(artefact_dir):
  """(callable inputs dict -> outputs dict, manifest) of an artefact dir."""
  with open(os.path.join(artefact_dir, 'export.json')) as f:
    manifest = json.load(f)
  names = [i['name'] for i in manifest['inputs']]
  fmt = manifest['format']
  path = os.path.join(artefact_dir, manifest['artefact'])
  if fmt == 'stablehlo':
    from jax import export  # pylint: disable=g-import-not-at-top
    with open(path, 'rb') as f:
      exported = export.deserialize(bytearray(f.read()))

    def run(inputs):
      out = exported.call(*[inputs[n] for n in names])
      return {k: np.asarray(v) for k, v in out.items()}
  elif fmt == 'savedmodel':
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    serve = tf.saved_model.load(path).signatures['serving_default']

    def run(inputs):
      out = serve(**{n: tf.constant(inputs[n]) for n in names})
      return {k: v.numpy() for k, v in out.items()}
  elif fmt == 'onnx':
    import onnxruntime as ort  # pylint: disable=g-import-not-at-top
    options = ort.SessionOptions()
    # Errors only: jax2onnx's graphs carry shape annotations onnxruntime
    # corrects with a warning per value (harmless, but noise on stderr).
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    outputs = [o.name for o in session.get_outputs()]

    def run(inputs):
      return dict(zip(outputs, session.run(None, {n: inputs[n] for n in names})))
  else:
    raise ValueError(f'unknown artefact format {fmt!r} in {artefact_dir}/export.json')
  return run, manifest


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('artefact_dir')
  parser.add_argument('inputs')
  parser.add_argument('outputs')
  parser.add_argument('--repeat', type=int, default=0)
  args = parser.parse_args(argv)
  run, _ = load(args.artefact_dir)
  with np.load(args.inputs) as data:
    inputs = {k: data[k] for k in data.files}
  try:
    outputs = run(inputs)
  except Exception as e:  # pylint: disable=broad-except
    # The runtime's own message (wrong shape or dtype): one line, status 2.
    print(f'error: {type(e).__name__}: {str(e).strip().splitlines()[0]}', file=sys.stderr)
    return 2
  np.savez(args.outputs, **outputs)
  if args.repeat:
    start = time.perf_counter()
    for _ in range(args.repeat):
      run(inputs)
    print(f'seconds_per_call {(time.perf_counter() - start) / args.repeat:.6f}')
  if any(m == 'hybrik_jax' or m.startswith('hybrik_jax.') for m in sys.modules):
    print('error: hybrik_jax was imported', file=sys.stderr)
    return 3
  return 0


if __name__ == '__main__':
  sys.exit(main())
