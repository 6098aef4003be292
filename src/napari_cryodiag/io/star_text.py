"""STAR text: the block scanner and loop parser, and the chunked loop writer (no RELION meaning).

Reading (:func:`read_blocks`) follows RELION and the ``starfile`` package:

- a block starts at a line ``data_<name>``; it holds ``_label value`` pairs and/or one ``loop_``
  (labels ``_label [#n]``, then one row per line); ``#`` lines are comments;
- values are separated by blanks; a value may be quoted with ``"…"`` or ``'…'`` (to hold
  blanks), and ``""`` is the empty string;
- a UTF-8 byte-order mark before the first block is skipped.

Whatever cannot be read right is refused with a :class:`CryodiagInputError` naming the file,
the block and the line: a row with more or fewer values than the loop has labels, a second
``loop_`` in a block, bytes that are not UTF-8 text, a quote that is not closed. A blank line
inside a loop is not an end of the table here (RELION 3.1 stops reading at it; ``starfile``
reads on): the rows after it are read and a note says so.

Loop data go to pandas' C reader in one pass from the file (no copy of the file in memory);
every check that costs more than a look at the parsed columns runs only when the fast pass
finds something odd (the rare files with single quotes, comment lines or short rows).

Writing (:func:`write_loop`) streams rows in chunks through pyarrow's C++ formatting: floats
as the shortest text that reads back to the same value (float32 columns as float32), integers
as integers, booleans as 0/1; strings with blanks (or empty) are double-quoted.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterable, Sequence

import numpy as np

if TYPE_CHECKING:  # pandas is imported where a table is read or written: quote_value needs none
    import pandas as pd

from ..errors import CryodiagInputError

__all__ = ["Block", "read_blocks", "write_loop", "write_pairs", "quote_value", "clip", "NA_VALUES"]

#: text read as a missing number (never in string columns: a micrograph may be called "nan")
NA_VALUES = ["nan", "NaN", "NAN", "-nan", "<NA>", "NA", "None"]
_CHUNK = 32 << 20
_BOM = b"\xef\xbb\xbf"
_DATA_LINE = re.compile(rb"[ \t]*data_(\S*)[ \t]*\r?")
_TOKEN = re.compile(r"""\s*(?:"([^"]*)"(?=\s|$)|'([^']*)'(?=\s|$)|(\S+))""")
_SQ_TOKEN = re.compile(rb"""(?<![^\s])'([^'\n]*)'(?=\s)""")
_COMMENT_LINE = re.compile(rb"(?m)^[ \t]*#")


def clip(text, n: int = 60) -> str:
    """``repr`` of a value, cut to ``n`` characters (messages never echo a huge header)."""
    s = str(text)
    return repr(s if len(s) <= n else s[:n] + "…")


@dataclass
class Run:
    """The rows of consecutive small loop blocks with the same labels, read in one pass:
    block ``k`` holds ``df.iloc[bounds[k]:bounds[k + 1]]``."""

    df: pd.DataFrame
    blocks: list


@dataclass
class Block:
    """One ``data_`` block: ``pairs`` (``_label value`` lines) and/or a ``loop`` table. Blocks of
    a :class:`Run` share one table (``run``, ``rows``); ``loop`` is their slice of it."""

    name: str
    line: int  #: 1-based line of the ``data_`` line
    pairs: dict = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    _loop: pd.DataFrame | None = None
    first_row_line: int = 0  #: 1-based line of the first loop row
    notes: list[str] = field(default_factory=list)
    has_loop: bool = False
    run: Run | None = None
    rows: tuple[int, int] = (0, 0)

    @property
    def loop(self) -> pd.DataFrame | None:
        if self._loop is None and self.run is not None:
            lo, hi = self.rows
            self._loop = self.run.df.iloc[lo:hi].reset_index(drop=True)
        return self._loop

    @loop.setter
    def loop(self, value) -> None:
        self._loop = value
        if value is not None:
            self.has_loop = True

    @property
    def is_loop(self) -> bool:
        return self.has_loop


# --------------------------------------------------------------------------- reading


