"""The body model a run uses (trainer, `evaluate`): SMPL or SMPL-X, from files or synthetic.

`load_body(body, ...)` is the one dispatch on a model config's `body` ('smpl' |
'smplx'); SMPL goes to `smpl_io.load_body_model`, SMPL-X to `load_smplx_body`.
"""

from __future__ import annotations

import os

from hybrik_jax.body import smpl_io
from hybrik_jax.body import smplx_io
from hybrik_jax.body.smplx_io import SMPLXFileError

KID_TEMPLATE_NAME = 'smplx_kid_template.npy'
# Datasets labelled with the synthetic SMPL-X body (no real SMPL-X file needed).
SMPLX_SYNTHETIC_DATASETS = ('synthetic_whole_body',)
BODIES = ('smpl', 'smplx')


def load_smplx_body(model_path: str | None, kid_template_path: str | None = None, *,
                    dataset: str | None = None,
                    names: tuple[str, str | None] = ('config.smpl.model_path',
                                                     'config.smpl.kid_template_path')):
  """(SMPLXModel with a kid template, description): the SMPL-X body of a HybrIK-X
  run, demo or export.

  model_path: SMPLX_NEUTRAL.npz / .pkl; '' or None: the synthetic SMPL-X body
  (seed 0, its own kid template), which labels synthetic_whole_body; for a real
  dataset (`dataset` not None and not synthetic) that is an error.
  kid_template_path: the (10475, 3) .npy ('' or None: KID_TEMPLATE_NAME beside
  model_path); HybrIK-X predicts a kid blend, so it is required with a file.
  names: what the caller calls the two inputs (config fields, or a CLI's
  flags such as ('--smpl', '--kid_template'); None for a kid template that can
  only lie beside the model file), for the error messages.

  Raises:
    smplx_io.SMPLXFileError (an InputError): a missing file, naming the input.
  """
  model_name, kid_name = names
  if not model_path:
    if kid_template_path:
      raise SMPLXFileError(f'{kid_name} is set but {model_name} is not: give both (the '
                           'synthetic SMPL-X body has its own kid template)')
    if (dataset is not None
        and dataset.split('/')[0].split(':')[0] not in SMPLX_SYNTHETIC_DATASETS):
      raise SMPLXFileError(
          f'{dataset!r} needs the real SMPL-X body: download SMPLX_NEUTRAL.npz '
          f'({smplx_io.SMPLX_SITE}) and {KID_TEMPLATE_NAME} and set '
          f'{model_name} / {kid_name}')
    from hybrik_jax.body import synthetic_smplx  # pylint: disable=g-import-not-at-top
    return synthetic_smplx.synthetic_smplx_model(0, kid=True), 'synthetic SMPL-X body'
  if not os.path.isfile(model_path):
    raise SMPLXFileError(f'SMPL-X model file {model_path!r} not found ({model_name}); '
                         f'SMPL-X is obtained from {smplx_io.SMPLX_SITE}')
  kid = kid_template_path or os.path.join(os.path.dirname(os.path.abspath(model_path)),
                                          KID_TEMPLATE_NAME)
  if not os.path.isfile(kid):
    where = f'({kid_name})' if kid_name else f'(looked for beside {model_name})'
    fix = f'put it beside the model file or give {kid_name}' if kid_name else (
        'put it beside the model file')
    raise SMPLXFileError(f'kid template {kid!r} not found {where}: HybrIK-X models need '
                         f'SMPL-X\'s {KID_TEMPLATE_NAME} (AGORA); {fix}')
  return smplx_io.load_smplx(model_path, kid), f'SMPL-X {os.path.basename(model_path)}'


def load_body(body: str, *, model_path: str | None, h36m_regressor_path: str | None = None,
              kid_template_path: str | None = None, dataset: str | None = None,
              names: tuple[str, str | None] | None = None):
  """(body model, description) for a model config's `body`: 'smpl' (model_path,
  h36m_regressor_path: `smpl_io.load_body_model`) or 'smplx' (model_path,
  kid_template_path: `load_smplx_body`, its messages naming the inputs as
  `names` says, default the config fields); empty paths give the synthetic body.

  Raises:
    errors.InputError / FileNotFoundError / ValueError: as the two loaders; an
      unknown body is a ValueError.
  """
  if body == 'smplx':
    return load_smplx_body(model_path, kid_template_path, dataset=dataset,
                           **({'names': names} if names else {}))
  if body != 'smpl':
    raise ValueError(f'model body must be one of {BODIES}, got {body!r}')
  return smpl_io.load_body_model(model_path, h36m_regressor_path, dataset=dataset)
