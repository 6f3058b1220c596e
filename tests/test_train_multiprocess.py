"""Two processes (jax.distributed on localhost, CPU collectives) train like one.

Each process holds one CPU device and half of every global batch
(`jax.make_array_from_process_local_data`); after two steps their params must
equal those of a single process that trains on the whole global batches.
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
    config = test_config.get_config()
    # The attention key biases have an analytically zero gradient (softmax
    # ignores a shift shared by all logits): their float-noise gradients
    # (~1e-10) differ between reduction orders and Adam's first step turns
    # them into +-lr with eps=1e-8. eps=1e-5 keeps that noise below ~1e-7.
    config.optim.eps = 1e-5
    model = hybrik_model.create_model(config.model)
    tx, lr_fn = train_lib.create_optimizer(config.optim)
    state = train_lib.create_train_state(model, tx, jax.random.key(0), 64)
    mesh = train_lib.create_mesh()
    state = train_lib.replicate(state, mesh)
    step = train_lib.jit_train_step(
        mesh, smpl_model=synthetic_body.synthetic_smpl_model(), model=model, tx=tx,
        lr_fn=lr_fn, loss_weights=dict(config.loss), model_config=config.model)

    def global_batch_numpy(seed, B=4):
      rng = np.random.default_rng(seed)
      f32 = lambda a: np.asarray(a, np.float32)
      quat = rng.normal(size=(B, 24, 4))
      quat /= np.linalg.norm(quat, axis=-1, keepdims=True)
      return dict(
          image=f32(rng.normal(size=(B, 64, 64, 3))),
          target_uvd_29=f32(rng.uniform(-0.4, 0.4, (B, 29, 3))),
          target_uvd_weight_29=np.ones((B, 29, 3), np.float32),
          target_beta=f32(rng.normal(size=(B, 10))),
          target_smpl_weight=np.ones((B, 1), np.float32),
          target_theta=f32(quat),
          target_theta_weight=np.ones((B, 24, 4), np.float32),
          target_twist=f32(rng.normal(size=(B, 23, 2))),
          target_twist_weight=np.ones((B, 23, 2), np.float32),
          trans_inv=f32(np.tile([[1., 0, 0], [0, 1, 0]], (B, 1, 1))),
          intrinsics=f32(np.tile([[150., 0, 32], [0, 150, 32], [0, 0, 1]],
                                 (B, 1, 1))),
          joint_root=f32(np.tile([0., 0., 4.], (B, 1))),
          depth_factor=np.full((B, 1), 2.2, np.float32))

    for seed in (1, 2):
      full = global_batch_numpy(seed)
      per = 4 // num_processes
      local = {k: v[process_id * per:(process_id + 1) * per]
               for k, v in full.items()}
      state, metrics = step(state, train_lib.global_batch(local, mesh))
    params = jax.tree.map(lambda x: np.asarray(x.addressable_data(0)),
                          state.params)
    flat = {jax.tree_util.keystr(p): v.tolist() for p, v in
            jax.tree_util.tree_flatten_with_path(params)[0]}
    with open(out, 'w') as f:
      json.dump(flat, f)
''')


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_match_one(tmp_path):
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
  single = subprocess.run(
      [sys.executable, '-c', _WORKER, '1', '0', '0', repo,
       str(tmp_path / 'single.json')], env=env, capture_output=True, text=True,
      timeout=900, check=False)
  outs = [p.communicate(timeout=900) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-4000:]
  assert single.returncode == 0, single.stderr[-4000:]
  results = [json.loads((tmp_path / f'{n}.json').read_text())
             for n in ('p0', 'p1', 'single')]
  assert results[0].keys() == results[2].keys()
  for key in results[2]:
    ref = np.asarray(results[2][key])
    np.testing.assert_array_equal(np.asarray(results[0][key]),
                                  np.asarray(results[1][key]), err_msg=key)
    # Two Adam steps of lr 1e-3 move a weight by up to 2e-3; reduction-order
    # noise in near-zero gradients can flip a few of Adam's normalised
    # updates by ~1%: allow 3e-5 per element, and demand near-equality on
    # average.
    got = np.asarray(results[0][key])
    np.testing.assert_allclose(got, ref, rtol=0, atol=3e-5, err_msg=key)
    assert np.mean(np.abs(got - ref)) < 1e-6, key
