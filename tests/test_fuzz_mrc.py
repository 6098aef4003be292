"""Hypothesis fuzzing of the MRC / MRCS readers on mutated real files (issue 11).

Real files from ``../shared/data`` (two EMDB maps, RELION's class averages ``.mrcs``, the
EMPIAR-10076 particle stack cut to its first images) get random header fields, random bytes,
truncation or extra bytes; every reader must then either read them (finite maps, data of the shape
the header says) or raise :class:`CryodiagInputError`: nothing else may escape.

Bounded in CI (a fixed seed, ``derandomize=True``; ~15 s). A developer's longer run:
``CRYODIAG_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_mrc.py``.
"""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from napari_cryodiag.errors import CryodiagInputError  # noqa: E402
from napari_cryodiag.io import mrc  # noqa: E402

EXAMPLES = int(os.environ.get("CRYODIAG_FUZZ_EXAMPLES", "60"))
SOURCES = [("emdb/EMD-3197.map", ".map"), ("emdb/EMD-3001.map", ".map"),
           ("relion13-tutorial/Class2D/manual_it025_classes.mrcs", ".mrcs"),
           ("empiar-10076/empiar_10076_7.mrc", ".mrc")]
#: int32 header fields (nx .. nsymbt, mapc/mapr/maps, ispg) and float32 ones (cella, origin)
INT_FIELDS = [0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 64, 68, 72, 88, 92]
FLOAT_FIELDS = [40, 44, 48, 76, 80, 84, 196, 200, 204]
INTS = [0, 1, -1, 2, 3, 4, 6, 12, 101, 5, 255, 1 << 16, (1 << 20) - 1, 1 << 20, 2**31 - 1, -(2**31)]
FLOATS = [0.0, -1.0, 1e-30, 1e30, float("inf"), float("-inf"), float("nan"), 3.0e38]

mutation = st.one_of(
    st.tuples(st.just("int"), st.sampled_from(INT_FIELDS), st.sampled_from(INTS) | st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just("float"), st.sampled_from(FLOAT_FIELDS), st.sampled_from(FLOATS)),
    st.tuples(st.just("byte"), st.integers(0, 1100), st.integers(0, 255)),
)


@pytest.fixture(scope="module")
def seeds(shared_data, tmp_path_factory):
    out = {}
    for rel, suffix in SOURCES:
        raw = (shared_data / rel).read_bytes()
        if rel.startswith("empiar"):  # keep 2 of the 7 images of 320²: small and still a stack
            h = np.frombuffer(raw[:1024], dtype="<i4")
            nx, ny = int(h[0]), int(h[1])
            head = bytearray(raw[:1024])
            head[8:12] = struct.pack("<i", 2)
            raw = bytes(head) + raw[1024 : 1024 + int(h[23]) + 2 * nx * ny * 4]
        out[rel] = (raw, suffix)
    return out, tmp_path_factory.mktemp("fuzz")


def _mutate(raw: bytes, edits, cut, extra: bytes) -> bytes:
    b = bytearray(raw)
    for kind, off, val in edits:
        if kind == "int":
            b[off : off + 4] = struct.pack("<i", val)
        elif kind == "float":
            b[off : off + 4] = struct.pack("<f", val)
        elif off < len(b):
            b[off] = val
    if cut is not None:
        b = b[: min(cut, len(b))]
    return bytes(b) + extra


def _check_read(fn, path):
    try:
        out = fn(path)
    except CryodiagInputError as err:
        assert str(path) in str(err) and len(str(err)) < 1000
        return None
    return out


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(which=st.sampled_from([s for s, _ in SOURCES]), edits=st.lists(mutation, max_size=6),
       cut=st.none() | st.integers(0, 4096), extra=st.sampled_from([b"", b"\x00" * 7, b"MAP " * 300]))
def test_mrc_readers_raise_only_input_errors(seeds, which, edits, cut, extra):
    files, folder = seeds
    raw, suffix = files[which]
    path = folder / f"fuzzed{suffix}"
    path.write_bytes(_mutate(raw, edits, cut, extra))
    hdr = _check_read(mrc.read_header, path)
    if hdr is None:
        for fn in (mrc.read_map, mrc.read_stack, mrc.read_image):
            assert _check_read(fn, path) is None  # a header refused is refused by every reader
        return
    assert hdr.kind in ("image", "stack", "volume")
    m = _check_read(mrc.read_map, path)
    if m is not None:
        assert m.data.ndim == 3 and sorted(m.data.shape) == sorted(hdr.shape)
        assert np.isfinite(m.data).all() and all(np.isfinite(m.origin_A))
        if m.voxel_size_A is not None:
            assert all(0 <= v <= mrc.MAX_VOXEL_A for v in m.voxel_size_A)
    s = _check_read(lambda p: mrc.read_stack(p, mmap=True), path)
    if s is not None:
        assert s.data.shape == hdr.shape
        if hdr.mode not in (101,):
            _check_read(lambda p: mrc.contrast_limits_of_file(hdr), path)
    img = _check_read(mrc.read_image, path)
    if img is not None:
        assert img.data.shape == hdr.shape[1:]
