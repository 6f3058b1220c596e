r"""Where the train step's cost goes: per-component XLA memory, FLOPs and time.

  python -m benchmarks.components --config configs/paper.py --batch-size 64
  python -m benchmarks.components --config configs/paper.py --batch-size 64 \
      --skip-timing --out /tmp/components.json

Each component of the config's model is compiled on its own with abstract
inputs of the shapes it sees in the train step (batch --batch-size, the
backbone's feature map, the head's raw outputs) and analysed like the whole
step in `benchmarks.efficiency` (XLA memory analysis: arguments, outputs,
temporaries, total = arguments + outputs - aliased + temporaries; XLA cost
analysis FLOPs; optional median wall time on random inputs):

  backbone          fwd+bwd  ResNet, train mode (batch statistics), gradient of
                             <features, cotangent> w.r.t. its parameters.
  transformer head  fwd+bwd  train mode (dropout, patch subsets), gradient
                             w.r.t. its parameters and its input features.
  deconv head       fwd+bwd  the same for HybrIK's head (for comparison).
  IK (theta loss)   fwd+bwd  models.decode as the train step uses it: uvd ->
                             xyz -> rest joints -> HybrIK IK -> local
                             rotations; gradient w.r.t. the raw head outputs
                             (XLA drops the skinning: the loss reads only the
                             rotations).
  IK + skinning     fwd      the whole decode incl. the (B, 6890, 3) skinned
                             mesh and H36M joints, as evaluation runs it.
  loss              fwd+bwd  losses.hybrik_loss, gradient w.r.t. the outputs.
  Adam update       fwd      train_lib's optimizer on the model's gradients
                             (no backward: it is the update itself).
  whole train step           benchmarks.efficiency's compiled step (reference).

Components are compiled separately, so their sum is not the whole step (XLA
fuses across them and frees buffers as it goes); they show which part to make
cheaper next.
"""

import argparse
import functools
import sys
import time
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from benchmarks import efficiency
from benchmarks import model_numbers
from hybrik_jax.body import synthetic_body
from hybrik_jax.models import backbones
from hybrik_jax.models import config as model_config_lib
from hybrik_jax.models import deconv_head
from hybrik_jax.models import hybrik as hybrik_model
from hybrik_jax.models import transformer
from hybrik_jax.training import losses
from hybrik_jax.training import train_lib

_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}
COMPONENTS = ('backbone', 'transformer_head', 'deconv_head', 'ik', 'decode', 'loss',
              'adam')


def _sds(shape, dtype=jnp.float32):
  return jax.ShapeDtypeStruct(tuple(shape), dtype)


def _head_module(model_config, head: str, deconv_impl: str = 'subpixel'):
  """The standalone head HybrIKNet builds for `head` (same fields).

  deconv_impl ('subpixel' | 'lax') picks the deconv head's transposed
  convolutions (--deconv-impl).
  """
  dtype = _DTYPES[model_config.dtype]
  if head == 'transformer':
    return transformer.TransformerHead(
        d_model=model_config.d_model, num_heads=model_config.num_heads,
        num_blocks=model_config.num_blocks, ffn_layers=model_config.ffn_layers,
        ffn_width=model_config.ffn_width, dropout=model_config.dropout,
        retain_low=model_config.retain_low, retain_high=model_config.retain_high,
        predict_leaf=model_config.predict_leaf,
        twist_joint_offset=model_config.twist_joint_offset,
        mean_shape=tuple(model_config.mean_shape),
        attention_impl=model_config.attention_impl,
        remat=bool(model_config.get('head_remat', False)), dtype=dtype)
  return deconv_head.DeconvHead(
      deconv_channels=tuple(model_config.deconv_channels),
      depth_dim=model_config.depth_dim, fc_width=model_config.fc_width,
      fc_dropout=model_config.fc_dropout, predict_leaf=model_config.predict_leaf,
      mean_shape=tuple(model_config.mean_shape), dtype=dtype,
      deconv_impl=deconv_impl)


