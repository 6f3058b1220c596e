"""Data parallelism: two processes, and four devices, train like one device.

Two processes (jax.distributed on localhost, CPU collectives) each hold one CPU
device and half of every global batch (`jax.make_array_from_process_local_data`);
one process with four (forced) CPU devices shards each batch over them. After
two steps both must equal a single device trained on the whole global batches.
The batches mask some examples' SMPL targets, so a per-shard mean would differ
from the global one. The one-process run forces its four devices
(XLA_FLAGS=--xla_force_host_platform_device_count) in its own process, so the
flag does not leak into other tests.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

_WORKER = textwrap.dedent('''
    import json, sys
    import jax
    num_processes, process_id, port, repo, out = (
        int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    if num_processes > 1:
      jax.distributed.initialize(coordinator_address=f'localhost:{port}',
                                 num_processes=num_processes,
                                 process_id=process_id)
    import jax.numpy as jnp, numpy as np
    from hybrik_jax.training import train_lib
    from hybrik_jax.body import synthetic_body
    from hybrik_jax.models import hybrik as hybrik_model
    sys.path.insert(0, repo)
    from configs import test as test_config

    assert jax.process_count() == num_processes
    assert num_processes > 1 or jax.device_count() == 4, jax.devices()
    config = test_config.get_config()
    # The attention key biases have an analytically zero gradient (softmax
    # ignores a shift shared by all logits): their float-noise gradients
    # (~1e-10) differ between reduction orders and Adam's first step turns
    # them into +-lr with eps=1e-8. eps=1e-5 keeps that noise below ~1e-7.
    config.optim.eps = 1e-5
    model = hybrik_model.create_model(config.model)
    tx, lr_fn = train_lib.create_optimizer(config.optim)
    state0 = train_lib.create_train_state(model, tx, jax.random.key(0), 64)
    smpl_model = synthetic_body.synthetic_smpl_model()

    def global_batch_numpy(seed, B=8):
      rng = np.random.default_rng(seed)
      f32 = lambda a: np.asarray(a, np.float32)
      quat = rng.normal(size=(B, 24, 4))
      quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
      return dict(
          image=f32(rng.normal(size=(B, 64, 64, 3))),
          target_uvd_29=f32(rng.uniform(-0.4, 0.4, (B, 29, 3))),
          target_uvd_weight_29=np.ones((B, 29, 3), np.float32),
          target_beta=f32(rng.normal(size=(B, 10))),
          target_smpl_weight=f32(np.arange(B)[:, None] % 3 != 0),
          target_theta=f32(quat),
          target_theta_weight=np.ones((B, 24, 4), np.float32),
          target_twist=f32(rng.normal(size=(B, 23, 2))),
          target_twist_weight=np.ones((B, 23, 2), np.float32),
          trans_inv=f32(np.tile([[1., 0, 0], [0, 1, 0]], (B, 1, 1))),
          intrinsics=f32(np.tile([[150., 0, 32], [0, 150, 32], [0, 0, 1]],
                                 (B, 1, 1))),
          joint_root=f32(np.tile([0., 0., 4.], (B, 1))),
          depth_factor=np.full((B, 1), 2.2, np.float32))

    def train(devices):
      """Two steps on `devices` (all of them: this run's processes); the state
      after each on this host, and the first step's loss."""
      mesh = train_lib.create_mesh(devices)
      step = train_lib.jit_train_step(
          mesh, smpl_model=smpl_model, model=model, tx=tx, lr_fn=lr_fn,
          loss_weights=dict(config.loss), model_config=config.model)
      state = train_lib.replicate(jax.tree.map(jnp.copy, state0), mesh)
      losses, states = [], []
      for seed in (1, 2):
        full = global_batch_numpy(seed)
        per = 8 // num_processes
        local = {k: v[process_id * per:(process_id + 1) * per]
                 for k, v in full.items()}
        gb = train_lib.global_batch(local, mesh)
        assert len(gb['image'].sharding.device_set) == len(devices)
        state, metrics = step(state, gb)
        losses.append(float(np.asarray(metrics['loss'].addressable_data(0))))
        states.append(jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), state))
      return states, losses[0]

    def flat(tree):
      return {jax.tree_util.keystr(p): np.asarray(v).tolist() for p, v in
              jax.tree_util.tree_flatten_with_path(tree)[0]}

    if num_processes > 1:
      states, loss = train(jax.devices())
      result = {'params': flat(states[-1].params), 'loss': loss}
    else:  # one device, then all four of this process
      states, loss = train(jax.devices()[:1])
      states4, loss4 = train(jax.devices())
      everything = lambda s: flat((s.params, s.batch_stats, s.opt_state))
      result = {'params': flat(states[-1].params), 'loss': loss, 'loss4': loss4,
                'first4': everything(states4[0]), 'first1': everything(states[0]),
                'changed': max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                               for a, b in zip(jax.tree.leaves(states[-1].params),
                                               jax.tree.leaves(state0.params)))}
    with open(out, 'w') as f:
      json.dump(result, f)
