"""Tests for hybrik_jax.data.render: placement, z-buffer, shading, dtypes."""

import numpy as np
import pytest

from hybrik_jax.data import render

K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])


def _triangle(z=1.0, scale=1.0):
  v = np.array([[-0.1, -0.1, z], [0.1, -0.1, z], [0.0, 0.1, z]]) * [scale, scale, 1]
  return v, np.array([[0, 1, 2]])


def _cube(center, half):
  c = np.array(center, np.float64)
  corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)],
                     np.float64) * half + c
  # Index = 4 * (x > 0) + 2 * (y > 0) + (z > 0).
  quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
  faces = []
  for a, b, cc, d in quads:
    faces += [[a, b, cc], [a, cc, d]]
  return corners, np.array(faces)


def test_triangle_lands_where_projected():
  v, f = _triangle()
  rgb, depth, face_id = render.render_mesh(v, f, K, (80, 100), colors=np.array([1.0, 0, 0]))
  assert rgb.dtype == np.uint8 and rgb.shape == (80, 100, 3)
  assert depth.dtype == np.float32 and depth.shape == (80, 100)
  assert face_id.dtype == np.int32 and face_id.shape == (80, 100)
  ys, xs = np.nonzero(face_id >= 0)
  # Vertices project to (40, 30), (60, 30), (50, 50).
  assert (xs.min(), xs.max(), ys.min(), ys.max()) == (40, 60, 30, 50)
  # Every covered pixel centre is inside the triangle (edge test), and none outside.
  inside = (ys >= 30) & (2 * np.abs(xs - 50) <= (50 - ys) + 1e-9)
  assert inside.all()
  yy, xx = np.mgrid[0:80, 0:100]
  expect = (yy >= 30) & (2 * np.abs(xx - 50) <= (50 - yy))
  np.testing.assert_array_equal(face_id >= 0, expect)
  np.testing.assert_allclose(depth[face_id >= 0], 1.0, rtol=1e-6)
  assert np.isinf(depth[0, 0]) and face_id[0, 0] == -1
  # Red only, Lambert + ambient of a camera-facing normal.
  l = np.array(render.DEFAULT_LIGHT_DIR) / np.linalg.norm(render.DEFAULT_LIGHT_DIR)
  want = 255 * (0.35 + 0.65 * max(0.0, -l[2]))
  assert abs(int(rgb[45, 50, 0]) - want) <= 1
  assert rgb[45, 50, 1] == 0 and rgb[45, 50, 2] == 0
  np.testing.assert_array_equal(rgb[0, 0], 0)


def test_zbuffer_picks_nearer_surface_regardless_of_order():
  near_v, _ = _triangle(z=1.0)
  far_v, _ = _triangle(z=2.0, scale=2.0)  # same footprint on screen
  v = np.concatenate([far_v, near_v])
  for faces, near_id in ((np.array([[0, 1, 2], [3, 4, 5]]), 1),
                         (np.array([[3, 4, 5], [0, 1, 2]]), 0)):
    cols = np.array([[0.0, 0, 1], [1.0, 0, 0]]) if near_id == 1 else np.array([[1.0, 0, 0], [0.0, 0, 1]])
    rgb, depth, face_id = render.render_mesh(v, faces, K, (80, 100), colors=cols)
    assert face_id[40, 50] == near_id
    np.testing.assert_allclose(depth[40, 50], 1.0, rtol=1e-6)
    assert rgb[40, 50, 0] > 0 and rgb[40, 50, 2] == 0


def test_perspective_depth_on_slanted_triangle():
  # A plane z = 1 + 0.5 x: depth at each pixel must be the ray-plane intersection.
  v = np.array([[-0.2, -0.2, 0.9], [0.2, -0.2, 1.1], [0.0, 0.2, 1.0]])
  _, depth, face_id = render.render_mesh(v, np.array([[0, 1, 2]]), K, (80, 100))
  ys, xs = np.nonzero(face_id >= 0)
  rx, ry = (xs - 50) / 100.0, (ys - 40) / 100.0
  z = 1.0 / (1.0 - 0.5 * rx)  # z = 1 + 0.5 * rx * z
  np.testing.assert_allclose(depth[ys, xs], z, rtol=1e-5)
  del ry