def _train_grad(module, x_abstract, wrt_input: bool):
  """(fn, abstract args): grad of <module(x, train=True), ct> (params[, x])."""
  variables = jax.eval_shape(
      lambda x: module.init({'params': jax.random.key(0), 'dropout': jax.random.key(1),
                             'patches': jax.random.key(2)}, x, train=False), x_abstract)
  params = variables['params']
  batch_stats = variables.get('batch_stats', {})
  out_abstract = jax.eval_shape(
      lambda p, s, x: module.apply({'params': p, 'batch_stats': s}, x, train=True,
                                   rngs={'dropout': jax.random.key(1),
                                         'patches': jax.random.key(2)},
                                   mutable=['batch_stats'])[0],
      params, batch_stats, x_abstract)
  ct_abstract = jax.tree.map(lambda o: _sds(o.shape, o.dtype), out_abstract)

  def fn(p, s, x, ct, rng_data):
    rng = jax.random.wrap_key_data(rng_data)
    d_rng, p_rng = jax.random.split(rng)

    def inner(p, x):
      out, new_state = module.apply({'params': p, 'batch_stats': s}, x, train=True,
                                    rngs={'dropout': d_rng, 'patches': p_rng},
                                    mutable=['batch_stats'])
      dot = sum(jnp.vdot(o.astype(jnp.float32), c.astype(jnp.float32))
                for o, c in zip(jax.tree.leaves(out), jax.tree.leaves(ct)))
      return dot, new_state

    argnums = (0, 1) if wrt_input else 0
    grads, new_state = jax.grad(inner, argnums=argnums, has_aux=True)(p, x)
    return grads, new_state

  args = (params, batch_stats, x_abstract, ct_abstract, _sds((2,), jnp.uint32))
  return fn, args, model_numbers.param_count(params), out_abstract


def component_programs(config: ml_collections.ConfigDict, batch_size: int, smpl_model,
                       deconv_impl: str = 'subpixel') -> list[dict[str, Any]]:
  """[{'key', 'name', 'mode', 'fn', 'args', 'params'}] of the model's parts.

  Keys: COMPONENTS.

  batch_size is the batch one device sees.
  """
  mc = efficiency.model_config_for(config, 'transformer')
  size = int(mc.input_size)
  dtype = _DTYPES[mc.dtype]
  b = batch_size
  backbone = backbones.create_backbone(mc.backbone, dtype=dtype,
                                       remat=bool(mc.get('backbone_remat', False)))
  images = _sds((b, size, size, 3))
  progs = []
  fn, args, n, feats = _train_grad(backbone, images, wrt_input=False)
  progs.append(dict(key='backbone', name=f'backbone ({mc.backbone})', mode='fwd+bwd', fn=fn, args=args,
                    params=n))
  feats = _sds(feats.shape, feats.dtype)
  raw_abstract = None
  for head in ('transformer', 'deconv'):
    fn, args, n, out = _train_grad(_head_module(mc, head, deconv_impl), feats,
                                   wrt_input=True)
    progs.append(dict(key=f'{head}_head', name=f'{head} head', mode='fwd+bwd', fn=fn, args=args, params=n))
    if head == 'transformer':
      raw_abstract = {k: _sds(v.shape, v.dtype) for k, v in out.items()}

  batch = {k: _sds((b,) + v.shape[1:], v.dtype)
           for k, v in efficiency.synthetic_batch(1, size).items()}
  geo = dict(trans_inv=batch['trans_inv'], intrinsics=batch['intrinsics'],
             joint_root=batch['joint_root'])
  smpl_abstract = jax.tree.map(lambda x: _sds(x.shape, x.dtype), smpl_model)

  ik_train = model_config_lib.ik_convention(mc).for_training()  # the train step's IK

  def decode(raw, geo, smpl):
    return hybrik_model.decode(raw, smpl_model=smpl, input_size=size,
                               convention=ik_train, **geo)

  def ik_grad(raw, geo, smpl, ct):
    rot, vjp = jax.vjp(lambda r: decode(r, geo, smpl).pred_rotmats, raw)
    return vjp(ct)[0]

  progs.append(dict(key='ik', name='IK, for the theta loss (decode -> rotations)', mode='fwd+bwd',
                    fn=ik_grad, args=(raw_abstract, geo, smpl_abstract,
                                      _sds((b, 24, 3, 3))), params=0))
  progs.append(dict(key='decode', name='IK + skinning (full decode, eval)', mode='fwd',
                    fn=decode, args=(raw_abstract, geo, smpl_abstract), params=0))

  outputs = dict(raw_abstract, pred_rotmats=_sds((b, 24, 3, 3)))
  weights = dict(config.loss)

  def loss_grad(outputs, batch):
    return jax.grad(lambda o: losses.hybrik_loss(o, batch, weights)[0])(outputs)

  progs.append(dict(key='loss', name='loss (hybrik_loss)', mode='fwd+bwd', fn=loss_grad,
                    args=(outputs, batch), params=0))

  model = hybrik_model.create_model(mc)
  tx, _ = efficiency.create_optimizer(config)
  state = jax.eval_shape(functools.partial(train_lib.create_train_state, model, tx,
                                           input_size=size), jax.random.key(0))

  def adam(params, grads, opt_state):
    updates, new_opt_state = tx.update(grads, opt_state, params)
    return jax.tree.map(jnp.add, params, updates), new_opt_state

  progs.append(dict(key='adam', name='Adam update (whole model)', mode='fwd', fn=adam,
                    args=(state.params, state.params, state.opt_state),
                    params=model_numbers.param_count(state.params)))
  return progs