''')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _assert_trees_match(got: dict, ref: dict, what: str) -> None:
  """Flattened trees equal up to float32 reduction-order noise.

  Adam normalises each weight's update to about +-lr whatever its gradient's
  size, so reduction-order noise in a near-zero gradient can move that weight
  by up to 2 lr a step (4e-3 after two steps of lr 1e-3): allowed for one
  element in a thousand; every other element within 3e-5, and the mean
  difference over all elements below 1e-6. A per-shard instead of a global
  mean, or a lost shard, moves most elements by far more.
  """
  assert got.keys() == ref.keys(), what
  diffs = {k: np.abs(np.asarray(got[k], np.float64) - np.asarray(ref[k], np.float64))
           for k in ref}
  flat = np.concatenate([d.ravel() for d in diffs.values()])
  flipped = {k: int((d > 3e-5).sum()) for k, d in diffs.items() if (d > 3e-5).any()}
  assert flat.max() <= 4e-3, (what, {k: float(d.max()) for k, d in diffs.items()
                                     if d.max() > 4e-3})
  assert sum(flipped.values()) <= 1e-3 * flat.size, (what, flipped)
  assert flat.mean() < 1e-6, (what, flat.mean())


def test_two_processes_and_four_devices_match_one_device(tmp_path):
  repo = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
  env = dict(os.environ)
  env['XLA_FLAGS'] = '--xla_backend_optimization_level=0'
  env['JAX_PLATFORMS'] = 'cpu'
  port = str(_free_port())
  procs = []
  for i in range(2):
    procs.append(subprocess.Popen(
        [sys.executable, '-c', _WORKER, '2', str(i), port, repo,
         str(tmp_path / f'p{i}.json')], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True))
  env4 = dict(env, XLA_FLAGS='--xla_force_host_platform_device_count=4 '
              '--xla_backend_optimization_level=0')
  single = subprocess.run(
      [sys.executable, '-c', _WORKER, '1', '0', '0', repo,
       str(tmp_path / 'single.json')], env=env4, capture_output=True, text=True,
      timeout=900, check=False)
  outs = [p.communicate(timeout=900) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-4000:]
  assert single.returncode == 0, single.stderr[-4000:]
  p0, p1, one = [json.loads((tmp_path / f'{n}.json').read_text())
                 for n in ('p0', 'p1', 'single')]
  assert one['changed'] > 1e-6  # the steps did something
  # The two processes hold the same replicated params.
  for key in p0['params']:
    np.testing.assert_array_equal(np.asarray(p0['params'][key]),
                                  np.asarray(p1['params'][key]), err_msg=key)
  _assert_trees_match(p0['params'], one['params'], 'two processes vs one device')
  # Four devices, after the first step: params, batch stats and Adam's moments.
  _assert_trees_match(one['first4'], one['first1'], 'four devices vs one')
  for loss in (p0['loss'], one['loss4']):
    assert abs(loss - one['loss']) <= 1e-5 * abs(one['loss']), (loss, one['loss'])