def _is_block_line(line: bytes) -> re.Match | None:
    """``data_<name>`` alone on its line (a row whose first value is ``data_001.mrc`` is not)."""
    m = _DATA_LINE.fullmatch(line)
    return m


def _tokens(line: str, where: Callable[[], str], path: str) -> list[str]:
    """Values of one line, with ``"…"``/``'…'`` quoting (a ``#`` token starts a comment)."""
    out = []
    pos = 0
    n = len(line)
    while pos < n:
        m = _TOKEN.match(line, pos)
        if m is None:
            rest = line[pos:].strip()
            if not rest:
                break
            raise CryodiagInputError(f"a quote is not closed ({clip(rest)}) {where()}", path)
        if m.group(3) is not None:
            tok = m.group(3)
            if tok.startswith("#"):
                break
            if tok[0] in "\"'" and not (len(tok) >= 2 and tok[-1] == tok[0]):
                raise CryodiagInputError(f"a quote is not closed ({clip(tok)}) {where()}", path)
            out.append(tok)
        else:
            out.append(m.group(1) if m.group(1) is not None else m.group(2))
        pos = m.end()
    return out


def _value(tok: str):
    try:
        return int(tok)
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        return tok


_SQ_FIX = re.compile(rb"""(?<![^\s])'([^'"\n]*)'(?=\s)""")
_COMMENT_LINES = re.compile(rb"(?m)^[ \t]*#[^\n]*\n?")
_BLANK_LINE = re.compile(rb"\n[ \t\r]*(?=\n)")


class _Src:
    """The file read front to back once: lines, blocks of bytes, and bytes given back
    (``unread``) when a look went past what the caller needed."""

    def __init__(self, f: BinaryIO, pos: int = 0):
        self.f = f
        f.seek(pos)
        self.pos = pos  # offset of the next byte handed out
        self.buf = b""

    def readline(self) -> bytes:
        i = self.buf.find(b"\n")
        if i >= 0:
            line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
        else:
            line, self.buf = self.buf + self.f.readline(), b""
        self.pos += len(line)
        return line

    def read(self, n: int) -> bytes:
        if len(self.buf) >= n:
            data, self.buf = self.buf[:n], self.buf[n:]
        else:
            data, self.buf = self.buf + self.f.read(n - len(self.buf)), b""
        self.pos += len(data)
        return data

    def unread(self, data: bytes) -> None:
        self.buf = data + self.buf
        self.pos -= len(data)


