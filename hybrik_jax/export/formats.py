"""Writers of the three artefact formats, each over a serving function.

  stablehlo   `jax.export`: OUT/model.stablehlo (serialised; reload with
              `jax.export.deserialize(bytearray(data)).call(*inputs)`, no
              hybrik_jax needed), lowered for CPU and CUDA.
  savedmodel  `jax2tf.convert` (native serialisation: the same StableHLO in an
              XlaCallModule op) in a tf.Module with a 'serving_default'
              signature (TF Serving, `tf.saved_model.load`).
  onnx        jax2onnx from the jaxpr: OUT/model.onnx, checked by
              `onnx.checker`, run by onnxruntime.
Each also writes OUT/export.json (`manifest`). TensorFlow, jax2onnx and onnx
are imported only by their writer (the `export` extra installs them).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Any, Callable, Sequence

import jax
import numpy as np

from hybrik_jax import errors
from hybrik_jax.export import serving

FORMATS = ('savedmodel', 'stablehlo', 'onnx')
MANIFEST_FILE = 'export.json'
STABLEHLO_FILE = 'model.stablehlo'
ONNX_FILE = 'model.onnx'
# Lowered for both: the artefact has no platform-specific call (no LAPACK SVD).
STABLEHLO_PLATFORMS = ('cpu', 'cuda')
ONNX_OPSET = 23


class ExportError(errors.InputError):
  """An export cannot be made (missing tool, unsupported option)."""


def _missing(tool: str, e: ImportError) -> ExportError:
  return ExportError(f'{tool} is not installed ({e}); install the export extra: '
                     "pip install -e '.[export]'")


def _tuple_fn(serve: Callable, names: Sequence[str]) -> Callable:
  """`serve` with its outputs as a tuple in `names` order. `serve` is called
  once: jax2onnx emits every call it traces (no dead-code elimination before
  its graph passes), so one call per output gave len(names) copies of the
  whole graph (43569 ONNX nodes instead of ~4800 for the test model)."""
  def fn(*args):
    out = serve(*args)
    return tuple(out[name] for name in names)
  return fn


def _specs(input_size: int, options: serving.ServingOptions, symbolic: Any):
  return serving.input_specs(input_size, options,
                             batch_dim=symbolic if options.batch is None else None)


def write_stablehlo(serve: Callable, input_size: int,
                    options: serving.ServingOptions, out_dir: str) -> str:
  """jax.export of `serve` -> OUT/model.stablehlo; returns its path."""
  symbolic = jax.export.symbolic_shape('b')[0] if options.batch is None else None
  exported = jax.export.export(jax.jit(serve), platforms=STABLEHLO_PLATFORMS)(
      *_specs(input_size, options, symbolic))
  path = os.path.join(out_dir, STABLEHLO_FILE)
  with open(path, 'wb') as f:
    f.write(exported.serialize())
  return path


def write_savedmodel(serve: Callable, input_size: int,
                     options: serving.ServingOptions, out_dir: str) -> str:
  """jax2tf SavedModel with a 'serving_default' signature; returns out_dir."""
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise _missing('tensorflow', e) from e
  names = serving.input_names(options)
  poly = None if options.batch is not None else ['(b, ...)'] * len(names)
  tf_serve = jax2tf.convert(serve, polymorphic_shapes=poly, with_gradient=False,
                            native_serialization_platforms=STABLEHLO_PLATFORMS)
  # A fixed batch: its own size (it was 1 whatever --batch said); dynamic: None.
  specs = serving.input_specs(input_size, options,
                              batch_dim=None if options.batch is not None else 1)
  signature = [tf.TensorSpec(spec.shape if options.batch is not None
                             else (None,) + spec.shape[1:], tf.as_dtype(spec.dtype), name=name)
               for name, spec in zip(names, specs)]
  module = tf.Module()
  module.serve = tf.function(lambda *args: tf_serve(*args), input_signature=signature,
                             autograph=False)
  tf.saved_model.save(module, out_dir, signatures={'serving_default': module.serve})
  return out_dir


def _softmax_over_several_axes(softmax: Callable) -> Callable:
  """jax.nn.softmax with several axes as one: moved last, flattened, softmax
  over that one axis (the same numbers)."""
  def several_axes(x, axis=-1, where=None):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    if len(axes) < 2 or where is not None:
      return softmax(x, axis=axis, where=where)
    import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
    axes = tuple(a % x.ndim for a in axes)
    last = tuple(range(x.ndim - len(axes), x.ndim))
    moved = jnp.moveaxis(x, axes, last)
    flat = moved.reshape(moved.shape[:-len(axes)] + (-1,))
    return jnp.moveaxis(softmax(flat, axis=-1).reshape(moved.shape), last, axes)
  return several_axes


def _closes_over_tracers(body_fun: Callable, lower: int, init_val: Any) -> bool:
  """Whether `body_fun(i, val)` reads traced arrays it does not take as
  arguments (its jaxpr's constants include tracers)."""
  closed = jax.make_jaxpr(body_fun)(lower, init_val)
  return any(isinstance(c, jax.core.Tracer) for c in closed.consts)


def _fori_loop_unrolled(fori_loop: Callable) -> Callable:
  """jax.lax.fori_loop with Python-int bounds whose body closes over traced
  arrays as a Python loop (the body traced once per step); other calls as
  before (an ONNX Loop: the body once in the graph)."""
  def unrolled(lower, upper, body_fun, init_val, *args, **kwargs):
    if (isinstance(lower, int) and isinstance(upper, int) and not args and not kwargs
        and _closes_over_tracers(body_fun, lower, init_val)):
      val = init_val
      for i in range(lower, upper):
        val = body_fun(i, val)
      return val
    return fori_loop(lower, upper, body_fun, init_val, *args, **kwargs)
  return unrolled


# jax2onnx 0.12.5 plugins whose bindings the conversion wraps: (module, class,
# patched attribute, wrapper). Its Softmax takes one axis only ("jax.nn.softmax
# lowering only supports a single axis"), while HybrIK's heatmap heads (the
# deconvolution head and both camera heads) normalise each joint's heatmap over
# (H, W, D); its fori_loop cannot lower a body that closes over traced arrays
# (TracerArrayConversionError): such loops are unrolled (HybrIK-X's three scale
# refinements carry what they read instead, one ONNX Loop).
_JAX2ONNX_SHIMS = (
    ('jax2onnx.plugins.jax.nn.softmax', 'SoftmaxPlugin', 'softmax',
     _softmax_over_several_axes),
    ('jax2onnx.plugins.jax.lax.fori_loop', 'ForiLoopPlugin', 'fori_loop',
     _fori_loop_unrolled),
)


def _broadcast_without_stale_scatter_hints(lower: Callable) -> Callable:
  """BroadcastInDimPlugin.lower that sees no scatter-window hint for an axis
  whose size is static (symbolic axes keep theirs)."""
  def lower_static(self, ctx, eqn):
    hints = getattr(ctx, '_scatter_window_hints', None)
    if not isinstance(hints, dict) or not hints:
      return lower(self, ctx, eqn)
    shape = tuple(eqn.params['shape'])
    static = lambda axis: axis < len(shape) and isinstance(shape[axis], (int, np.integer))
    ctx._scatter_window_hints = {a: v for a, v in hints.items() if not static(a)}
    try:
      return lower(self, ctx, eqn)
    finally:
      ctx._scatter_window_hints = hints  # the same dict: later scatters append to it
  return lower_static


# jax2onnx 0.12.5 lowerings the conversion wraps: (module, class, wrapper of its
# `lower`). Every scatter (`x.at[...].add / .set`) records its update window's
# size per axis in the conversion context and never clears it; every later
# broadcast_in_dim that adds an axis (`keepdims=True`, `x[:, None]` broadcast)
# takes the newest hint of that axis as the axis's size, even where the size is
# static and differs. The SMPL-X IK's first scatter (a (B, 71, 3) window of 3 on
# its last axis) so made `jnp.linalg.norm(phis, axis=-1, keepdims=True)` (B, 54, 1)
# a (B, 54, 3) Expand, which onnxruntime refuses at the next elementwise op
# ("[ShapeInferenceError] Incompatible dimensions": a Div in the IK alone, a Where
# in the whole HybrIK-X graph). Static axes now take their own size.
_JAX2ONNX_LOWERING_SHIMS = (
    ('jax2onnx.plugins.jax.lax.broadcast_in_dim', 'BroadcastInDimPlugin',
     _broadcast_without_stale_scatter_hints),
)


_IR_OPTIMIZATIONS = 'jax2onnx.converter.ir_optimizations'


def _indexed_node_lookups(module: Any) -> dict[str, Callable] | None:
  """Replacements for `module._producer_node(nodes, value_or_name)` and
  `module._consumer_nodes(nodes, value_or_name)` that index each node list once
  (node ids; the first node, by position, that outputs a value, by identity and
  by name) instead of scanning it on every call; the same answers. None where
  this jax2onnx lacks the helpers they rely on.

  jax2onnx 0.12.5's graph passes take `nodes = list(graph)` and query it
  ~10^5 times before taking a new list; each query built a set of every node's
  id, and a value without a producer among them (an initializer) was looked up
  by a scan of every node's outputs: quadratic, 446 of the tiny HybrIK-X
  model's 499 s of conversion. Assumed of the pinned version (read in its
  source): a list passed to these helpers is not changed in place and its
  nodes' outputs keep their names while it is in use; an index is reused only
  for the same list object of the same length, and other sequences go to the
  original helpers."""
  names = ('_producer_node', '_consumer_nodes', '_value_identity', '_v_name',
           '_node_outputs')
  if not all(callable(getattr(module, n, None)) for n in names):
    return None
  import onnx_ir as ir  # pylint: disable=g-import-not-at-top
  producer_node, consumer_nodes = module._producer_node, module._consumer_nodes
  indices: dict[int, tuple] = {}  # id(list) -> (list, len, ids, by value, by name)

  def index(nodes: list) -> tuple:
    entry = indices.get(id(nodes))
    if entry is not None and entry[0] is nodes and entry[1] == len(nodes):
      return entry
    ids, by_value, by_name = set(), {}, {}
    for pos, node in enumerate(nodes):
      ids.add(id(node))
      for out in module._node_outputs(node):
        by_value.setdefault(id(out), pos)
        name = module._v_name(out)
        if name:
          by_name.setdefault(name, pos)
    if len(indices) >= 8:  # the passes alternate between a few live lists
      indices.pop(next(iter(indices)))
    entry = indices[id(nodes)] = (nodes, len(nodes), ids, by_value, by_name)
    return entry

  def indexed_producer_node(nodes, value_or_name):
    if type(nodes) is not list or value_or_name is None:
      return producer_node(nodes, value_or_name)
    _, _, ids, by_value, by_name = index(nodes)
    if isinstance(value_or_name, ir.Value):
      prod = value_or_name.producer()
      if isinstance(prod, ir.Node) and id(prod) in ids:
        return prod
    ref_value, name = module._value_identity(value_or_name)
    found = [p for p in (by_value.get(id(ref_value)) if ref_value is not None else None,
                         by_name.get(name) if name else None) if p is not None]
    return nodes[min(found)] if found else None

  def indexed_consumer_nodes(nodes, value_or_name):
    if type(nodes) is list and isinstance(value_or_name, ir.Value):
      consumers = value_or_name.consumers()
      if consumers and all(isinstance(c, ir.Node) for c in consumers):
        ids = index(nodes)[2]
        found = [c for c in consumers if id(c) in ids]
        if found:
          return found
    return consumer_nodes(nodes, value_or_name)  # its name-based scan

  return {'_producer_node': indexed_producer_node,
          '_consumer_nodes': indexed_consumer_nodes}


def _plugin_class(module_name: str, class_name: str) -> type | None:
  """A jax2onnx plugin class, None where this jax2onnx has no such plugin."""
  import importlib  # pylint: disable=g-import-not-at-top
  try:
    return getattr(importlib.import_module(module_name), class_name)
  except (ImportError, AttributeError):
    return None


@contextlib.contextmanager
def _jax2onnx_shims(indexed_lookups: bool = True):
  """Wraps the bindings of `_JAX2ONNX_SHIMS` and the lowerings of
  `_JAX2ONNX_LOWERING_SHIMS` for one conversion, and (indexed_lookups) replaces
  the graph passes' node lookups by `_indexed_node_lookups` (all restored
  after); a jax2onnx without those plugins or helpers is left as it is."""
  import importlib  # pylint: disable=g-import-not-at-top
  restore = []
  if indexed_lookups:
    try:
      passes = importlib.import_module(_IR_OPTIMIZATIONS)
    except ImportError:
      passes = None
    lookups = _indexed_node_lookups(passes) if passes is not None else None
    for attr, replacement in (lookups or {}).items():
      restore.append((passes, attr, getattr(passes, attr)))
      setattr(passes, attr, replacement)
  for module_name, class_name, wrapper in _JAX2ONNX_LOWERING_SHIMS:
    cls = _plugin_class(module_name, class_name)
    if cls is None or 'lower' not in cls.__dict__:
      continue
    original = cls.__dict__['lower']
    restore.append((cls, 'lower', original))
    cls.lower = wrapper(original)
  for module_name, class_name, attr, wrapper in _JAX2ONNX_SHIMS:
    cls = _plugin_class(module_name, class_name)
    if cls is None:
      continue
    original = cls.__dict__['binding_specs']

    def binding_specs(klass, original=original, attr=attr, wrapper=wrapper):
      specs = original.__func__(klass)
      for spec in specs:
        if getattr(spec, 'attr', None) == attr and hasattr(spec, 'make_value'):
          make = spec.make_value
          spec.make_value = lambda orig, make=make: wrapper(make(orig))
      return specs

    cls.binding_specs = classmethod(binding_specs)
    restore.append((cls, 'binding_specs', original))
  try:
    yield
  finally:
    for cls, attr, original in reversed(restore):
      setattr(cls, attr, original)


def _subgraphs(graph: Any):
  """The subgraphs (Loop / If / Scan bodies) of `graph`'s nodes, one level."""
  for node in graph.node:
    for attr in node.attribute:
      yield from ([attr.g] if attr.HasField('g') else []) + list(attr.graphs)


def _defined_names(graph: Any) -> set[str]:
  """Every value name `graph` and its subgraphs define (inputs, initializers,
  node outputs)."""
  names = {v.name for v in graph.input} | {t.name for t in graph.initializer}
  names |= {o for node in graph.node for o in node.output}
  for sub in _subgraphs(graph):
    names |= _defined_names(sub)
  return names


def _rename_uses(graph: Any, renames: dict[str, str]) -> None:
  """Node inputs of `graph` and of the subgraphs that see them renamed by
  `renames` (old -> new name), in one walk."""
  for node in graph.node:
    if any(name in renames for name in node.input):
      node.input[:] = [renames.get(name, name) for name in node.input]
  for sub in _subgraphs(graph):
    own = {v.name for v in sub.input} | {t.name for t in sub.initializer}
    _rename_uses(sub, {k: v for k, v in renames.items() if k not in own})


def _share_outer_initializers(graph: Any, outer: dict | None = None) -> int:
  """Drops each subgraph initializer equal (dtype, shape, bytes) to one of an
  enclosing graph's and reads the outer one by name (ONNX subgraphs see outer
  values); returns the bytes dropped. jax2onnx binds a loop body's constants in
  the body, so HybrIK-X's scale-refinement Loop held a second copy of every
  SMPL-X array (69 of 142 MB). Initializers that are the subgraph's inputs or
  outputs, or whose outer name the subgraph defines itself, stay."""
  import hashlib  # pylint: disable=g-import-not-at-top
  key = lambda t: (t.data_type, tuple(t.dims), hashlib.sha256(t.raw_data).digest())
  shareable = lambda t: t.raw_data and t.data_location != t.EXTERNAL
  outer = dict(outer or {})
  for t in graph.initializer:
    if shareable(t):
      outer.setdefault(key(t), t)
  dropped = 0
  for sub in _subgraphs(graph):
    defined = _defined_names(sub)
    boundary = {v.name for v in sub.input} | {v.name for v in sub.output}
    gone = {}  # index in sub.initializer -> (its name, the outer one's)
    for i, t in enumerate(sub.initializer):
      same = outer.get(key(t)) if shareable(t) else None
      if (same is not None and same.raw_data == t.raw_data and t.name not in boundary
          and same.name not in defined):
        dropped += len(t.raw_data)
        gone[i] = (t.name, same.name)
    renames = dict(gone.values())
    _rename_uses(sub, renames)
    names = set(renames)
    for field, drop in ((sub.initializer, sorted(gone)),
                        (sub.value_info, [i for i, v in enumerate(sub.value_info)
                                          if v.name in names])):
      for i in reversed(drop):  # in place: no copies of the kept tensors
        del field[i]
    dropped += _share_outer_initializers(sub, outer)
  return dropped


def write_onnx(serve: Callable, input_size: int, options: serving.ServingOptions,
               out_dir: str) -> str:
  """jax2onnx -> OUT/model.onnx (onnx.checker-checked); returns its path."""
  try:
    import jax2onnx  # pylint: disable=g-import-not-at-top
    import onnx  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise _missing('jax2onnx', e) from e
  outputs = serving.output_names(serve, input_size, options)
  if options.batch is None:
    specs = [('B',) + tuple(s.shape[1:]) for s in serving.input_specs(input_size, options)]
    if options.image_dtype != 'float32':
      raise ExportError('onnx with a dynamic batch takes float32 images only '
                        '(jax2onnx types shape-only inputs float32): add '
                        '--image_dtype float32 or give --batch')
  else:
    specs = serving.input_specs(input_size, options)
  path = os.path.join(out_dir, ONNX_FILE)
  # jax2onnx prints debugging lines of its own while tracing.
  with contextlib.redirect_stdout(io.StringIO()), _jax2onnx_shims():
    model = jax2onnx.to_onnx(_tuple_fn(serve, outputs), specs, model_name='hybrik',
                             opset=ONNX_OPSET, input_names=list(serving.input_names(options)),
                             output_names=list(outputs))
  # jax2onnx 0.12.5 annotates some convolution outputs with NHWC shapes on NCHW
  # tensors. Where H = W = C's size differs from theirs (a 256-px ResNet: 32 x 32 x
  # 128), onnxruntime refuses the graph ("[ShapeInferenceError] Incompatible
  # dimensions" at a residual Add). The intermediate annotations are optional:
  # dropped, onnxruntime infers every shape itself (inputs and outputs keep theirs).
  del model.graph.value_info[:]
  _share_outer_initializers(model.graph)
  onnx.checker.check_model(model)
  onnx.save(model, path)
  return path


WRITERS = {'savedmodel': write_savedmodel, 'stablehlo': write_stablehlo,
           'onnx': write_onnx}


def manifest(fmt: str, serve: Callable, input_size: int,
             options: serving.ServingOptions, extra: dict[str, Any]) -> dict[str, Any]:
  """What export.json records: the format, the inputs and outputs (name,
  shape with null for the dynamic batch, dtype), the options, `extra`."""
  specs = serving.input_specs(input_size, options, batch_dim=1)
  outs = jax.eval_shape(serve, *specs)
  batch = options.batch
  shape = lambda s: [batch] + list(s[1:])
  return {
      'format': fmt,
      'inputs': [{'name': n, 'shape': shape(s.shape), 'dtype': str(np.dtype(s.dtype))}
                 for n, s in zip(serving.input_names(options), specs)],
      'outputs': [{'name': n, 'shape': shape(s.shape), 'dtype': str(np.dtype(s.dtype))}
                  for n, s in outs.items()],
      'options': {'batch': batch, 'flip_test': options.flip_test,
                  'with_mesh': options.with_mesh, 'image_dtype': options.image_dtype,
                  'camera': options.camera},
      **extra,
  }


def write(fmt: str, serve: Callable, input_size: int, options: serving.ServingOptions,
          out_dir: str, extra: dict[str, Any] | None = None) -> str:
  """Writes the artefact of `fmt` and export.json into out_dir; returns the
  artefact's path."""
  if fmt not in WRITERS:
    raise ExportError(f'format must be one of {FORMATS}, got {fmt!r}')
  os.makedirs(out_dir, exist_ok=True)
  path = WRITERS[fmt](serve, input_size, options, out_dir)
  info = manifest(fmt, serve, input_size, options, dict(extra or {}))
  info['artefact'] = os.path.relpath(path, out_dir)
  with open(os.path.join(out_dir, MANIFEST_FILE), 'w') as f:
    json.dump(info, f, indent=1)
    f.write('\n')
  return path
