"""Starting a run from exported weights (config.init): a backbone or a model."""

from absl import logging

from hybrik_jax import errors
from hybrik_jax.checkpoints import model_dir
from hybrik_jax.models import variables as variables_lib
from hybrik_jax.training import train_lib


def load_initial_weights(state: train_lib.TrainState, config
                         ) -> train_lib.TrainState:
  """Puts config.init's exported backbone / full model into a fresh state.

  Raises:
    errors.InputError: a path that is not an exported model (saying how to
      make one), or weights that do not fit the model.
  """
  variables = state.variables
  for path, what in ((config.init.backbone_checkpoint, 'backbone'),
                     (config.init.model_checkpoint, 'model')):
    if not path:
      continue
    if not model_dir.is_exported_model(path):
      raise errors.InputError(
          f'config.init.{what}_checkpoint: {path} is not an exported model. '
          'Make it with `python -m hybrik_jax.convert --torch_checkpoint '
          f'X.pth --out {path}' + (' --arch backbone`' if what == 'backbone'
                                   else '`'))
    loaded, _ = model_dir.load_model(path)
    variables = variables_lib.merge_variables(variables, loaded)
    logging.info('Initialised the %s from %s', what, path)
  return state.replace(params=variables['params'],
                       batch_stats=variables['batch_stats'])