class _Rows(io.RawIOBase):
    """The rows of a loop from ``start`` to the next ``data_`` line (or the end), handed to
    pandas' reader in chunks that end at line ends; one pass over the file.

    On the way: comment lines are dropped, single-quoted values become double-quoted (pandas
    reads those), ``stop`` (offset of the next block's ``data_`` line, or the file size) and
    ``lines`` (lines of the rows) are found, and a blank line with rows after it is noted
    (``inner_blank``, its line number relative to ``start``)."""

    def __init__(self, src: _Src):
        self.src = src
        self.start = self.pos = src.pos
        self.stop: int | None = None
        self.buf = b""
        self.lines = 0
        self.inner_blank: int | None = None
        self._pending_blank: int | None = None
        self.empty_quotes = self.unfixable_quote = False
        self._seen_row = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        if self.stop is not None:
            return
        data = self.src.read(_CHUNK)
        if not data:
            self.stop = self.pos
            return
        if not data.endswith(b"\n"):
            data += self.src.readline()
        j = 0
        while True:  # the next block's data_ line ends these rows
            i = data.find(b"data_", j)
            if i < 0:
                break
            ls = data.rfind(b"\n", 0, i) + 1
            le = data.find(b"\n", i)
            le = len(data) if le < 0 else le + 1
            if not data[ls:i].strip(b" \t") and _is_block_line(data[ls:le].rstrip(b"\n")):
                self.stop = self.pos + ls
                self.src.unread(data[ls:])  # the next block starts there
                data = data[:ls]
                break
            j = i + 5
        self.pos += len(data)
        base_line = self.lines
        self.lines += data.count(b"\n")
        if self.inner_blank is None:
            if data[:1] in (b"\n", b" ", b"\t", b"\r") or _BLANK_LINE.search(data):
                self._blanks(data, base_line)
            elif self._pending_blank is not None and data.strip():
                self.inner_blank = self._pending_blank
        if b"#" in data:
            data = _COMMENT_LINES.sub(b"", data)
        if b"'" in data:
            data = _SQ_FIX.sub(rb'"\1"', data)
            if re.search(rb"(?<![^\s])'", data):
                self.unfixable_quote = True
        if not self.empty_quotes and b'""' in data:
            self.empty_quotes = True
        self.buf += data

    def _blanks(self, data: bytes, base_line: int) -> None:
        """Note the first blank line that has rows after it (line numbers relative to ``start``)."""
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()
        for k, line in enumerate(lines):
            t = line.strip()
            if t:
                if t.startswith(b"#"):
                    continue
                if self._pending_blank is not None:
                    self.inner_blank = self._pending_blank
                    return
                self._seen_row = True
            elif self._seen_row and self._pending_blank is None:
                self._pending_blank = base_line + k

    def readinto(self, b) -> int:
        while not self.buf and self.stop is None:
            self._fill()
        n = min(len(b), len(self.buf))
        b[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n

    def finish(self) -> int:
        """Read on to the end of the rows (after a failed parse); returns ``stop``."""
        while self.stop is None:
            self.buf = b""
            self._fill()
        return self.stop


def read_blocks(path, *, string_label: Callable[[str], bool], category_label: Callable[[str], bool] = lambda s: False,
                names: Iterable[str] | None = None) -> list[Block]:
    """Every block of the STAR file ``path`` in file order (see the module docstring), in one
    pass over the file.

    ``string_label(label)`` says which loop columns hold text (read as text even when they look
    like numbers: a micrograph called ``0003`` stays ``"0003"``); ``category_label`` which of
    them are read as pandas categoricals (micrograph names: one copy per distinct name).
    ``names`` limits which blocks are parsed.
    """
    path = os.fspath(path)
    want = None if names is None else set(names)
    try:
        f = open(path, "rb", buffering=1 << 16)
    except FileNotFoundError:
        raise CryodiagInputError("file not found", path) from None
    except IsADirectoryError:
        raise CryodiagInputError("is a folder, not a STAR file", path) from None
    except OSError as err:
        raise CryodiagInputError(f"cannot open: {err.strerror}", path) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        return _read_all(f, path, size, want, string_label, category_label)


def _read_all(f, path, size, want, string_label, category_label) -> list[Block]:
    head = f.read(3)
    src = _Src(f, 3 if head == _BOM else 0)
    ln = 1
    blocks: list[Block] = []
    run: list[tuple[Block, list]] = []  # small blocks waiting to be read together

    def flush():
        if len(run) == 1:
            blk, rows = run[0]
            blk.loop = _rows_frame(rows, blk.labels, _text_cols(blk.labels, string_label), category_label)
        elif run:
            _make_run(run, string_label, category_label)
        run.clear()

    line = src.readline()
    seen_block = False
    while line:
        m = _is_block_line(line.rstrip(b"\n"))
        if not m:  # before the first block (RELION and starfile skip such lines too)
            line = src.readline()
            ln += 1
            continue
        seen_block = True
        try:
            name = m.group(1).decode()
        except UnicodeDecodeError:
            raise CryodiagInputError(f"block name on line {ln} is not UTF-8 text", path) from None
        blk = Block(name=name, line=ln)
        skip = want is not None and name not in want
        line, ln, first_row = _parse_header(src, path, blk, ln + 1, string_label)
        if first_row is None:  # pairs only, an empty loop, or the file's end
            if not skip:
                flush()
                blocks.append(blk)
            continue
        src.unread(line)
        region = _small_region(src)
        if region is not None:  # a small loop: read its rows here
            if not skip:
                rows = _rows_of(region, blk, path)
                if run and run[-1][0].labels != blk.labels:
                    flush()
                run.append((blk, rows))
                blocks.append(blk)
            ln += region.count(b"\n")
            line = src.readline()
            continue
        flush()
        if skip:
            r = _Rows(src)
            r.finish()
            nlines = r.lines
        else:
            blk.loop, nlines = _read_loop(src, path, blk, string_label, category_label)
            blocks.append(blk)
        ln += nlines
        line = src.readline()
    flush()
    if not seen_block:
        raise CryodiagInputError("not a STAR file: no 'data_' block", path)
    return blocks


def _small_region(src: _Src) -> bytes | None:
    """The rows of a loop up to the next block when they fit in :data:`_SMALL` bytes (looked
    at in growing steps, the rest given back); None (nothing consumed) for a bigger loop."""
    n = 4096
    got = b""
    while True:
        more = src.read(n - len(got))
        got += more
        q = _block_line_in(got)
        if q is not None:
            src.unread(got[q:])
            return got[:q]
        if len(got) < n:  # the end of the file
            return got
        if n >= _SMALL:
            src.unread(got)
            return None
        n *= 4


def _block_line_in(data: bytes) -> int | None:
    """Offset of the first ``data_`` line in ``data`` (None)."""
    j = 0
    while True:
        i = data.find(b"data_", j)
        if i < 0:
            return None
        ls = data.rfind(b"\n", 0, i) + 1
        le = data.find(b"\n", i)
        le = len(data) if le < 0 else le
        if not data[ls:i].strip(b" \t") and _is_block_line(data[ls:le]):
            return ls
        j = i + 5


def _text_cols(labels, string_label) -> set:
    return {i for i, lab in enumerate(labels) if string_label(lab)}


#: a loop whose rows fit in this many bytes is read line by line (and with the small loops
#: after it that have the same labels, as one table: files of 10,000 pick blocks)
_SMALL = 256 * 1024


def _make_run(run, string_label, category_label) -> None:
    labels = run[0][0].labels
    rows: list = []
    bounds = [0]
    for _, r in run:
        rows += r
        bounds.append(len(rows))
    df = _rows_frame(rows, labels, _text_cols(labels, string_label), category_label)
    shared = Run(df=df, blocks=[b for b, _ in run])
    for k, (blk, _) in enumerate(run):
        blk.run = shared
        blk.rows = (bounds[k], bounds[k + 1])
        blk.has_loop = True


def _parse_header(src: _Src, path, blk: Block, ln: int, string_label):
    """Pairs and loop labels of ``blk``; returns (the line after them, its line number, the
    first row's line (bytes) or None). ``src`` is left after the returned line."""
    in_loop = False
    while True:
        raw = src.readline()
        if not raw:
            if in_loop:
                if not blk.labels:
                    raise CryodiagInputError(f"loop_ without labels in block data_{blk.name}", path)
                blk.first_row_line = ln
                blk.loop = _empty_loop(blk.labels, string_label)
            return b"", ln, None
        if _is_block_line(raw.rstrip(b"\n")):
            if in_loop:
                if not blk.labels:
                    raise CryodiagInputError(f"loop_ without labels in block data_{blk.name} (line {ln})", path)
                blk.first_row_line = ln
                blk.loop = _empty_loop(blk.labels, string_label)
            return raw, ln, None
        try:
            s = raw.decode()
        except UnicodeDecodeError:
            raise CryodiagInputError(f"line {ln} (block data_{blk.name}) is not UTF-8 text", path) from None
        t = s.strip()
        if not t or t.startswith("#"):
            ln += 1
            continue
        where = lambda ln=ln: f"on line {ln} (block data_{blk.name})"  # noqa: E731
        if t.startswith("loop_"):
            if in_loop or blk.labels:
                raise CryodiagInputError(f"a second loop_ in block data_{blk.name} (line {ln}); one table per block",
                                         path)
            in_loop = True
        elif t.startswith("_"):
            toks = _tokens(t, where, path)
            label = toks[0][1:]
            if in_loop:
                if label in blk.labels:
                    raise CryodiagInputError(f"label _{clip(label, 40)[1:-1]} is listed twice in the loop of block "
                                             f"data_{blk.name} (line {ln})", path)
                blk.labels.append(label)
            else:
                if len(toks) > 2:
                    raise CryodiagInputError(f"_{clip(label, 40)[1:-1]} has {len(toks) - 1} values {where()}; "
                                             "expected one (quote a value with blanks)", path)
                if label in blk.pairs:
                    raise CryodiagInputError(f"_{clip(label, 40)[1:-1]} is given twice in block data_{blk.name} "
                                             f"(line {ln})", path)
                blk.pairs[label] = _value(toks[1]) if len(toks) > 1 and not _quoted(t, toks[1]) else (
                    toks[1] if len(toks) > 1 else "")
        elif in_loop and blk.labels:
            blk.first_row_line = ln
            return raw, ln, raw
        elif in_loop:
            raise CryodiagInputError(f"loop_ without labels in block data_{blk.name} (line {ln})", path)
        else:
            raise CryodiagInputError(f"unexpected line {clip(t)} {where()}: not a _label, loop_ or comment", path)
        ln += 1


def _quoted(line: str, tok: str) -> bool:
    """True when the value ``tok`` of a ``_label value`` line was written in quotes (text)."""
    return f'"{tok}"' in line or f"'{tok}'" in line


def _empty_loop(labels, string_label) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({lab: pd.Series(dtype=object if string_label(lab) else float) for lab in labels})


def _read_loop(src: _Src, path, blk: Block, string_label, category_label):
    """A big loop through pandas' C reader, streamed (:class:`_Rows`); returns (table, lines)."""
    import pandas as pd

    labels = blk.labels
    n_lab = len(labels)
    text_cols = _text_cols(labels, string_label)
    dtypes = {i: str for i in text_cols}
    dtypes[n_lab] = str  # one column more than labels: a row with an extra value shows there
    na = {i: NA_VALUES for i in range(n_lab) if i not in text_cols}
    first = src.readline()
    src.unread(first)
    absurd = len(first.split()) > 2 * n_lab + 8 and not (b'"' in first or b"'" in first)
    rows = _Rows(src)
    start = rows.start
    df = None
    if not absurd:  # (pandas would make a column of each value of an absurdly long first row)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", pd.errors.ParserWarning)
                df = pd.read_csv(io.BufferedReader(rows, 1 << 18), sep=r"\s+", header=None,
                                 names=list(range(n_lab + 1)), index_col=False, dtype=dtypes, na_values=na,
                                 keep_default_na=False, quotechar='"', engine="c", comment=None,
                                 skip_blank_lines=True, encoding="utf-8", encoding_errors="strict", low_memory=True)
            if any(issubclass(w.category, pd.errors.ParserWarning) for w in caught):
                df = None  # a row with many values too many (pandas would drop them)
        except pd.errors.EmptyDataError:
            df = _empty_loop(labels, string_label)
            df[n_lab] = ""
        except (pd.errors.ParserError, ValueError, UnicodeDecodeError, IndexError, OverflowError):
            df = None
    stop = rows.finish()
    suspect = df is None or df.shape[1] != n_lab + 1 or rows.unfixable_quote
    if not suspect:
        extra = df.pop(n_lab)
        suspect = bool(len(extra) and (extra.astype(object).fillna("") != "").any())
    if not suspect and len(df) and not pd.api.types.is_numeric_dtype(df.dtypes.iloc[-1]):
        suspect = bool((df.iloc[:, -1].astype(object) == "").any())  # a short row is padded with ""
    if suspect:
        with open(path, "rb") as g:  # the rows once more, line by line (odd files only)
            _diagnose(g, path, blk, start, stop)  # raises naming the line when a row does not fit
            if df is None or rows.unfixable_quote:
                g.seek(start)
                df = _rows_frame(_rows_of(g.read(stop - start), blk, path), labels, text_cols, category_label)
                return df, rows.lines
    df.columns = labels
    for i in text_cols:  # parsed as text (a category parse would turn "0003" into 3), then factorised
        if category_label(labels[i]):
            df[labels[i]] = pd.Categorical(df[labels[i]])
    if rows.inner_blank is not None:
        blk.notes.append(f"blank line inside the loop of block data_{blk.name} (line "
                         f"{blk.first_row_line + rows.inner_blank}): RELION 3.1 stops reading the table there; "
                         f"all {len(df)} rows were read")
    return df, rows.lines


def _diagnose(f, path, blk: Block, start: int, stop: int) -> None:
    """Walk the rows line by line and refuse the first one that does not fit the labels (a row
    too long or short, a quote not closed, text that is not UTF-8); returns when every row fits."""
    n_lab = len(blk.labels)
    f.seek(start)
    pos, ln = start, blk.first_row_line
    while pos < stop:
        raw = f.readline()
        if not raw:
            break
        pos += len(raw)
        try:
            s = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise CryodiagInputError(f"line {ln} (loop of block data_{blk.name}) is not UTF-8 text", path) from None
        if s and not s.startswith("#"):
            _check_row(s, n_lab, ln, blk, path)
        ln += 1


def _check_row(s: str, n_lab: int, ln: int, blk: Block, path):
    if s.startswith("_") or s.startswith("loop_"):
        raise CryodiagInputError(
            f"line {ln} ({clip(s, 40)}) comes after the rows of the loop of block data_{blk.name}: "
            "labels go before the rows, one loop per block", path)
    toks = s.split() if '"' not in s and "'" not in s and "#" not in s else \
        _tokens(s, lambda: f"on line {ln} (loop of block data_{blk.name})", path)
    if len(toks) != n_lab:
        more = len(toks) > n_lab
        raise CryodiagInputError(
            f"cannot parse line {ln}: it has {len(toks)} values but the loop of block data_{blk.name} has "
            f"{n_lab} labels" + (" (a label line missing?)" if more else " (truncated or hand-edited row?)")
            + f": {clip(s, 80)}", path)
    return toks


def _rows_of(raw: bytes, blk: Block, path) -> list:
    """The rows of a (small) loop's bytes, line by line: comment lines dropped, quotes honoured,
    every row checked to hold as many values as there are labels (else refused, naming the
    line); a blank line with rows after it is noted."""
    n_lab = len(blk.labels)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = blk.first_row_line + raw.count(b"\n", 0, err.start)
        raise CryodiagInputError(f"line {line} (loop of block data_{blk.name}) is not UTF-8 text", path) from None
    rows: list = []
    blank_at = pending = None
    for k, line in enumerate(text.split("\n")):
        s = line.strip()
        ln = blk.first_row_line + k
        if not s:
            if pending is None and rows:
                pending = ln
            continue
        if s.startswith("#"):
            continue
        if pending is not None and blank_at is None:
            blank_at = pending
        rows.append(_check_row(s, n_lab, ln, blk, path))
    if blank_at is not None:
        blk.notes.append(f"blank line inside the loop of block data_{blk.name} (line {blank_at}): RELION 3.1 stops "
                         f"reading the table there; all {len(rows)} rows were read")
    return rows


def _rows_frame(rows: list, labels, text_cols, category_label) -> pd.DataFrame:
    """A loop table from rows of text values (numbers parsed, NA texts as NaN in number columns)."""
    import pandas as pd

    if not rows:
        return pd.DataFrame({lab: pd.Series(dtype=object) for lab in labels})
    cols = list(zip(*rows))
    out = {}
    for i, lab in enumerate(labels):
        vals = pd.Series(cols[i], dtype=object)
        if i in text_cols:
            out[lab] = pd.Categorical(vals) if category_label(lab) else vals.astype(str)
            continue
        s = vals.where(~vals.isin(NA_VALUES), None)
        num = pd.to_numeric(s, errors="coerce")
        out[lab] = num if num.notna().sum() == s.notna().sum() else s
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- writing


def quote_value(s: str) -> str:
    """A text value as STAR holds it: double-quoted when it has blanks or is empty (single
    quotes when it holds a double quote); a value that holds both quotes and a blank cannot be
    written (raises ``ValueError``)."""
    if s and not any(c.isspace() for c in s) and s[0] not in "\"'#_" and not s.startswith(("data_", "loop_")):
        return s
    if '"' not in s:
        return f'"{s}"'
    if "'" not in s:
        return f"'{s}'"
    raise ValueError(f"{clip(s)} holds blanks and both kinds of quotes: STAR cannot hold it")


def _text_array(values, pa):
    """pyarrow string array of a column chunk (numbers formatted, texts quoted as needed)."""
    import pandas as pd

    if isinstance(values, pd.Categorical) or isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        cat = pd.Categorical(values)
        cats = np.array([quote_value(str(c)) for c in cat.categories], dtype=object)
        codes = np.asarray(cat.codes)
        if (codes < 0).any():
            cats = np.append(cats, '""')
            codes = np.where(codes < 0, len(cats) - 1, codes)
        return pa.array(cats, type=pa.string()).take(pa.array(codes))
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    kind = arr.dtype.kind
    if kind == "b":
        return pa.array(arr.astype(np.int8)).cast(pa.string())
    if kind in "iu":
        return pa.array(arr).cast(pa.string())
    if kind == "f":
        if arr.dtype == np.float16:
            arr = arr.astype(np.float32)
        return pa.array(arr, from_pandas=False).cast(pa.string())
    # object / string: numbers held as objects (nullable ints) become text, NA -> nan
    ser = pd.Series(arr, dtype=object)
    isna = ser.isna().to_numpy()
    txt = ser.astype(str)
    if isna.any():
        txt[isna] = "nan"
    vals = txt.to_numpy(dtype=object)
    need = pd.Series(vals).str.contains(r"^$|\s|^[\"'#_]|^data_|^loop_", regex=True).to_numpy()
    if need.any():
        vals = vals.copy()
        vals[need] = [quote_value(v) for v in vals[need]]
    return pa.array(vals, type=pa.string())


def write_pairs(out, name: str, pairs: dict) -> None:
    """A ``data_<name>`` block of ``_label value`` lines."""
    lines = [f"\n# version 30001\n\ndata_{name}\n\n"]
    width = max((len(k) for k in pairs), default=0) + 4
    for k, v in pairs.items():
        if isinstance(v, (bool, np.bool_)):
            txt = str(int(v))
        elif isinstance(v, (int, float, np.integer, np.floating)):
            txt = repr(float(v)) if isinstance(v, (float, np.floating)) else str(int(v))
        else:
            txt = quote_value(str(v))
        lines.append(f"_{k:<{width}}{txt}\n")
    lines.append("\n")
    out.write("".join(lines).encode())


def write_loop(out, name: str, labels: Sequence[str], n_rows: int, column: Callable[[int, int, int], object],
               *, chunk_rows: int = 200_000) -> None:
    """Stream a ``data_<name>`` loop to the binary file ``out``.

    ``column(j, lo, hi)`` returns the values of label ``j`` for rows ``lo:hi`` (numpy array,
    pandas Series or Categorical); rows are formatted ``chunk_rows`` at a time, so memory stays
    at one chunk of text whatever the table's size.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    head = [f"\n# version 30001\n\ndata_{name}\n\nloop_\n"]
    head += [f"_{lab} #{j + 1}\n" for j, lab in enumerate(labels)]
    out.write("".join(head).encode())
    for lo in range(0, n_rows, chunk_rows):
        hi = min(n_rows, lo + chunk_rows)
        parts = [_text_array(column(j, lo, hi), pa) for j in range(len(labels))]
        line = pc.binary_join_element_wise(*parts, " ") if len(parts) > 1 else parts[0]
        line = pc.binary_join_element_wise(line, pa.scalar(""), "\n")
        if line.null_count:
            raise ValueError("a value could not be formatted")
        bufs = line.buffers()
        off = np.frombuffer(bufs[1], dtype=np.int32, count=len(line) + 1, offset=line.offset * 4)
        out.write(memoryview(bufs[2])[off[0]:off[-1]])
    out.write(b"\n")
