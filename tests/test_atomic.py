import pytest

from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io.atomic import atomic_write, atomic_write_text


def test_atomic_write_creates_and_refuses_overwrite(tmp_path):
    dest = tmp_path / "out.txt"
    atomic_write_text(dest, "one")
    assert dest.read_text() == "one"
    with pytest.raises(CryodiagInputError, match="exists"):
        atomic_write_text(dest, "two")
    assert dest.read_text() == "one"
    atomic_write_text(dest, "two", overwrite=True)
    assert dest.read_text() == "two"


def test_atomic_write_never_replaces_an_input(tmp_path):
    src = tmp_path / "picks.star"
    src.write_text("input")
    with pytest.raises(CryodiagInputError, match="input file") as err:
        atomic_write_text(src, "new", overwrite=True, protect=[src])
    assert str(src) in str(err.value)
    assert src.read_text() == "input"


def test_failed_writer_leaves_nothing_behind(tmp_path):
    dest = tmp_path / "x.star"
    dest.write_text("old")

    def broken(p):
        p.write_text("partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(dest, broken, overwrite=True)
    assert dest.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.star"]
