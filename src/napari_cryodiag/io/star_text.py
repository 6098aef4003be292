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
from dataclasses import dataclass, field
from typing import BinaryIO, Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import CryodiagInputError

__all__ = ["Block", "read_blocks", "write_loop", "write_pairs", "quote_value", "clip", "NA_VALUES"]

#: text read as a missing number (never in string columns: a micrograph may be called "nan")
NA_VALUES = ["nan", "NaN", "NAN", "-nan", "<NA>", "NA", "None"]
_CHUNK = 32 << 20
_BOM = b"\xef\xbb\xbf"
_DATA_LINE = re.compile(rb"[ \t]*data_(\S*)[ \t]*\r?\n?")
_TOKEN = re.compile(r"""\s*(?:"([^"]*)"(?=\s|$)|'([^']*)'(?=\s|$)|(\S+))""")
_SQ_TOKEN = re.compile(rb"""(?<![^\s])'([^'\n]*)'(?=\s)""")
_COMMENT_LINE = re.compile(rb"(?m)^[ \t]*#")


def clip(text, n: int = 60) -> str:
    """``repr`` of a value, cut to ``n`` characters (messages never echo a huge header)."""
    s = str(text)
    return repr(s if len(s) <= n else s[:n] + "…")


@dataclass
class Block:
    """One ``data_`` block: ``pairs`` (``_label value`` lines) and/or a ``loop`` table."""

    name: str
    line: int  #: 1-based line of the ``data_`` line
    pairs: dict = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    loop: pd.DataFrame | None = None
    first_row_line: int = 0  #: 1-based line of the first loop row
    notes: list[str] = field(default_factory=list)

    @property
    def is_loop(self) -> bool:
        return self.loop is not None


# --------------------------------------------------------------------------- scanning


def _scan(f: BinaryIO, path: str) -> list[tuple[int, int, int, str]]:
    """``(start, body, line, name)`` of every block: offset of the ``data_`` line, offset after
    it, its 1-based line number, and the block's name. Reads the file once in chunks that end
    at a line end; only lines that begin with ``data_`` (after blanks) and hold nothing else
    start a block (a row whose first value is ``data_001.mrc`` does not)."""
    out = []
    offset = 0
    lines_before = 0
    first = True
    while True:
        chunk = f.read(_CHUNK)
        if not chunk:
            break
        if not chunk.endswith(b"\n"):
            chunk += f.readline()
        start_skip = 0
        if first:
            first = False
            if chunk.startswith(_BOM):
                start_skip = 3
        pos = start_skip
        counted_to = 0
        nl = lines_before
        while True:
            i = chunk.find(b"data_", pos)
            if i < 0:
                break
            ls = chunk.rfind(b"\n", 0, i) + 1
            if ls == 0 and offset == 0:
                ls = start_skip if i >= start_skip else 0
            if not chunk[ls:i].strip(b" \t"):
                m = _DATA_LINE.match(chunk, ls)
                if m and (m.end() == len(chunk) or chunk[m.end() - 1:m.end()] == b"\n"):
                    nl += chunk.count(b"\n", counted_to, ls)
                    counted_to = ls
                    name = m.group(1)
                    try:
                        name_s = name.decode()
                    except UnicodeDecodeError:
                        raise CryodiagInputError(f"block name on line {nl + 1} is not UTF-8 text", path) from None
                    out.append((offset + ls, offset + m.end(), nl + 1, name_s))
                    pos = m.end()
                    continue
            pos = i + 5
        lines_before = nl + chunk.count(b"\n", counted_to)
        offset += len(chunk)
    return out


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


class _Range(io.RawIOBase):
    """A read-only view of ``[start, end)`` of an open binary file, for pandas' reader; counts
    newlines and notes the bytes that need the careful path (single quotes, ``""``, ``#``)."""

    def __init__(self, f: BinaryIO, start: int, end: int):
        self.f, self.pos, self.end = f, start, end
        self.newlines = 0
        self.last = b""
        self.single_quote = self.empty_quotes = self.hash = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self.end - self.pos)
        if n <= 0:
            return 0
        self.f.seek(self.pos)
        data = self.f.read(n)
        m = len(data)
        b[:m] = data
        self.pos += m
        self.newlines += data.count(b"\n")
        if not self.single_quote and b"'" in data:
            self.single_quote = True
        if not self.empty_quotes and (b'""' in data or (self.last == b'"' and data[:1] == b'"')):
            self.empty_quotes = True
        if not self.hash and b"#" in data:
            self.hash = True
        self.last = data[-1:]
        return m


