"""Hypothesis fuzzing of the table readers on mutated real files: whatever the bytes, a reader
returns a table or raises ``CryodiagInputError`` (one line, naming the file); nothing else
escapes.

Bounded for CI (a fixed seed, a few dozen files per reader, ~30 s in all). The long profile for
a developer: ``CRYODIAG_FUZZ=long`` (2,000 files per reader, new random files each run), or
``CRYODIAG_FUZZ_EXAMPLES=N``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from napari_cryodiag.errors import CryodiagInputError  # noqa: E402
from napari_cryodiag.io import cbox  # noqa: E402
from napari_cryodiag.io.opened import open_path  # noqa: E402
from napari_cryodiag.io.picks import read_table  # noqa: E402
from napari_cryodiag.io.relion_model import read_model_star  # noqa: E402
from napari_cryodiag.io.star import read_postprocess  # noqa: E402

SHARED = Path(os.environ.get("CRYODIAG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LONG = os.environ.get("CRYODIAG_FUZZ", "") == "long"
EXAMPLES = int(os.environ.get("CRYODIAG_FUZZ_EXAMPLES", 2000 if LONG else 40))
PROFILE = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                          HealthCheck.data_too_large])

#: tokens that the readers treat specially, spliced into files
TOKENS = [b"nan", b"NaN", b"-", b'""', b"'", b'"', b"#", b"\n", b"\n\n", b" \n", b"\r\n", b"data_", b"data_x\n",
          b"loop_\n", b"_rlnCoordinateX\n", b"_rlnMicrographName #9\n", b"1,5", b"\xef\xbb\xbf", b"\xff\xfe",
          b"inf", b"-inf", b"1e400", b"-1", b"0", b"<NA>", b"@", b"000001@", b"99999999999999999999999", b"\x00",
          b"'a b'", b'"a b"', b"\t", b"(", b"}", b"'<f4'", b"(3,)", b"(10000000000,)", b"'|O'", b"True"]

_pos = st.integers(min_value=0, max_value=2**31)
MUTATION = st.one_of(
    st.tuples(st.just("flip"), _pos, st.integers(0, 255)),
    st.tuples(st.just("delete"), _pos, st.integers(1, 80)),
    st.tuples(st.just("insert"), _pos, st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("token"), _pos, st.sampled_from(TOKENS)),
    st.tuples(st.just("duplicate"), _pos, st.integers(1, 400)),
    st.tuples(st.just("truncate"), _pos, st.just(0)),
)


def mutate(data: bytes, mutations, head: int | None = None) -> bytes:
    """Apply the mutations; ``head`` aims every other one at the first ``head`` bytes (a header)."""
    b = bytearray(data)
    for k, (op, pos, arg) in enumerate(mutations):
        n = len(b)
        if n == 0:
            b += b"data_\n"
            continue
        span = min(n, head) if head and k % 2 == 0 else n
        i = pos % span
        if op == "flip":
            b[i] = arg
        elif op == "delete":
            del b[i:i + arg]
        elif op == "insert":
            b[i:i] = arg
        elif op == "token":
            b[i:i] = arg
        elif op == "duplicate":
            b[i:i] = b[i:i + arg]
        elif op == "truncate":
            del b[max(1, i):]
    return bytes(b)


def _source(rel: str) -> bytes:
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"{p} is not there (../shared/data)")
    return p.read_bytes()


READERS = [
    ("relion31/relion31.6opticsgroups.star", ".star", read_table, None),
    ("relion31/relion5.star", ".star", read_table, None),
    ("relion13-tutorial/autopick/Falcon_2012_06_12-14_33_35_0_autopick.star", ".star", read_table, None),
    ("relion13-tutorial/all_micrographs_ctf.star", ".star", read_table, None),
    ("empiar-10076/empiar_10076_7.star", ".star", read_table, None),
    ("relion-postprocess/postprocess.star", ".star", read_postprocess, None),
    ("relion13-tutorial/Class2D/manual_it025_model.star", ".star", read_model_star, None),
    ("cryolo/TcdA1-0018_frames_sum.cbox", ".cbox", cbox.read_cbox, None),
    ("cryosparc/cryosparc_J2_particles_exported.cs", ".cs", read_table, 1200),
    ("empiar-10076/empiar_10076_7.cs", ".cs", read_table, 1200),
    ("cryosparc/4k_dataset.cs", ".cs", read_table, 3000),
    ("relion-postprocess/postprocess.star", ".star", open_path, None),  # the sniff, then the one parse
    ("relion13-tutorial/Class2D/manual_it025_data.star", ".star", open_path, None),
    ("cryosparc/cryosparc_P12_J24_001_particles.cs", ".cs", open_path, 1200),
]


@pytest.mark.parametrize("rel, suffix, read, head", READERS,
                         ids=[f"{r[2].__name__}:{r[0].split('/')[-1]}" for r in READERS])
def test_mutated_real_files_give_a_table_or_a_clean_error(rel, suffix, read, head, tmp_path_factory):
    data = _source(rel)
    folder = tmp_path_factory.mktemp("fuzz")
    target = folder / f"mutated{suffix}"

    @PROFILE
    @given(st.lists(MUTATION, min_size=1, max_size=6))
    def run(mutations):
        target.write_bytes(mutate(data, mutations, head))
        try:
            read(target)
        except CryodiagInputError as err:
            msg = str(err)
            assert target.name in msg, msg
            assert "\n" not in msg and len(msg) < 1000, msg[:300]

    run()
