"""Fractal patterns against independent re-computations."""
import numpy as np
import pytest
import torch

from timm_fractalbrain import FractalPatternGenerator, FractalPatternType, resolve_pattern_type
from timm_fractalbrain.patterns import dragon_turns, dragon_vertices


def _escape_count(z: complex, c: complex, max_iter: int) -> int:
    count = 0
    for _ in range(max_iter):
        if abs(z) > 2:
            break
        z = z * z + c
        count += 1
    return count


@pytest.mark.parametrize('width,height', [(17, 13), (32, 32)])
def test_mandelbrot_is_escape_time_at_sample_points(width, height):
    pattern = FractalPatternGenerator.mandelbrot_connectivity(width, height, max_iter=50)
    assert pattern.shape == (height, width)
    rng = np.random.default_rng(0)
    for row, col in zip(rng.integers(0, height, 40), rng.integers(0, width, 40)):
        c = complex(-2.5 + 4.0 * col / (width - 1), -1.5 + 3.0 * row / (height - 1))
        assert pattern[row, col].item() == pytest.approx(_escape_count(0j, c, 50) / 50, abs=1e-6)


def test_julia_is_escape_time_at_sample_points():
    size = 24
    pattern = FractalPatternGenerator.julia_connectivity(size, size)
    rng = np.random.default_rng(1)
    for row, col in zip(rng.integers(0, size, 40), rng.integers(0, size, 40)):
        z0 = complex(-2 + 4.0 * col / (size - 1), -2 + 4.0 * row / (size - 1))
        assert pattern[row, col].item() == pytest.approx(_escape_count(z0, complex(-0.7, 0.27015), 100) / 100)


def test_mandelbrot_set_interior_and_exterior():
    pattern = FractalPatternGenerator.mandelbrot_connectivity(41, 31)
    # c = 0 (column 25 of linspace(-2.5, 1.5, 41), row 15) never escapes; c = 1.5 + 1.5i escapes at once.
    assert pattern[15, 25].item() == 1.0
    assert pattern[-1, -1].item() == pytest.approx(0.01)


@pytest.mark.parametrize('size', [8, 16, 37])
def test_sierpinski_equals_pascals_triangle_mod_2(size):
    expected = np.zeros((size, size), dtype=np.int64)
    row = [1]
    for i in range(size):
        expected[i, :len(row)] = row[:size]
        row = [1] + [(a + b) % 2 for a, b in zip(row[:-1], row[1:])] + [1]
    got = FractalPatternGenerator.sierpinski_connectivity(size).numpy()
    np.testing.assert_array_equal(got, expected)
    # The seed's program grew a filled triangle; a real Sierpinski triangle has 3**k ones in its first 2**k rows.
    if size >= 16:
        assert got[:16].sum() == 3 ** 4


def _cantor_intervals(depth):
    intervals = [(0.0, 1.0)]
    for _ in range(depth):
        intervals = [piece for a, b in intervals for piece in ((a, a + (b - a) / 3), (b - (b - a) / 3, b))]
    return intervals


@pytest.mark.parametrize('size,depth', [(27, 3), (16, 2), (81, 4)])
def test_cantor_dust_is_product_of_cantor_sets(size, depth):
    centres = (np.arange(size) + 0.5) / size
    inside = np.array([any(a <= c <= b for a, b in _cantor_intervals(depth)) for c in centres])
    got = FractalPatternGenerator.cantor_connectivity(size, depth).numpy()
    np.testing.assert_array_equal(got, np.outer(inside, inside).astype(np.float32))
    if size == 27:
        # at 27 pixels and depth 3 every pixel is one interval of width 1/27: 2**3 kept per axis
        assert got.sum() == 64


def test_cantor_default_depth_fits_the_grid():
    got = FractalPatternGenerator.cantor_connectivity(27)
    np.testing.assert_array_equal(got, FractalPatternGenerator.cantor_connectivity(27, 3))


def _dragon_turns_by_folding(iterations):
    seq = []
    for _ in range(iterations):
        seq = seq + [1] + [-t for t in reversed(seq)]
    return np.array(seq)


@pytest.mark.parametrize('iterations', [1, 2, 5, 10])
def test_dragon_turns_match_paper_folding_construction(iterations):
    np.testing.assert_array_equal(dragon_turns(iterations), _dragon_turns_by_folding(iterations))


def test_dragon_curve_never_retraces_an_edge_and_raster_is_connected():
    verts = dragon_vertices(10)
    edges = {tuple(sorted((tuple(a), tuple(b)))) for a, b in zip(verts[:-1], verts[1:])}
    assert len(edges) == 2 ** 10  # a dragon curve visits each lattice edge at most once
    grid = FractalPatternGenerator.dragon_curve_connectivity(64).numpy()
    # flood fill over 8-neighbours from one lit cell reaches every lit cell
    lit = set(zip(*np.nonzero(grid)))
    stack, seen = [next(iter(lit))], set()
    while stack:
        r, c = stack.pop()
        if (r, c) in seen:
            continue
        seen.add((r, c))
        stack.extend((r + dr, c + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (r + dr, c + dc) in lit)
    assert seen == lit
    assert 0.05 < grid.mean() < 0.6


@pytest.mark.parametrize('pattern', list(FractalPatternType))
def test_every_pattern_is_deterministic_in_unit_range_and_float32(pattern):
    a = FractalPatternGenerator.generate(pattern, 32)
    b = FractalPatternGenerator.generate(pattern.value.upper(), 32)
    assert a.dtype == torch.float32 and a.device.type == 'cpu' and a.shape == (32, 32)
    assert torch.equal(a, b)
    assert 0 <= a.min() and a.max() <= 1 and a.max() > a.min()


def test_generate_returns_a_copy_that_callers_may_modify():
    a = FractalPatternGenerator.generate('julia', 16)
    a.zero_()
    assert FractalPatternGenerator.generate('julia', 16).sum() > 0


def test_patterns_are_computed_on_cpu_under_meta_device():
    with torch.device('meta'):
        a = FractalPatternGenerator.generate('mandelbrot', 16)
    assert a.device.type == 'cpu' and a.sum() > 0


def test_unknown_pattern_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid patterns are 'mandelbrot', 'julia', 'sierpinski', 'cantor'"):
        resolve_pattern_type('koch')
    assert resolve_pattern_type('Dragon_Curve') is FractalPatternType.DRAGON_CURVE