def _fill(abstract, seed: int):
  """Random concrete arrays for abstract args (normal * 0.05; ints zero)."""
  leaves, treedef = jax.tree.flatten(abstract)
  rng = np.random.default_rng(seed)
  out = []
  for leaf in leaves:
    if jnp.issubdtype(leaf.dtype, jnp.floating):
      out.append(jnp.asarray(rng.normal(0, 0.05, leaf.shape), leaf.dtype))
    else:
      out.append(jnp.zeros(leaf.shape, leaf.dtype))
  return jax.tree.unflatten(treedef, out)


def run(config: ml_collections.ConfigDict, *, batch_size: int, steps: int = 5,
        warmup: int = 1, skip_timing: bool = False, include_step: bool = True,
        only: Optional[Sequence[str]] = None, smpl_model=None,
        progress: bool = True, deconv_impl: str = 'subpixel') -> dict[str, Any]:
  """Analyses (and times) the components (`only`: a subset of COMPONENTS keys).

  Returns the JSON-able report.
  """
  if only is not None and set(only) - set(COMPONENTS):
    raise ValueError(f'unknown components {sorted(set(only) - set(COMPONENTS))}; '
                     f'choose from {COMPONENTS}')
  log = (lambda *a: print(*a, file=sys.stderr, flush=True)) if progress else (lambda *a: None)
  if smpl_model is None:
    smpl_model = synthetic_body.synthetic_smpl_model()
  size = int(config.model.input_size)
  rows = []
  for prog in component_programs(config, batch_size, smpl_model, deconv_impl):
    if only is not None and prog['key'] not in only:
      continue
    log(f"[components] compiling {prog['name']} ({prog['mode']})...")
    t0 = time.perf_counter()
    compiled = jax.jit(prog['fn']).lower(*prog['args']).compile()
    row = {'key': prog['key'], 'name': prog['name'], 'mode': prog['mode'], 'params': prog['params'],
           'compile_s': time.perf_counter() - t0, **efficiency.analyse(compiled)}
    if not skip_timing:
      args = list(_fill(prog['args'], seed=len(rows)))
      for i, a in enumerate(prog['args']):   # real body model and batch where used
        if jax.tree.structure(a) == jax.tree.structure(smpl_model):
          args[i] = smpl_model
        if isinstance(a, dict) and 'image' in a:
          args[i] = {k: jnp.asarray(v) for k, v in
                     efficiency.synthetic_batch(batch_size, size).items()}
        if isinstance(a, dict) and 'trans_inv' in a and 'image' not in a:
          real = efficiency.synthetic_batch(batch_size, size)
          args[i] = {k: jnp.asarray(real[k]) for k in a}
      times = efficiency.time_calls(lambda: compiled(*args), steps, warmup)
      row['timing'] = efficiency.summarize_times(times)
    rows.append(row)
  if include_step:
    log('[components] compiling the whole train step (reference)...')
    mesh = train_lib.create_mesh()
    prog = efficiency.build_head(config, 'transformer', batch_size, mesh, smpl_model)
    row = {'key': 'train_step', 'name': 'whole train step (transformer)', 'mode': 'train step',
           'params': prog.num_params, 'compile_s': prog.compile_s,
           **efficiency.analyse(prog.compiled)}
    if not skip_timing:
      efficiency.materialize(prog, config, batch_size, mesh)
      times = efficiency.time_calls(lambda: efficiency.run_step(prog), steps, warmup)
      row['timing'] = efficiency.summarize_times(times)
    rows.append(row)
  return {'config': {'model': config.model.to_dict(), 'batch_size': batch_size,
                     'steps': 0 if skip_timing else steps},
          'machine': efficiency.machine_info(), 'components': rows}


