"""Bad-input corpus of the table readers (STAR, postprocess.star, model.star, .cs, .cbox): each
malformed file gives a ``CryodiagInputError`` naming the file (and the row or field), in one
line, or a right reading (a note when something was left out), and is never changed.

The files are built from the real files in ``../shared/data`` and from scratch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from badinput import check_reader_case
from napari_cryodiag.errors import CryodiagInputError
from napari_cryodiag.io import cbox
from napari_cryodiag.io.picks import read_table
from napari_cryodiag.io.relion_model import read_model_star
from napari_cryodiag.io.star import read_postprocess, read_star_table

SHARED = Path(os.environ.get("CRYODIAG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@dataclass
class Case:
    name: str
    make: Callable[[Path, Path], Path]  #: (folder to write in, shared data) -> the bad file
    read: Callable = read_table
    expect: str = "error"  #: "error", "ok" or "note" (ok, with a note matching ``match``)
    match: str = ""  #: regex the message / note must match
    check: Callable | None = None  #: called with what was read (``ok``/``note``)


def _text(name, text):
    def make(tmp, shared):
        p = tmp / name
        p.write_bytes(text.encode() if isinstance(text, str) else text)
        return p
    return make


def _from(rel, name, edit):
    """A copy of a shared file, edited (``edit(bytes) -> bytes``)."""
    def make(tmp, shared):
        src = shared / rel
        if not src.exists():
            pytest.skip(f"{src} is not there (../shared/data)")
        p = tmp / name
        p.write_bytes(edit(src.read_bytes()))
        return p
    return make


def _shared(shared, rel):
    p = shared / rel
    if not p.exists():
        pytest.skip(f"{p} is not there (../shared/data)")
    return p


def _lines(edit):
    def f(b):
        lines = b.decode().split("\n")
        return "\n".join(edit(lines)).encode()
    return f


R31 = "relion31/relion31.6opticsgroups.star"
AUTOPICK = "relion13-tutorial/autopick/Falcon_2012_06_12-14_33_35_0_autopick.star"
PP = "relion-postprocess/postprocess.star"
MODEL = "relion13-tutorial/Class2D/manual_it025_model.star"
CBOX = "cryolo/TcdA1-0018_frames_sum.cbox"
CS_REF = "cryosparc/cryosparc_P12_J24_001_particles.cs"
HEAD = "data_\n\nloop_\n_rlnMicrographName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n_rlnAutopickFigureOfMerit #4\n"


def _first_data_line(lines, start=0):
    for i in range(start, len(lines)):
        s = lines[i].strip()
        if s and not s.startswith(("_", "#", "data_", "loop_")):
            return i
    raise AssertionError("no data line")


def _particles_start(lines):
    return _first_data_line(lines, next(i for i, ln in enumerate(lines) if ln.startswith("data_particles")))


def _drop_label(lines):
    i = next(i for i, ln in enumerate(lines) if ln.startswith("_rlnCoordinateY"))
    return lines[:i] + lines[i + 1:]


def _set_token(k, value):
    """Edit: token ``k`` of the first row of data_particles becomes ``value``."""
    def edit(lines):
        i = _particles_start(lines)
        toks = lines[i].split()
        toks[k] = value
        return lines[:i] + [" ".join(toks)] + lines[i + 1:]
    return edit


def _insert_blank(lines, at=10):
    i = _first_data_line(lines) + at
    return lines[:i] + [""] + lines[i:]


def _n_rows(path):
    return sum(1 for ln in Path(path).read_text().splitlines()
               if ln.strip() and not ln.strip().startswith(("_", "#", "data_", "loop_")))


def _nrows_is(n):
    return lambda t: len(t) == n


def _row(mic, x, y, fom):
    return f"{mic} {x} {y} {fom}\n"


def _many_blocks(n, named=True, with_name=False):
    out = []
    for i in range(n):
        out.append(f"data_{'mic%05d' % i if named else ''}\n\nloop_\n"
                   + ("_rlnMicrographName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n" if with_name else
                      "_rlnCoordinateX #1\n_rlnCoordinateY #2\n")
                   + "".join((f"m{i}.mrc " if with_name else "") + f"{10 + k} {20 + k}\n" for k in range(3)) + "\n")
    return "".join(out)


# ----------------------------------------------------------------------------- .cs helpers


def _npy(arr, header_edit=None, version=(1, 0), data_edit=None):
    """A .cs file of ``arr``, its header text edited (``header_edit(str) -> str``)."""
    from numpy.lib import format as npf

    d = {"descr": npf.dtype_to_descr(arr.dtype), "fortran_order": False, "shape": arr.shape}
    h = repr(d)
    if header_edit:
        h = header_edit(h)
    h = h + " " * ((64 - (len(h) + 11) % 64) % 64) + "\n"
    if version == (1, 0):
        head = npf.MAGIC_PREFIX + bytes([1, 0]) + len(h).to_bytes(2, "little") + h.encode("latin1")
    else:
        head = npf.MAGIC_PREFIX + bytes(version) + len(h).to_bytes(4, "little") + h.encode("latin1")
    data = arr.tobytes()
    if data_edit:
        data = data_edit(data)
    return head + data


def _picks(n=20, **over):
    dt = [("uid", "<u8"), ("location/micrograph_uid", "<u8"), ("location/micrograph_path", "S40"),
          ("location/micrograph_shape", "<u4", (2,)), ("location/center_x_frac", "<f4"),
          ("location/center_y_frac", "<f4"), ("location/micrograph_psize_A", "<f4"),
          ("pick_stats/ncc_score", "<f4"), ("pick_stats/power", "<f4")]
    dt = [over.get(d[0], d) for d in dt]
    a = np.zeros(n, dtype=dt)
    a["uid"] = np.arange(n) + 1
    a["location/micrograph_uid"] = 7 + np.arange(n) // 10
    if a.dtype["location/micrograph_path"].kind == "S":
        a["location/micrograph_path"] = [f"J1/motioncorrected/mic{i // 10}.mrc".encode() for i in range(n)]
    if a.dtype["location/micrograph_shape"].shape == (2,):
        a["location/micrograph_shape"] = (100, 200)
    if a.dtype["location/center_x_frac"].kind == "f":
        a["location/center_x_frac"] = np.linspace(0.1, 0.9, n)
        a["location/center_y_frac"] = np.linspace(0.2, 0.8, n)
    a["location/micrograph_psize_A"] = 1.5
    a["pick_stats/ncc_score"] = np.linspace(0, 1, n)
    return a


def _cs(name, arr=None, **kw):
    def make(tmp, shared):
        p = tmp / name
        p.write_bytes(_npy(_picks() if arr is None else arr() if callable(arr) else arr, **kw))
        return p
    return make


def _cs_rows(edit):
    def arr():
        a = _picks()
        edit(a)
        return a
    return arr


# ----------------------------------------------------------------------------- the corpus

CASES = [
    # --- STAR: quoting (starfile's cases, written anew)
    Case("double quotes with blanks", _text("q1.star", HEAD + '"my mic.mrc" 10 20 0.5\nb.mrc 11 21 0.6\n'), expect="ok",
         check=lambda t: list(t["micrograph_name"].astype(str)) == ["my mic.mrc", "b.mrc"]),
    Case("single quotes with blanks", _text("q2.star", HEAD + "'my mic.mrc' 10 20 0.5\n'b c.mrc' 11 21 0.6\n"),
         expect="ok", check=lambda t: list(t["micrograph_name"].astype(str)) == ["my mic.mrc", "b c.mrc"]
         and t["x_px"].tolist() == [10, 11]),
    Case("empty strings", _text("q3.star", "data_\nloop_\n_rlnMicrographName\n_rlnCoordinateX\n_rlnCoordinateY\n"
                                "_rlnCtfImage\n\"\" 1 2 \"\"\na.mrc 3 4 x.ctf\n"), expect="ok",
         check=lambda t: t["rlnCtfImage"].astype(str).tolist() == ["", "x.ctf"] and len(t) == 2),
    Case("apostrophe inside a name", _text("q4.star", HEAD + "it's.mrc 10 20 0.5\n"), expect="ok",
         check=lambda t: t["micrograph_name"].astype(str).tolist() == ["it's.mrc"]),
    Case("quote inside a name", _text("q5.star", HEAD + 'a"b.mrc 10 20 0.5\n'), expect="ok",
         check=lambda t: t["micrograph_name"].astype(str).tolist() == ['a"b.mrc']),
    Case("unclosed quote", _text("q6.star", HEAD + '"my mic.mrc 10 20 0.5\n'), match="quote|values"),
    Case("empty string in a number column", _text("q7.star", HEAD + 'a.mrc "" 20 0.5\nb.mrc 1 2 0.4\n'),
         match="not a number"),
    Case("quoted pair value", _text("q8.star", 'data_general\n_rlnMaskName "my mask.mrc"\n_rlnFinalResolution 3.5\n'
                                    "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n1 2\n"), expect="ok",
         read=lambda p: __import__("napari_cryodiag.io.star", fromlist=["x"]).read_star(p),
         check=lambda b: b["general"]["rlnMaskName"] == "my mask.mrc" and b["general"]["rlnFinalResolution"] == 3.5),
    # --- STAR: rows that do not fit the labels
    Case("a label line missing (real file)", _from(R31, "nolabel.star", _lines(_drop_label)), match="labels"),
    Case("one row with an extra value", _text("extra.star", HEAD + _row("a.mrc", 1, 2, 3) + "b.mrc 1 2 3 4\n"),
         match=r"line 9\b.*5 values.*4 labels"),
    Case("one row short", _text("short.star", HEAD + _row("a.mrc", 1, 2, 3) + "b.mrc 1 2\n" + _row("c.mrc", 1, 2, 3)),
         match=r"line 9\b.*3 values"),
    Case("first row short", _text("short1.star", HEAD + "b.mrc 1 2\n" + _row("a.mrc", 1, 2, 3)), match="values"),
    Case("last row short, numeric last column", _text("short2.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n"
                                                      "_rlnAutopickFigureOfMerit\n1 2 3\n4 5\n"), match=r"line 7"),
    Case("truncated mid-row (real file)", _from(R31, "cut.star", lambda b: b[: len(b) // 2 + 7]), match="values"),
    Case("truncated mid-row (autopick)", _from(AUTOPICK, "cut_ap.star", lambda b: b[: len(b) - 20]), match="values"),
    Case("short row with a real empty string", _text("short3.star", "data_\nloop_\n_rlnMicrographName\n"
                                                     "_rlnCoordinateX\n_rlnCoordinateY\n_rlnCtfImage\n\"\" 1 2 \"\"\n"
                                                     "a.mrc 3 4\n"), match=r"line 8"),
    # --- STAR: blank lines, BOM, line ends
    Case("blank line inside the loop (real autopick)", _from(AUTOPICK, "blank.star", _lines(_insert_blank)),
         expect="note", match="blank line", check=_nrows_is(607)),
    Case("blank lines inside the loop (real RELION 3.1)",
         _from(R31, "blank31.star", _lines(lambda ls: ls[:_particles_start(ls) + 5] + ["", "  ", ""]
                                           + ls[_particles_start(ls) + 5:])),
         expect="note", match="blank line", check=_nrows_is(139)),
    Case("BOM before data_optics", _from(R31, "bom.star", lambda b: b"\xef\xbb\xbf" + b), expect="ok",
         check=lambda t: len(t.attrs["optics"]) == 6 and len(t) == 139),
    Case("BOM and CRLF", _from(R31, "bomcrlf.star", lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n")),
         expect="ok", check=lambda t: len(t.attrs["optics"]) == 6 and len(t) == 139 and t["micrograph"].iloc[0] == "0003"),
    Case("CRLF autopick", _from(AUTOPICK, "crlf.star", lambda b: b.replace(b"\n", b"\r\n")), expect="ok",
         check=_nrows_is(607)),
    Case("tabs between values", _text("tabs.star", HEAD + "a.mrc\t1\t2\t0.5\nb.mrc\t\t3 4 0.6\n"), expect="ok",
         check=lambda t: t["x_px"].tolist() == [1, 3]),
    Case("comment line inside the loop", _text("comment.star", HEAD + _row("a.mrc", 1, 2, 3) + "# a note\n"
                                               + _row("b.mrc", 4, 5, 6)), expect="ok", check=_nrows_is(2)),
    Case("comment lines between blocks", _from(R31, "comments.star", lambda b: b.replace(b"data_particles",
                                                                                          b"# here\n# there\ndata_particles")),
         expect="ok", check=_nrows_is(139)),
    Case("not UTF-8 text in a name", _text("latin1.star", HEAD.encode() + "caf\xe9.mrc 1 2 3\n".encode("latin1")),
         match="UTF-8"),
    # --- STAR: blocks
    Case("two blocks of the same name", _from(R31, "dup.star", lambda b: b + b[b.index(b"data_particles"):]),
         match="two blocks named data_particles"),
    Case("two optics blocks", _from(R31, "dup_opt.star", lambda b: b[: b.index(b"data_particles")] + b),
         match="two .*optics"),
    Case("10,000 pick blocks", _text("many.star", _many_blocks(10_000)), expect="ok",
         check=lambda t: len(t) == 30_000 and t["micrograph"].nunique() == 10_000),
    Case("pick blocks with names inside", _text("many_named.star", _many_blocks(50, named=False, with_name=True)),
         expect="ok", check=lambda t: len(t) == 150 and t["micrograph"].nunique() == 50),
    Case("concatenated autopick files (no names)", _text("cat.star", _many_blocks(3, named=False)), match="which micrograph"),
    Case("second loop_ in a block", _text("loop2.star", HEAD + _row("a", 1, 2, 3) + "loop_\n_rlnFoo\n1\n"),
         match="loop_"),
    Case("label after the rows", _text("late.star", HEAD + _row("a", 1, 2, 3) + "_rlnFoo #5\n"), match="label|values"),
    Case("loop without labels", _text("nolabels.star", "data_\nloop_\n1 2 3\n"), match="labels"),
    Case("label listed twice", _text("twice.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateX\n1 2\n"),
         match="twice"),
    Case("pair with two values", _text("pair2.star", "data_general\n_rlnMaskName a b\n"), match="values",
         read=lambda p: __import__("napari_cryodiag.io.star", fromlist=["x"]).read_star(p)),
    Case("pair given twice", _text("pairtwice.star", "data_general\n_rlnA 1\n_rlnA 2\n"), match="twice",
         read=lambda p: __import__("napari_cryodiag.io.star", fromlist=["x"]).read_star(p)),
    Case("only optics", _from(R31, "onlyopt.star", lambda b: b[: b.index(b"data_particles")]), match="no table"),
    Case("empty file", _text("empty.star", ""), match="no 'data_' block"),
    Case("only comments", _text("comments_only.star", "# nothing\n# here\n"), match="no 'data_' block"),
    Case("binary junk", _text("junk.star", bytes(range(256)) * 20), match="data_|UTF-8|STAR"),
    Case("a text file", _text("notes.star", "these are my notes\nabout data_collection\n"), match="data_"),
    Case("an empty block", _text("emptyblock.star", "data_\n\n"), match="no table"),
    Case("an unexpected line in a block", _text("odd.star", "data_x\nhello world\n"), match="unexpected line"),
    Case("a 200 KB label", _text("huge.star", "data_\nloop_\n_rln" + "X" * 200_000 + "\n1\n"), expect="ok",
         check=lambda t: len(t) == 1),
    Case("a 200 KB line of values", _text("huge2.star", HEAD + "a " * 100_000 + "\n"), match="values"),
    Case("an empty loop", _text("emptyloop.star", HEAD), expect="ok", check=_nrows_is(0)),
    Case("a row that starts with data_", _text("dataname.star", HEAD + _row("data_001.mrc", 1, 2, 3)), expect="ok",
         check=lambda t: t["micrograph_name"].astype(str).tolist() == ["data_001.mrc"]),
    # --- STAR: values
    Case("nan as a micrograph name", _text("nanname.star", HEAD + _row("nan", 1, 2, 3) + _row("NaN", 4, 5, 6)),
         expect="ok", check=lambda t: t["micrograph_name"].astype(str).tolist() == ["nan", "NaN"]),
    Case("micrograph names that look like numbers", _text("numnames.star", HEAD + _row("0003", 1, 2, 3)), expect="ok",
         check=lambda t: t["micrograph_name"].astype(str).tolist() == ["0003"] and t["micrograph"].iloc[0] == "0003"),
    Case("nan as an optics group", _from(R31, "nangroup.star", _lines(_set_token(10, "nan"))), match="rlnOpticsGroup.*row 1"),
    Case("optics group missing from data_optics", _from(R31, "group9.star", _lines(_set_token(10, "9"))), match=r"optics groups \[9\]"),
    Case("optics group 1.5", _from(R31, "group15.star", _lines(_set_token(10, "1.5"))), match="rlnOpticsGroup"),
    Case("@-names mixed with plain names", _text("at.star", "data_\nloop_\n_rlnImageName\n_rlnCoordinateX\n"
                                                 "_rlnCoordinateY\n000002@a.mrcs 1 2\nsingle.mrc 3 4\n"
                                                 "\"000010@Particles/b c.mrcs\" 5 6\n"), expect="ok",
         check=lambda t: t["image_index"].tolist() == [1, 0, 9]
         and t["image_path"].astype(str).tolist() == ["a.mrcs", "single.mrc", "Particles/b c.mrcs"]),
    Case("@-name with a word for its index", _text("atword.star", "data_\nloop_\n_rlnImageName\n_rlnCoordinateX\n"
                                                   "_rlnCoordinateY\nabc@a.mrcs 1 2\n"), match="image number"),
    Case("- in a coordinate", _text("dash.star", HEAD + _row("a", 1, 2, 3) + _row("b", "-", 2, 3)),
         match=r"'-' in _rlnCoordinateX in row 2"),
    Case("- in the figure of merit", _text("dashfom.star", HEAD + _row("a", 1, 2, "-") + _row("b", 1, 2, 3)),
         match="rlnAutopickFigureOfMerit in row 1"),
    Case("- in a defocus (real file)", _from(R31, "dashdf.star", _lines(
        lambda ls: ls[:_particles_start(ls) + 2] + [" ".join(ls[_particles_start(ls) + 2].split()[:3] + ["-"]
                                                              + ls[_particles_start(ls) + 2].split()[4:])]
        + ls[_particles_start(ls) + 3:])), match=r"_rlnDefocusU in row 3"),
    Case("comma decimals in the figure of merit", _text("comma.star", HEAD + _row("a", 1, 2, "0,5") + _row("b", 1, 2, "1,25")),
         match="comma"),
    Case("comma decimals in coordinates", _text("comma2.star", HEAD + _row("a", "1,5", 2, 3)), match="comma"),
    Case("all-NA score column", _text("na.star", HEAD + _row("a", 1, 2, "<NA>") + _row("b", 3, 4, "<NA>")),
         expect="note", match="no values", check=lambda t: t["rlnAutopickFigureOfMerit"].isna().all()),
    Case("NaN coordinates", _text("nanxy.star", HEAD + _row("a", 1, 2, 3) + _row("b", "nan", 2, 3) + _row("c", 4, "inf", 1)),
         expect="note", match="2 of 3 picks have no finite coordinates", check=_nrows_is(1)),
    Case("negative coordinates", _text("negxy.star", HEAD + _row("a", -5, 2, 3) + _row("b", 1, 2, 3)),
         expect="note", match="1 of 2 picks have negative coordinates", check=lambda t: t["x_px"].tolist() == [1]),
    Case("all coordinates NaN", _text("allnan.star", HEAD + _row("a", "nan", 2, 3) + _row("b", "nan", 2, 3)),
         match="no pick"),
    Case("class -3", _text("class.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnClassNumber\n1 2 -3\n"),
         match="class"),
    Case("class 2.5", _text("class25.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n_rlnClassNumber\n1 2 2.5\n"),
         match="class"),
    Case("posterior 7.5", _text("post.star", "data_\nloop_\n_rlnCoordinateX\n_rlnCoordinateY\n"
                                "_rlnMaxValueProbDistribution\n1 2 7.5\n"), match="probability"),
    Case("no coordinates when they are needed", _from(R31, "noxy.star", _lines(
        lambda ls: [ln for ln in ls if not ln.startswith("_rlnCoordinate")])),
         read=lambda p: read_star_table(p, require_coordinates=True), match="labels|rlnCoordinate"),
    Case("coordinate index pointing nowhere", _text("index.star", "data_coordinate_files\nloop_\n_rlnMicrographName\n"
                                                    "_rlnMicrographCoordinates\nm.mrc AutoPick/job1/m_autopick.star\n"),
         match="none was found"),
    # --- postprocess.star
    Case("postprocess truncated mid-row", _from(PP, "pp_cut.star", lambda b: b[: b.index(b"data_guinier") - 300]),
         read=read_postprocess, match="values"),
    Case("postprocess truncated at a row end", _from(PP, "pp_cut2.star", lambda b: b[: b.index(b"data_guinier")]),
         read=read_postprocess, match="guinier|truncated"),
    Case("postprocess without data_fsc", _from(PP, "pp_nofsc.star", lambda b: b[: b.index(b"data_fsc")]),
         read=read_postprocess, match="data_fsc"),
    Case("postprocess NaN FSC", _from(PP, "pp_nan.star", _lines(
        lambda ls: ls[:_first_data_line(ls, next(i for i, ln in enumerate(ls) if ln.startswith("data_fsc"))) + 5]
        + [" ".join(ls[_first_data_line(ls, next(i for i, ln in enumerate(ls) if ln.startswith("data_fsc"))) + 5]
                    .split()[:3] + ["nan"] + ls[_first_data_line(ls, next(i for i, ln in enumerate(ls)
                                                                        if ln.startswith("data_fsc"))) + 5].split()[4:])]
        + ls[_first_data_line(ls, next(i for i, ln in enumerate(ls) if ln.startswith("data_fsc"))) + 6:])),
         read=read_postprocess, match="shell 5"),
    Case("postprocess shells out of order", _from(PP, "pp_order.star", _lines(
        lambda ls: (lambda i: ls[:i] + [ls[i + 1], ls[i]] + ls[i + 2:])(
            _first_data_line(ls, next(i for i, ln in enumerate(ls) if ln.startswith("data_fsc"))) + 3))),
         read=read_postprocess, match="shell"),
    Case("postprocess with one shell", _text("pp_one.star", "data_general\n_rlnFinalResolution 3\n\ndata_fsc\nloop_\n"
                                             "_rlnSpectralIndex\n_rlnResolution\n_rlnFourierShellCorrelationCorrected\n"
                                             "0 0.0 1.0\n"), read=read_postprocess, match="shells"),
    Case("postprocess - in an FSC", _from(PP, "pp_dash.star", lambda b: b.replace(b"0.999943", b"-", 1)),
         read=read_postprocess, match="not a number|FSC"),
    # --- model.star
    Case("model.star - in a spectrum", _from(MODEL, "m_dash.star", lambda b: re.sub(
        rb"(data_model_group_1\s+loop_(?:\s+_\S+ #\d+)+\s+\S+\s+\S+\s+)(\S+)", rb"\1-", b, count=1)),
         read=read_model_star, match="not a number"),
    Case("model.star truncated", _from(MODEL, "m_cut.star", lambda b: b[: len(b) // 3 + 11]), read=read_model_star,
         match="values|model"),
    Case("model.star without model_classes", _from(MODEL, "m_nocls.star",
                                                   lambda b: b.replace(b"data_model_classes", b"data_model_other")),
         read=read_model_star, match="model_classes"),
    Case("model.star all-NaN noise", _from(MODEL, "m_nan.star", lambda b: re.sub(
        rb"(data_model_group_1\s+loop_(?:\s+_\S+ #\d+)+[ \t]*\n)((?:[ \t]*\S+[ \t]+\S+[ \t]+\S+[ \t]*\n)+)",
        lambda m: m.group(1) + b"".join(b" ".join(ln.split()[:-1] + [b"nan"]) + b"\n"
                                        for ln in m.group(2).strip().split(b"\n")), b, count=1)),
         read=read_model_star, expect="note", match="no value|NaN"),
    # --- .cs
    Case(".cs malformed header", _cs("h1.cs", header_edit=lambda h: h.replace("'descr'", "'desc'")), match="header"),
    Case(".cs unbalanced header", _cs("h2.cs", header_edit=lambda h: h.replace("}", "")), match="header"),
    Case(".cs header that is code", _cs("h3.cs", header_edit=lambda h: "__import__('os').system('true')"), match="header"),
    Case(".cs non-integer shape", _cs("h4.cs", header_edit=lambda h: h.replace("(20,)", "(20.5,)")), match="shape"),
    Case(".cs absurd shape", _cs("h5.cs", header_edit=lambda h: h.replace("(20,)", "(1000000000000,)")),
         match="truncated.*1,000,000,000,000 rows"),
    Case(".cs 2D shape", _cs("h6.cs", header_edit=lambda h: h.replace("(20,)", "(4, 5)")), match="shape"),
    Case(".cs negative shape", _cs("h7.cs", header_edit=lambda h: h.replace("(20,)", "(-3,)")), match="shape"),
    Case(".cs micrograph_shape of 3", _cs("f1.cs", lambda: _picks(**{"location/micrograph_shape":
                                                                  ("location/micrograph_shape", "<u4", (3,))})),
         match="location/micrograph_shape"),
    Case(".cs pose of 4", _cs("f2.cs", lambda: np.zeros(3, dtype=[("uid", "<u8"), ("alignments3D/pose", "<f4", (4,))])),
         match="alignments3D/pose"),
    Case(".cs floats stored as bytes", _cs("f3.cs", lambda: _picks(**{"location/center_x_frac":
                                                                   ("location/center_x_frac", "S4")})),
         match="location/center_x_frac"),
    Case(".cs path stored as numbers", _cs("f4.cs", lambda: _picks(**{"location/micrograph_path":
                                                                   ("location/micrograph_path", "<f8")})),
         match="location/micrograph_path"),
    Case(".cs undecodable path", _cs("f5.cs", _cs_rows(lambda a: a["location/micrograph_path"].__setitem__(
        slice(10, 20), b"caf\xe9.mrc"))), match="row 11 is not UTF-8"),
    Case(".cs big-endian", _cs("be.cs", lambda: _picks().astype(np.dtype([(n, _picks().dtype[n].newbyteorder(">"))
                                                                          for n in _picks().dtype.names]))),
         expect="ok", check=lambda t: np.allclose(t["x_px"], np.linspace(0.1, 0.9, 20).astype(np.float32) * 200)
         and t["micrograph"].astype(str).tolist()[:2] == ["mic0", "mic0"] and t["ncc"].iloc[-1] == 1.0),
    Case(".cs 4 GiB header length", _text("big.cs", b"\x93NUMPY\x02\x00" + (2**32 - 1).to_bytes(4, "little") + b"{" * 64),
         match="header"),
    Case(".cs header longer than the file", _text("long.cs", b"\x93NUMPY\x01\x00" + (60000).to_bytes(2, "little") + b"{}"),
         match="header"),
    Case(".cs unknown version", _text("v9.cs", b"\x93NUMPY\x09\x00" + b"\x00" * 40), match="version"),
    Case(".cs only the magic", _text("magic.cs", b"\x93NUMPY"), match="truncated|header"),
    Case(".cs empty", _text("empty.cs", b""), match="not a cryoSPARC"),
    Case(".cs truncated rows", _cs("trunc.cs", data_edit=lambda d: d[: len(d) // 2]), match="truncated"),
    Case(".cs Python objects", _cs("obj.cs", header_edit=lambda h: h.replace("'|S40'", "'|O'")), match="objects|header"),
    Case(".cs micrograph_shape [0, 0] everywhere", _cs("z0.cs", _cs_rows(
        lambda a: a["location/micrograph_shape"].__setitem__(slice(None), 0))), match="no pick"),
    Case(".cs micrograph_shape [0, 0] for some", _cs("z1.cs", _cs_rows(
        lambda a: a["location/micrograph_shape"].__setitem__(slice(0, 5), 0))), expect="note",
         match="5 of 20 picks are on micrographs of shape", check=_nrows_is(15)),
    Case(".cs NaN fractions", _cs("nanf.cs", _cs_rows(lambda a: a["location/center_x_frac"].__setitem__(3, np.nan))),
         expect="note", match="1 of 20", check=lambda t: 3 not in t["source_row"].tolist()),
    Case(".cs fractions above 1", _cs("big_f.cs", _cs_rows(lambda a: a["location/center_y_frac"].__setitem__(
        slice(0, 2), 1.5))), expect="note", match="2 of 20", check=_nrows_is(18)),
    Case(".cs absurd micrograph_shape", _cs("huge_shape.cs", _cs_rows(
        lambda a: a["location/micrograph_shape"].__setitem__(4, (10**9, 10**9)))), match="row 5"),
    Case(".cs unknown schema", _cs("other.cs", lambda: np.zeros(3, dtype=[("foo", "<f4")])), match="unknown .cs schema"),
    Case(".cs not a record array", _cs("plain.cs", lambda: np.zeros(3, np.float32),
                                       header_edit=lambda h: h), match="schema"),
    Case(".cs compressed garbage", _text("csdat.cs", b"\x95CSDAT" + b"\x01" * 100), match="cryosparc-tools"),
    Case(".cs zero rows (real schema)", lambda tmp, shared: _shared(shared, "cryosparc/4k_dataset.cs"), expect="ok",
         check=_nrows_is(0)),
    Case(".cs flipped magic", _from(CS_REF, "flip.cs", lambda b: b"\x93NUMPX" + b[6:]), match="not a cryoSPARC"),
    Case(".cs real file truncated", _from(CS_REF, "cut.cs", lambda b: b[: len(b) * 2 // 3]), match="truncated"),
    Case(".cs real file, header byte damaged", _from(CS_REF, "dmg.cs", lambda b: b[:30] + b"\x00" + b[31:]),
         match="header|schema|field"),
    # --- .cbox
    Case(".cbox label/value count mismatch", _from(CBOX, "c1.cbox", _lines(
        lambda ls: ls[:_first_data_line(ls, 5) + 2] + [ls[_first_data_line(ls, 5) + 2] + " 7"]
        + ls[_first_data_line(ls, 5) + 3:])), read=cbox.read_cbox, match="values.*labels"),
    Case(".cbox - in a coordinate", _from(CBOX, "c2.cbox", _lines(
        lambda ls: ls[:_first_data_line(ls, 5) + 1] + ["- " + " ".join(ls[_first_data_line(ls, 5) + 1].split()[1:])]
        + ls[_first_data_line(ls, 5) + 2:])), read=cbox.read_cbox, match="CoordinateX in row 2"),
    Case(".cbox without Width", _from(CBOX, "c3.cbox", lambda b: b.replace(b"_Width #4", b"_Wide #4")),
         read=cbox.read_cbox, expect="note", match="no Width", check=lambda t: t["x_px"].iloc[0] == 3700.3671875),
    Case(".cbox NaN coordinate", _from(CBOX, "c4.cbox", lambda b: b.replace(b"3700.3671875", b"nan", 1)),
         read=cbox.read_cbox, expect="note", match="1 of 120", check=_nrows_is(119)),
    Case(".cbox without data_cryolo", _text("c5.cbox", "data_global\n_cbox_format_version 1.0\n"), read=cbox.read_cbox,
         match="data_cryolo"),
    Case(".cbox without CoordinateY", _text("c6.cbox", "data_cryolo\nloop_\n_CoordinateX\n_Width\n1 2\n"),
         read=cbox.read_cbox, match="CoordinateY"),
    Case(".cbox empty loop", _text("c7.cbox", "data_cryolo\nloop_\n_CoordinateX\n_CoordinateY\n_Width\n_Height\n"),
         read=cbox.read_cbox, expect="ok", check=_nrows_is(0)),
    Case(".cbox comma decimals", _from(CBOX, "c8.cbox", lambda b: b.replace(b"0.6578449010848999", b"0,6578", 1)),
         read=cbox.read_cbox, match="comma"),
]


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 80 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_table(case, tmp_path):
    path = case.make(tmp_path, SHARED)
    expect = "ok" if case.expect in ("ok", "note") else "error"
    out = check_reader_case(case.read, path, expect)
    if expect == "error":
        assert isinstance(out, CryodiagInputError)
        msg = str(out)
        assert "\n" not in msg, msg
        assert re.search(case.match, msg), msg
        return
    notes = " ".join(getattr(out, "attrs", {}).get("notes", []) if hasattr(out, "attrs") else
                     getattr(out, "notes", []) or [])
    if case.expect == "note":
        assert re.search(case.match, notes), notes
    if case.check is not None:
        assert case.check(out)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_table_through_the_napari_reader(case, tmp_path, monkeypatch):
    """The same corpus opened with File > Open (the npe2 reader): never a traceback; either layers /
    the no-layer sentinel, or None with one error notification naming the file in one line; the
    input unchanged (nothing written beside it either)."""
    from badinput import hashes
    from napari_cryodiag import _reader

    path = case.make(tmp_path, SHARED)
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(_reader, "_notify", lambda level, msg: shown.append((level, msg)))
    before = hashes(tmp_path)
    read = _reader.get_reader(str(path))
    assert read is not None, f"{path.name}: the napari reader does not take it"
    out = read(str(path))  # any exception but the project's own escapes here and fails the test
    assert hashes(tmp_path) == before, "an input changed or a file was written"
    errors = [m for level, m in shown if level == "error"]
    for m in errors:
        assert "\n" not in m and len(m) < 1000, m
        assert path.name in m, f"the error does not name the file: {m}"
    if out is None:
        assert len(errors) == 1, shown
    else:
        assert out is _reader.NO_LAYER or (isinstance(out, list) and out and all(
            isinstance(ly, tuple) and len(ly) in (2, 3) for ly in out)), out
    # the reader agrees with the file's own reader: refused where it refuses, opened where it reads
    if case.expect == "error":
        assert out is None and re.search(case.match, errors[0]), shown
    else:
        assert out is not None and not errors, shown
    if case.expect == "note":  # what was left out is said, naming the file
        warned = [m for level, m in shown if level == "warning" and path.name in m]
        assert any(re.search(case.match, m) for m in warned), shown
