"""Checkpoint -> exported artefact (the library of `hybrik_jax.export_model`)."""

from __future__ import annotations

import os
import shutil

import jax

from hybrik_jax import models
from hybrik_jax.body import bodies
from hybrik_jax.body import smpl_io
from hybrik_jax.checkpoints import loading
from hybrik_jax.export import formats
from hybrik_jax.export import serving


def export_checkpoint(checkpoint: str, out_dir: str, fmt: str,
                      options: serving.ServingOptions, *, smpl_path: str | None = None,
                      h36m_regressor: str | None = None, overwrite: bool = False,
                      smpl_model=None) -> dict:
  """Loads a checkpoint (exported model or training workdir) and writes the
  artefact of `fmt` with `options` into out_dir.

  Args:
    checkpoint: `checkpoints.loading.load_for_inference`'s path.
    out_dir: the artefact's directory (refused if it exists and is not empty,
      unless overwrite).
    fmt: one of formats.FORMATS.
    options: serving.ServingOptions (`camera` is set from the model).
    smpl_path, h36m_regressor: the SMPL body model (default: the synthetic
      body, right for synthetic_humans models only); for an SMPL-X model
      (HybrIK-X) smpl_path is SMPLX_NEUTRAL.npz with its kid template beside
      it (default: the synthetic SMPL-X body).
    overwrite: replace out_dir.
    smpl_model: a body model to use instead of loading one (tests).

  Returns:
    The manifest written to out_dir/export.json.

  Raises:
    formats.ExportError: out_dir not empty, unknown format, missing tool.
    errors.InputError: the checkpoint cannot be read.
  """
  if fmt not in formats.FORMATS:
    raise formats.ExportError(f'format must be one of {formats.FORMATS}, got {fmt!r}')
  if os.path.exists(out_dir) and os.listdir(out_dir):
    if not overwrite:
      raise formats.ExportError(f'{out_dir!r} exists and is not empty (--overwrite '
                                'replaces it)')
    shutil.rmtree(out_dir)
  loaded = loading.load_for_inference(checkpoint)
  smplx = loaded.model_config.get('body', 'smpl') == 'smplx'
  if smpl_model is not None:
    body_desc = 'given body model'
  elif smplx:  # HybrIK-X: the SMPL-X body with its kid template
    if h36m_regressor:
      raise formats.ExportError('--h36m_regressor is for SMPL models; this model predicts '
                                'SMPL-X (HybrIK-X): give --smpl SMPLX_NEUTRAL.npz only')
    smpl_model, body_desc = bodies.load_smplx_body(smpl_path, names=('--smpl', None))
  else:
    smpl_model, body_desc = smpl_io.load_body_model(smpl_path, h36m_regressor)
  options = serving.for_model(options, loaded.model_config)
  model = models.create_model(loaded.model_config)
  variables = jax.device_get(loaded.variables)
  serve = serving.make_serving_fn(model, variables, loaded.model_config, smpl_model,
                                  options)
  input_size = int(loaded.model_config.input_size)
  formats.write(fmt, serve, input_size, options, out_dir, extra={
      'checkpoint': loaded.description, 'body_model': body_desc,
      'input_size': input_size, 'jax_version': jax.__version__})
  with open(os.path.join(out_dir, formats.MANIFEST_FILE)) as f:
    import json  # pylint: disable=g-import-not-at-top
    return json.load(f)