def test_cube_front_face_and_background():
  v, f = _cube((0.0, 0.0, 2.0), 0.2)
  bg = np.full((80, 100, 3), 7, np.uint8)
  rgb, depth, face_id = render.render_mesh(v, f, K, (80, 100), background=bg, smooth=False)
  # Front face z = 1.8 spans +-0.2 / 1.8 * 100 = 11.1 px around (50, 40).
  mask = face_id >= 0
  ys, xs = np.nonzero(mask)
  assert (xs.min(), xs.max()) == (39, 61) and (ys.min(), ys.max()) == (29, 51)
  np.testing.assert_allclose(depth[mask], 1.8, rtol=1e-5)
  front = np.nonzero(v[f][:, :, 2].max(1) < 1.81)[0]
  assert set(np.unique(face_id[mask])) <= set(front.tolist())
  np.testing.assert_array_equal(rgb[~mask], 7)


def test_culls_behind_camera_and_offscreen():
  v, f = _triangle(z=-1.0)
  _, depth, face_id = render.render_mesh(v, f, K, (80, 100))
  assert (face_id == -1).all() and np.isinf(depth).all()
  v, f = _triangle(z=1.0)
  _, _, face_id = render.render_mesh(v + [10.0, 0, 0], f, K, (80, 100))
  assert (face_id == -1).all()


def test_per_face_colors_and_errors():
  v, f = _cube((0.0, 0.0, 2.0), 0.2)
  cols = np.zeros((12, 3), np.uint8)
  cols[:, 1] = 255
  rgb, _, face_id = render.render_mesh(v, f, K, (80, 100), colors=cols)
  m = face_id >= 0
  assert (rgb[m, 1] > 0).all() and (rgb[m, 0] == 0).all()
  with pytest.raises(ValueError, match='colors'):
    render.render_mesh(v, f, K, (80, 100), colors=np.zeros((5, 3)))
  with pytest.raises(ValueError, match='background'):
    render.render_mesh(v, f, K, (80, 100), background=np.zeros((80, 100, 3)))
  with pytest.raises(ValueError, match='background'):
    render.render_mesh(v, f, K, (80, 100), background=np.zeros((8, 10, 3), np.uint8))
  with pytest.raises(ValueError, match='vertices'):
    render.render_mesh(v[:, :2], f, K, (80, 100))


def test_large_triangle_is_chunked(monkeypatch):
  monkeypatch.setattr(render, '_MAX_FRAGMENTS', 50)
  v, f = _cube((0.0, 0.0, 2.0), 0.2)
  _, d_small, id_small = render.render_mesh(v, f, K, (80, 100))
  monkeypatch.setattr(render, '_MAX_FRAGMENTS', 1 << 22)
  _, d_big, id_big = render.render_mesh(v, f, K, (80, 100))
  np.testing.assert_array_equal(id_small >= 0, id_big >= 0)
  np.testing.assert_allclose(d_small, d_big)


def test_part_colors_distinct_per_part():
  w = np.zeros((48, 24))
  w[np.arange(48), np.arange(48) % 24] = 1.0
  cols = render.part_colors(w)
  assert cols.shape == (48, 3) and cols.dtype == np.float32
  np.testing.assert_array_equal(render.part_ids(w), np.arange(48) % 24)
  pal = render.part_palette(24)
  dists = np.linalg.norm(pal[:, None] - pal[None], axis=-1) + np.eye(24)
  assert dists.min() > 0.05
  np.testing.assert_array_equal(cols[:24], cols[24:])


def test_side_view_frames_the_mesh():
  v, f = _cube((0.3, -0.2, 4.0), 0.2)
  v = v * [1.0, 3.0, 1.0]  # a tall box
  turned, k = render.side_view(v, (60, 80), angle_deg=90.0, fill=0.8)
  assert turned[:, 2].min() > 0
  # A 90-degree turn about y swaps the x and z extents.
  np.testing.assert_allclose(np.ptp(turned, 0), np.ptp(v, 0)[[2, 1, 0]], atol=1e-9)
  _, _, face_id = render.render_mesh(turned, f, k, (60, 80))
  ys, xs = np.nonzero(face_id >= 0)
  assert 0 < ys.min() and ys.max() < 59 and 0 < xs.min() and xs.max() < 79
  assert abs(0.5 * (ys.min() + ys.max()) - 29.5) <= 1.0
  assert abs(0.5 * (xs.min() + xs.max()) - 39.5) <= 1.0
  assert (ys.max() - ys.min()) >= 0.6 * 60  # about `fill` of the height