def format_table(report) -> str:
  gib = lambda n: f'{n / 2**30:.2f}'
  lines = [f"| {'component':<46} | {'mode':<10} | {'params M':>8} | {'total GiB':>9} | "
           f"{'temp GiB':>8} | {'GFLOPs':>9} | {'time s':>7}",
           f"|{'-' * 48}|{'-' * 12}|{'-' * 10}|{'-' * 11}|{'-' * 10}|{'-' * 11}|{'-' * 9}"]
  for r in report['components']:
    t = f"{r['timing']['median_s']:.3f}" if 'timing' in r else '-'
    lines.append(f"| {r['name']:<46} | {r['mode']:<10} | {r['params'] / 1e6:>8.2f} | "
                 f"{gib(r['memory']['total']):>9} | {gib(r['memory']['temp']):>8} | "
                 f"{r['flops'] / 1e9:>9.1f} | {t:>7}")
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(prog='python -m benchmarks.components',
                                   description=__doc__.split('\n\n')[0])
  parser.add_argument('--config', default='configs/paper.py')
  parser.add_argument('--batch-size', type=int, default=64, help='per device')
  parser.add_argument('--steps', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=1)
  parser.add_argument('--dtype', default=None, choices=['float32', 'bfloat16'])
  parser.add_argument('--remat', action='store_true',
                      help='model.backbone_remat and model.head_remat')
  parser.add_argument('--skip-timing', action='store_true')
  parser.add_argument('--no-step', action='store_true',
                      help='do not compile the whole train step for reference')
  parser.add_argument('--only', default=None,
                      help=f'comma-separated subset of {",".join(COMPONENTS)}')
  parser.add_argument('--deconv-impl', default='subpixel', choices=['subpixel', 'lax'],
                      help="deconv head's transposed convolutions: sub-pixel matmul (the "
                      "model's) or lax.conv_transpose (before issue 15), same parameters")
  parser.add_argument('--out', default=None)
  args = parser.parse_args(argv)
  config = efficiency.load_config(args.config)
  if args.dtype:
    config.model.dtype = args.dtype
  if args.remat:
    config.model.backbone_remat = True
    config.model.head_remat = True
  report = run(config, batch_size=args.batch_size, steps=args.steps, warmup=args.warmup,
               skip_timing=args.skip_timing, include_step=not args.no_step,
               only=args.only.split(',') if args.only else None,
               deconv_impl=args.deconv_impl)
  m = report['machine']
  print(f"{args.config} transformer model, batch {args.batch_size}, dtype "
        f"{config.model.dtype}; {m['backend']} ({m['device_kind']}), "
        f"{efficiency.machine_line(m)}")
  print(format_table(report))
  if args.out:
    efficiency.write_json(report, args.out)


if __name__ == '__main__':
  main()