def read_blocks(path, *, string_label: Callable[[str], bool], category_label: Callable[[str], bool] = lambda s: False,
                names: Iterable[str] | None = None) -> list[Block]:
    """Every block of the STAR file ``path`` in file order (see the module docstring).

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
        spans = _scan(f, path)
        if not spans:
            raise CryodiagInputError("not a STAR file: no 'data_' block", path)
        blocks = []
        for i, (start, body, line, name) in enumerate(spans):
            end = spans[i + 1][0] if i + 1 < len(spans) else size
            if want is not None and name not in want:
                continue
            blocks.append(_parse_block(f, path, name, line, body, end, string_label, category_label))
    return blocks


def _parse_block(f, path, name, line, body, end, string_label, category_label) -> Block:
    blk = Block(name=name, line=line)
    f.seek(body)
    pos, ln = body, line + 1
    in_loop = False
    while pos < end:
        raw = f.readline()
        if not raw:
            break
        if pos + len(raw) > end:
            raw = raw[: end - pos]
        try:
            s = raw.decode()
        except UnicodeDecodeError:
            raise CryodiagInputError(f"line {ln} (block data_{name}) is not UTF-8 text", path) from None
        t = s.strip()
        if not t or t.startswith("#"):
            pos += len(raw)
            ln += 1
            continue
        where = lambda ln=ln: f"on line {ln} (block data_{name})"  # noqa: E731
        if t.startswith("loop_"):
            if in_loop or blk.labels:
                raise CryodiagInputError(f"a second loop_ in block data_{name} (line {ln}); one table per block", path)
            in_loop = True
        elif t.startswith("_"):
            toks = _tokens(t, where, path)
            label = toks[0][1:]
            if in_loop:
                if label in blk.labels:
                    raise CryodiagInputError(f"label _{label} is listed twice in the loop of block data_{name} "
                                             f"(line {ln})", path)
                blk.labels.append(label)
            else:
                if len(toks) > 2:
                    raise CryodiagInputError(f"_{clip(label, 40)[1:-1]} has {len(toks) - 1} values {where()}; "
                                             "expected one (quote a value with blanks)", path)
                if label in blk.pairs:
                    raise CryodiagInputError(f"_{clip(label, 40)[1:-1]} is given twice in block data_{name} "
                                             f"(line {ln})", path)
                blk.pairs[label] = _value(toks[1]) if len(toks) > 1 and not _quoted(t, toks[1]) else (
                    toks[1] if len(toks) > 1 else "")
        elif in_loop and blk.labels:
            blk.first_row_line = ln
            blk.loop = _read_loop(f, path, blk, pos, end, string_label, category_label)
            return blk
        elif in_loop:
            raise CryodiagInputError(f"loop_ without labels in block data_{name} (line {ln})", path)
        else:
            raise CryodiagInputError(f"unexpected line {clip(t)} {where()}: not a _label, loop_ or comment", path)
        pos += len(raw)
        ln += 1
    if in_loop:
        if not blk.labels:
            raise CryodiagInputError(f"loop_ without labels in block data_{name}", path)
        blk.first_row_line = ln
        blk.loop = _empty_loop(blk.labels, string_label)
    return blk


def _quoted(line: str, tok: str) -> bool:
    """True when the value ``tok`` of a ``_label value`` line was written in quotes (text)."""
    return f'"{tok}"' in line or f"'{tok}'" in line


def _empty_loop(labels, string_label) -> pd.DataFrame:
    return pd.DataFrame({lab: pd.Series(dtype=object if string_label(lab) else float) for lab in labels})


def _data_end(f, start: int, end: int) -> int:
    """End of the last row: trailing blank and comment lines (before the next block) dropped."""
    pos = end
    while pos > start:
        lo = max(start, pos - 65536)
        f.seek(lo)
        tail = f.read(pos - lo)
        j = len(tail)
        while True:
            a = tail.rfind(b"\n", 0, j) + 1
            if a == 0 and lo > start:
                if j == len(tail):
                    return pos  # a line longer than the window: a row
                break  # the line may begin before the window: read the window that ends here
            piece = tail[a:j].strip()
            if piece and not piece.startswith(b"#"):
                return lo + j
            if a == 0:
                return start
            j = a - 1
        pos = lo + j
    return start


def _read_loop(f, path, blk: Block, start, end, string_label, category_label) -> pd.DataFrame:
    labels = blk.labels
    stop = _data_end(f, start, end)
    if stop <= start:
        return _empty_loop(labels, string_label)
    text_cols = [i for i, lab in enumerate(labels) if string_label(lab)]
    dtypes = {i: str for i in text_cols}
    na = {i: NA_VALUES for i in range(len(labels)) if i not in dtypes}
    rng = _Range(f, start, stop)
    try:
        df = pd.read_csv(io.BufferedReader(rng, 1 << 18), sep=r"\s+", header=None, dtype=dtypes, na_values=na,
                         keep_default_na=False, quotechar='"', engine="c", comment=None, skip_blank_lines=True,
                         encoding="utf-8", encoding_errors="strict", low_memory=True)
    except pd.errors.EmptyDataError:
        return _empty_loop(labels, string_label)
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError, IndexError, OverflowError):
        df = None
    n_lines = rng.newlines + (0 if rng.last == b"\n" else 1)
    careful = df is None or df.shape[1] != len(labels)
    if not careful and len(df) and not pd.api.types.is_numeric_dtype(df.dtypes.iloc[-1]):
        last = df.iloc[:, -1]
        if isinstance(last.dtype, pd.CategoricalDtype):
            has_empty = "" in set(last.cat.categories)
        else:
            has_empty = bool((last.astype(object) == "").any())
        careful = has_empty  # a short row is padded with "" (so is a real "" value)
    if not careful and (rng.hash or rng.single_quote):
        f.seek(start)
        raw = f.read(stop - start)
        careful = bool(_COMMENT_LINE.search(raw) or _SQ_TOKEN.search(raw))
        del raw
    if careful:
        return _careful_loop(f, path, blk, start, stop, dtypes, na, category_label)
    df.columns = labels
    for i in text_cols:  # parsed as text (a category parse would turn "0003" into 3), then factorised
        if category_label(labels[i]):
            df[labels[i]] = pd.Categorical(df[labels[i]])
    if len(df) < n_lines:
        blank = _first_blank_line(f, start, stop)
        blk.notes.append(
            f"blank line{'s' if n_lines - len(df) > 1 else ''} inside the loop of block data_{blk.name} "
            f"(first on line {blk.first_row_line + blank}): RELION 3.1 stops reading the table there; "
            f"all {len(df)} rows were read")
    return df


def _first_blank_line(f, start, stop) -> int:
    f.seek(start)
    k = 0
    pos = start
    while pos < stop:
        raw = f.readline()
        if not raw:
            break
        if not raw.strip():
            return k
        pos += len(raw)
        k += 1
    return k


def _careful_loop(f, path, blk: Block, start, stop, dtypes, na, category_label) -> pd.DataFrame:
    """The loop read line by line: comment lines dropped, single quotes turned into double ones,
    and every row checked to hold as many values as there are labels (else refused, naming the
    line). Only files that the fast pass found odd come here."""
    labels = blk.labels
    n_lab = len(labels)
    f.seek(start)
    raw = f.read(stop - start)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = blk.first_row_line + raw.count(b"\n", 0, err.start)
        raise CryodiagInputError(f"line {line} (loop of block data_{blk.name}) is not UTF-8 text", path) from None
    rows: list[str] = []
    blank_at = None
    for k, line in enumerate(text.split("\n")):
        s = line.strip()
        ln = blk.first_row_line + k
        if not s:
            if blank_at is None and rows:
                blank_at = ln
            continue
        if s.startswith("#"):
            continue
        if s.startswith("_") or s.startswith("loop_"):
            raise CryodiagInputError(
                f"line {ln} ({clip(s, 40)}) comes after the rows of the loop of block data_{blk.name}: "
                "labels go before the rows, one loop per block", path)
        toks = _tokens(s, lambda ln=ln: f"on line {ln} (loop of block data_{blk.name})", path)
        if len(toks) != n_lab:
            more = len(toks) > n_lab
            raise CryodiagInputError(
                f"cannot parse line {ln}: it has {len(toks)} values but the loop of block data_{blk.name} has "
                f"{n_lab} labels"
                + (" (a label line missing?)" if more else " (truncated or hand-edited row?)")
                + f": {clip(s, 80)}", path)
        rows.append(toks)
    if blank_at is not None:
        blk.notes.append(f"blank line inside the loop of block data_{blk.name} (line {blank_at}): RELION 3.1 stops "
                         f"reading the table there; all {len(rows)} rows were read")
    if not rows:
        return pd.DataFrame({lab: pd.Series(dtype=object) for lab in labels})
    cols = list(zip(*rows))
    out = {}
    for i, lab in enumerate(labels):
        vals = pd.Series(cols[i], dtype=object)
        if i in dtypes:
            out[lab] = pd.Categorical(vals) if category_label(lab) else vals.astype(str)
            continue
        s = vals.where(~vals.isin(na[i]), None)
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
