"""Curating exposures: a statistics table with one row per micrograph, and thresholds on its
columns that drop whole micrographs (with their picks).

Statistics (:func:`micrograph_statistics`; a column is there when something gives it):

=============================  ==================================================================
``defocus_A``                  mean defocus (Å): the micrograph table, else the picks' median
``astigmatism_A``              ``|defocus_u - defocus_v|`` (Å; RELION's ``rlnCtfAstigmatism``
                               when only that is given)
``ctf_max_resolution_A``       resolution the CTF fit holds to (Å; ``rlnCtfMaxResolution``,
                               ``ctf_stats/ctf_fit_to_A``)
``ctf_figure_of_merit``        ``rlnCtfFigureOfMerit`` / ``ctf_stats/cross_corr``
``n_picks``                    picks on the micrograph (not deleted by hand)
``median_<score>``             median raw score of its picks (``median_ncc``, ``median_power``)
``median_<score>_calibrated``  median calibrated score (when the view is calibrated)
``kept_fraction``              the fraction of its picks the pick thresholds keep
=============================  ==================================================================

:class:`ExposureThresholds` holds a ``[min, max]`` per statistic (either may be None: no cut);
:meth:`ExposureThresholds.evaluate` gives an :class:`ExposureSelection`: keep per micrograph and,
for each dropped one, why. A micrograph whose statistic is NaN (no CTF row, no picks to take a
median of) is **not judged** on it: it is kept as far as that statistic goes, and counted.

Pure numerics: arrays and tables in, arrays and tables out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...errors import CryodiagInputError

__all__ = ["CTF_STATISTICS", "STATISTIC_UNITS", "ExposureThresholds", "ExposureSelection", "exposure_values",
           "micrograph_statistics", "kept_fraction", "statistic_label", "parse_exposure_threshold"]

#: the statistics a micrograph table gives (in this order)
CTF_STATISTICS = ("defocus_A", "astigmatism_A", "ctf_max_resolution_A", "ctf_figure_of_merit")

#: units of the fixed statistics (scores' medians have the score's units)
STATISTIC_UNITS = {"defocus_A": "Å", "astigmatism_A": "Å", "ctf_max_resolution_A": "Å", "ctf_figure_of_merit": "",
                   "n_picks": "", "kept_fraction": ""}

_LABELS = {"defocus_A": "defocus (Å)", "astigmatism_A": "astigmatism (Å)", "ctf_max_resolution_A": "CTF fit to (Å)",
           "ctf_figure_of_merit": "CTF FOM", "n_picks": "picks", "kept_fraction": "kept fraction"}

#: where each statistic comes from in a micrograph or pick table (canonical name first)
_SOURCES = {
    "defocus_A": ("defocus_A",),
    "defocus_u_A": ("defocus_u_A", "rlnDefocusU", "ctf/df1_A"),
    "defocus_v_A": ("defocus_v_A", "rlnDefocusV", "ctf/df2_A"),
    "astigmatism_A": ("astigmatism_A", "rlnCtfAstigmatism"),
    "ctf_max_resolution_A": ("ctf_max_resolution_A", "rlnCtfMaxResolution", "ctf_stats/ctf_fit_to_A"),
    "ctf_figure_of_merit": ("ctf_figure_of_merit", "rlnCtfFigureOfMerit", "ctf_stats/cross_corr"),
}


def statistic_label(name: str) -> str:
    """A short label with units for a table header or an axis."""
    if name in _LABELS:
        return _LABELS[name]
    if name.startswith("median_"):
        rest = name[len("median_"):]
        if rest.endswith("_calibrated"):
            return f"median {rest[:-len('_calibrated')]} (cal.)"
        return f"median {rest}"
    return name


def _numeric(table: pd.DataFrame, names) -> np.ndarray | None:
    for n in names:
        if n in table.columns:
            v = pd.to_numeric(table[n], errors="coerce").to_numpy(dtype=np.float64)
            if np.isfinite(v).any():
                return v
    return None


def exposure_values(table: pd.DataFrame, key_column: str = "micrograph") -> pd.DataFrame:
    """Per micrograph key (the index, str): the :data:`CTF_STATISTICS` ``table`` gives (a
    micrograph table, or picks carrying their micrograph's CTF), as medians over its rows.
    Canonical and RELION/cryoSPARC column names are both understood; ``astigmatism_A`` is
    ``|defocus_u - defocus_v|`` when both are known."""
    if key_column not in table.columns:
        raise CryodiagInputError(f"the table has no {key_column!r} column to join micrographs on",
                                 table.attrs.get("source"))
    cols: dict = {}
    u = _numeric(table, _SOURCES["defocus_u_A"])
    v = _numeric(table, _SOURCES["defocus_v_A"])
    d = _numeric(table, _SOURCES["defocus_A"])
    if d is None and u is not None:
        d = (u + (v if v is not None else u)) / 2
    if d is not None:
        cols["defocus_A"] = d
    if u is not None and v is not None:
        cols["astigmatism_A"] = np.abs(u - v)
    else:
        a = _numeric(table, _SOURCES["astigmatism_A"])
        if a is not None:
            cols["astigmatism_A"] = np.abs(a)
    for name in ("ctf_max_resolution_A", "ctf_figure_of_merit"):
        x = _numeric(table, _SOURCES[name])
        if x is not None:
            cols[name] = x
    keys = table[key_column].astype(str).to_numpy()
    if not cols:
        return pd.DataFrame(index=pd.Index(pd.unique(keys), dtype=object))
    df = pd.DataFrame(cols)
    out = df.groupby(keys, sort=False).median()
    out.index = out.index.astype(str)
    return out


def _group_median(codes: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """NaN-ignoring median of ``values`` per code ``0..n-1`` (NaN for codes without a value)."""
    med = pd.Series(np.asarray(values, dtype=np.float64)).groupby(np.asarray(codes)).median()
    return med.reindex(range(n)).to_numpy(dtype=np.float64)


def pick_ctf_values(table: pd.DataFrame, codes, names) -> pd.DataFrame | None:
    """:func:`exposure_values` of a pick table whose rows carry their micrograph's CTF, per
    micrograph code (index: ``names``); None when the picks carry none of it."""
    sub = [c for cols in _SOURCES.values() for c in cols if c in table.columns]
    if not sub:
        return None
    codes = np.asarray(codes, dtype=np.intp)
    n = len(names)
    first = np.full(n, -1, dtype=np.intp)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    # the CTF of a micrograph is one value for all its picks: the first pick's, unless they differ
    small = table[sub].iloc[np.maximum(first, 0)].copy()
    small["micrograph"] = [str(x) for x in names]
    vals = exposure_values(small)
    varying = [c for c in sub if c in table.columns and
               pd.to_numeric(table[c], errors="coerce").groupby(codes).nunique().max() > 1] if len(codes) < 2_000_000 \
        else []
    if varying:  # per-particle CTF (refined): medians of all picks
        full = table[sub].copy()
        full["micrograph"] = np.asarray([str(x) for x in names], dtype=object)[codes]
        vals = exposure_values(full)
    vals = vals.reindex([str(x) for x in names])
    vals.loc[[str(x) for x, f in zip(names, first) if f < 0]] = np.nan
    return vals


def micrograph_statistics(codes, names, *, active=None, scores: dict | None = None, kept=None,
                          exposures: pd.DataFrame | None = None, picks_ctf: pd.DataFrame | None = None,
                          with_extra: bool = True) -> pd.DataFrame:
    """One row per micrograph (module docstring): the pick set's micrographs ``names`` (pick
    ``codes`` index them) first, then, when ``with_extra``, the micrographs of ``exposures``
    that have no picks (``n_picks`` 0, no score medians).

    ``active``: picks counted (not deleted by hand; default all); ``scores``: ``{statistic name:
    value per pick}`` (``{"median_ncc": ncc, ...}``); ``kept``: picks the pick thresholds keep
    (for ``kept_fraction``); ``exposures``: :func:`exposure_values` of the micrograph table;
    ``picks_ctf``: :func:`exposure_values` of the picks (used where ``exposures`` has no value).
    """
    codes = np.asarray(codes, dtype=np.intp)
    names = np.asarray([str(n) for n in names], dtype=object)
    n = len(names)
    active = np.ones(len(codes), dtype=bool) if active is None else np.asarray(active, dtype=bool)
    ca = codes[active]
    n_picks = np.bincount(ca, minlength=n).astype(np.int64)
    extra = np.zeros(0, dtype=object)
    if with_extra and exposures is not None and len(exposures):
        known = set(names.tolist())
        extra = np.asarray([k for k in exposures.index.astype(str) if k not in known], dtype=object)
    all_names = np.concatenate([names, extra]) if len(extra) else names
    m = len(all_names)
    out = pd.DataFrame({"micrograph": all_names})
    for stat in CTF_STATISTICS:
        vals = np.full(m, np.nan)
        got = False
        for src in (exposures, picks_ctf):
            if src is not None and stat in src.columns:
                s = src[stat].reindex(all_names).to_numpy(dtype=np.float64)
                fill = ~np.isfinite(vals) & np.isfinite(s)
                vals[fill] = s[fill]
                got = True
        if got:
            out[stat] = vals
    out["n_picks"] = np.concatenate([n_picks, np.zeros(len(extra), np.int64)])
    for stat, per_pick in (scores or {}).items():
        med = _group_median(ca, np.asarray(per_pick, dtype=np.float64)[active], n)
        out[stat] = np.concatenate([med, np.full(len(extra), np.nan)])
    if kept is not None:
        k = np.bincount(codes[np.asarray(kept, dtype=bool) & active], minlength=n)
        out["kept_fraction"] = kept_fraction(k, n_picks, m)
    out.attrs["n_with_picks"] = n
    return out


def kept_fraction(kept_per_micrograph, total_per_micrograph, n_rows: int) -> np.ndarray:
    """``kept / total`` per micrograph (NaN without picks), padded with NaN to ``n_rows``."""
    k = np.asarray(kept_per_micrograph, dtype=np.float64)
    t = np.asarray(total_per_micrograph, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(t > 0, k / np.maximum(t, 1), np.nan)
    return np.concatenate([f, np.full(max(0, n_rows - len(f)), np.nan)])


# --------------------------------------------------------------------------- thresholds

_NAME = re.compile(r"^[A-Za-z_][\w/]*$")


def _number(text: str, spec: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        raise CryodiagInputError(f"exposure threshold {spec!r}: {text!r} is not a number") from None
    return v


def parse_exposure_threshold(spec: str) -> tuple[str, float | None, float | None]:
    """``"NAME<=V"`` (a maximum), ``"NAME>=V"`` (a minimum) or ``"NAME:LO..HI"`` (either side
    may be empty) -> ``(name, min, max)``."""
    text = str(spec).strip()
    usage = (f"exposure threshold {spec!r}: write NAME<=MAX, NAME>=MIN or NAME:MIN..MAX "
             "(e.g. ctf_max_resolution_A<=6, defocus_A:5000..30000)")
    for op in ("<=", ">="):
        if op in text:
            name, value = (p.strip() for p in text.split(op, 1))
            if not _NAME.match(name) or not value:
                raise CryodiagInputError(usage)
            v = _number(value, spec)
            return (name, None, v) if op == "<=" else (name, v, None)
    if ":" in text and ".." in text.split(":", 1)[1]:
        name, rng = (p.strip() for p in text.split(":", 1))
        lo_t, hi_t = (p.strip() for p in rng.split("..", 1))
        if not _NAME.match(name):
            raise CryodiagInputError(usage)
        lo, hi = _number(lo_t, spec), _number(hi_t, spec)
        if lo is None and hi is None:
            raise CryodiagInputError(f"exposure threshold {spec!r}: give a minimum, a maximum or both")
        return name, lo, hi
    raise CryodiagInputError(usage)


@dataclass
class ExposureThresholds:
    """``{statistic: (min, max)}``; None = no cut on that side (module docstring)."""

    bounds: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, specs) -> "ExposureThresholds":
        """From :func:`parse_exposure_threshold` texts; two for one statistic are combined
        (``defocus_A>=5000`` and ``defocus_A<=30000``)."""
        t = cls()
        for s in specs or ():
            name, lo, hi = parse_exposure_threshold(s)
            old_lo, old_hi = t.bounds.get(name, (None, None))
            t.bounds[name] = (lo if lo is not None else old_lo, hi if hi is not None else old_hi)
        return t.check()

    @property
    def active(self) -> bool:
        return any(lo is not None or hi is not None for lo, hi in self.bounds.values())

    def set(self, name: str, lo: float | None = None, hi: float | None = None) -> None:
        """Set one statistic's bounds (both None: no cut); inconsistent ones are refused and the
        old bounds stay."""
        old = self.bounds.get(name)
        self.bounds[name] = (None if lo is None else float(lo), None if hi is None else float(hi))
        bad = self.problems()
        if bad:
            if old is None:
                self.bounds.pop(name)
            else:
                self.bounds[name] = old
            raise CryodiagInputError("inconsistent exposure thresholds: " + "; ".join(bad))
        if lo is None and hi is None:
            self.bounds.pop(name)

    def problems(self) -> list[str]:
        out = []
        for name, (lo, hi) in self.bounds.items():
            for side, v in (("min", lo), ("max", hi)):
                if v is not None and not (isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v)):
                    out.append(f"{name} {side} = {v!r} is not a finite number")
            if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi) and lo > hi:
                out.append(f"{name} min {lo:.4g} is above its max {hi:.4g}: no micrograph could be kept")
        return out

    def check(self, where=None) -> "ExposureThresholds":
        bad = self.problems()
        if bad:
            raise CryodiagInputError("inconsistent exposure thresholds: " + "; ".join(bad), where)
        return self

    def describe(self) -> str:
        parts = []
        for name, (lo, hi) in self.bounds.items():
            if lo is not None and hi is not None:
                parts.append(f"{name} in [{lo:.4g}, {hi:.4g}]")
            elif lo is not None:
                parts.append(f"{name} >= {lo:.4g}")
            elif hi is not None:
                parts.append(f"{name} <= {hi:.4g}")
        return "; ".join(parts) if parts else "no exposure thresholds"

    def to_dict(self) -> dict:
        return {name: {"min": None if lo is None else float(lo), "max": None if hi is None else float(hi)}
                for name, (lo, hi) in self.bounds.items()}

    @classmethod
    def from_dict(cls, d: dict | None) -> "ExposureThresholds":
        t = cls()
        for name, b in (d or {}).items():
            if not isinstance(b, dict):
                raise CryodiagInputError(f"exposure threshold {name!r}: expected {{'min': .., 'max': ..}}")
            t.bounds[str(name)] = (b.get("min"), b.get("max"))
        return t.check()

    def evaluate(self, stats: pd.DataFrame, extra: dict | None = None) -> "ExposureSelection":
        """Keep per row of ``stats`` (:func:`micrograph_statistics`; ``extra``: more columns,
        ``{name: values per row}``, looked up first) and why each dropped row was dropped; a
        threshold on a statistic neither has is refused, naming those there are."""
        self.check()
        extra = extra or {}
        n = len(stats)
        keep = np.ones(n, dtype=bool)
        outside: dict = {}
        not_judged: dict = {}
        for name, (lo, hi) in self.bounds.items():
            if lo is None and hi is None:
                continue
            if name in extra:
                v = np.asarray(extra[name], dtype=np.float64)
            elif name in stats.columns and name != "micrograph":
                v = pd.to_numeric(stats[name], errors="coerce").to_numpy(dtype=np.float64)
            else:
                have = [c for c in stats.columns if c != "micrograph"] + [c for c in extra if c not in stats.columns]
                raise CryodiagInputError(f"no micrograph statistic {name!r} to threshold on (there are: "
                                         f"{', '.join(have)})")
            finite = np.isfinite(v)
            with np.errstate(invalid="ignore"):
                low = (v < lo) if lo is not None else np.zeros(n, bool)
                high = (v > hi) if hi is not None else np.zeros(n, bool)
            keep &= ~(low | high)
            outside[name] = (v, lo, hi, low, high)
            not_judged[name] = int(n - np.count_nonzero(finite))
        return ExposureSelection(names=stats["micrograph"].to_numpy(), keep=keep, outside=outside,
                                 not_judged=not_judged, thresholds=self.describe())


@dataclass
class ExposureSelection:
    """Which micrographs are kept (``keep``, per row of the statistics table) and why the others
    were dropped (``reasons``: one text per micrograph, empty when kept; ``dropped_by``: per
    statistic, the micrographs outside its bounds); ``not_judged``: per statistic, how many
    micrographs have no value for it (kept as far as it goes). The texts are made when asked for
    (a threshold dragged over 10,000 micrographs does not format them)."""

    names: np.ndarray
    keep: np.ndarray
    #: per statistic: (values, min, max, below min, above max)
    outside: dict = field(default_factory=dict)
    not_judged: dict = field(default_factory=dict)
    thresholds: str = ""

    @property
    def dropped_by(self) -> dict:
        return {k: low | high for k, (_v, _lo, _hi, low, high) in self.outside.items()}

    @property
    def reasons(self) -> list:
        if getattr(self, "_reasons", None) is None:
            out = [[] for _ in range(len(self.keep))]
            for name, (v, lo, hi, low, high) in self.outside.items():
                for i in np.flatnonzero(low):
                    out[i].append(f"{name} {v[i]:.4g} < {lo:.4g}")
                for i in np.flatnonzero(high):
                    out[i].append(f"{name} {v[i]:.4g} > {hi:.4g}")
            self._reasons = ["; ".join(r) for r in out]
        return self._reasons

    @property
    def n_kept(self) -> int:
        return int(np.count_nonzero(self.keep))

    @property
    def n_dropped(self) -> int:
        return int(len(self.keep) - self.n_kept)

    def explain(self) -> str:
        if not self.dropped_by:
            return f"all {len(self.keep):,} micrographs kept"
        by = ", ".join(f"{int(np.count_nonzero(m))} by {k}" for k, m in self.dropped_by.items() if np.any(m))
        text = f"{self.n_kept:,} of {len(self.keep):,} micrographs kept ({self.thresholds})"
        if self.n_dropped:
            text += f"; {self.n_dropped:,} dropped: {by}"
        nj = {k: v for k, v in self.not_judged.items() if v}
        if nj:
            text += "; not judged (no value): " + ", ".join(f"{v} on {k}" for k, v in nj.items())
        return text

    def to_dict(self) -> dict:
        drop = np.flatnonzero(~self.keep)
        return {
            "thresholds": self.thresholds, "n_micrographs": int(len(self.keep)), "n_kept": self.n_kept,
            "n_dropped": self.n_dropped,
            "dropped_by": {k: int(np.count_nonzero(m)) for k, m in self.dropped_by.items()},
            "not_judged": {k: int(v) for k, v in self.not_judged.items()},
            "dropped": [{"micrograph": str(self.names[i]), "why": self.reasons[i]} for i in drop],
            "summary": self.explain(),
        }
