"""The ('data',) device mesh and the global arrays on it.

Data parallelism: `jit` over a 1-D `('data',)` device mesh spanning every
device of every process; a batch is sharded on 'data', model state is
replicated. The trainer (`training.train_lib`) and the evaluation loop
(`evaluation.loop`) both use these.
"""

from typing import Any, Mapping, Sequence

import jax
import numpy as np

PyTree = Any
DATA_AXIS = 'data'


def create_mesh(devices: Sequence[jax.Device] | None = None
                ) -> jax.sharding.Mesh:
  """A ('data',) mesh over `devices` (default: every device of every process)."""
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def batch_sharding(mesh) -> jax.sharding.NamedSharding:
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))


def replicated_sharding(mesh) -> jax.sharding.NamedSharding:
  return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def global_batch(local_batch: Mapping[str, np.ndarray], mesh
                 ) -> dict[str, jax.Array]:
  """Per-process numpy batch -> global arrays sharded on 'data'.

  Every process passes its own slice (leading axis = global batch / number
  of processes); the result's leading axis is the global batch.
  """
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}


def replicate(tree: PyTree, mesh) -> PyTree:
  """Puts a (host-identical) pytree on every device of the mesh."""
  sharding = replicated_sharding(mesh)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x))
      if jax.process_count() > 1 else jax.device_put(x, sharding), tree)


def host_value(x) -> np.ndarray:
  """A replicated (possibly multi-host) jax array as numpy, on every host."""
  if isinstance(x, jax.Array):
    return np.asarray(x.addressable_data(0))
  return np.asarray(x)
