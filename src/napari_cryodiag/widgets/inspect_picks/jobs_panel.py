"""Inspect Picks, Jobs tab: compute NCC and power for the picks, or pick the micrographs.

magicgui: the micrographs (``micrographs``), a denoised layer to score on (``score_on``, none =
the raw micrographs), the templates (``templates``: 2D stacks only; none = a blob), the scoring
form (:class:`~napari_cryodiag.workflows.picks.ScoringOptions`) and the picker form
(:class:`~napari_cryodiag.workflows.picks.PickerOptions`). Jobs run in a worker with progress and
Cancel, one at a time (the buttons are disabled while one runs). Scoring updates the scores of the
pick set (no new layer); the picker makes a new picks layer. Picks added or moved by hand are
scored as soon as they are placed when the micrographs are open and the set has NCC/power.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton

from ...errors import CryodiagInputError
from ...workflows.picks import PickerOptions, ScoringOptions, iter_pick, iter_score
from .._dock import JobControls
from .._forms import options_form
from .._layers import layer_choices, meta, micrograph_choices, pixel_size_A, template_choices
from ..display import raw_data

__all__ = ["JobsPanel"]


class JobsPanel:
    def __init__(self, session, dock):
        self.session = session
        self.dock = dock
        v = dock.viewer
        self.micrographs = ComboBox(label="micrographs", choices=layer_choices(v, micrograph_choices))
        self.score_on = ComboBox(label="score on", choices=layer_choices(v, micrograph_choices), nullable=True,
                                 tooltip="a denoised / low-passed copy of the micrographs (none: the raw micrographs)")
        self.templates = ComboBox(label="templates", choices=layer_choices(v, template_choices), nullable=True,
                                  tooltip="2D class averages (none: a blob of the particle diameter)")
        self.scoring = options_form(ScoringOptions)
        self.picker = options_form(PickerOptions)
        self.score_button = PushButton(text="Compute NCC and power")
        self.pick_shown_button = PushButton(text="Pick shown", tooltip="run the picker on the micrograph shown")
        self.pick_all_button = PushButton(text="Pick all", tooltip="run the picker on every micrograph")
        self.controls = JobControls()
        self.note = Label(value="")
        self.note.native.setWordWrap(True)
        self.inputs = Container(widgets=[self.micrographs, self.score_on, self.templates])
        self.pick_buttons = Container(widgets=[self.pick_shown_button, self.pick_all_button], layout="horizontal",
                                      labels=False)
        dock.track(self.inputs)
        dock.actions(self.score_button, self.pick_shown_button, self.pick_all_button)
        self.score_button.changed.connect(lambda *_: self.compute_scores())
        self.pick_shown_button.changed.connect(lambda *_: self.run_picker(all_micrographs=False))
        self.pick_all_button.changed.connect(lambda *_: self.run_picker(all_micrographs=True))
        session.layer_changed.connect(self._on_layer)
        session.rows_changed.connect(self._on_rows_changed)
        self._scoring_rows = None

    def widgets(self):
        return [self.inputs, Label(value="<b>scores at the picks</b>"), self.scoring, self.score_button,
                Label(value="<b>picker</b>"), self.picker, self.pick_buttons, self.controls, self.note]

    # ------------------------------------------------------------------ defaults
    def _on_layer(self, *_):
        s = self.session
        img = s.micrograph_layer()
        if img is not None and img in list(self.dock.viewer.layers) and meta(img).get("kind") != "placeholder":
            self.micrographs.reset_choices()
            self.micrographs.value = img
        d = s.diameter_A() or (meta(img).get("particle_diameter_A") if img is not None else None)
        if d:  # the data's diameter; otherwise the user enters one (never a guess)
            self.picker.set_value(diameter_A=round(float(d), 1))

    # ------------------------------------------------------------------ inputs
    def _job_inputs(self):
        mic = self.micrographs.value or self.session.micrograph_layer()
        if mic is None or meta(mic).get("kind") == "placeholder":
            raise CryodiagInputError("open the micrographs first (File > Open a folder of MRC files), then choose "
                                     "them under 'micrographs'")
        apix = pixel_size_A(mic) or self.session.pixel_size_A()
        md = meta(mic)
        raw = raw_data(mic)
        score_layer = self.score_on.value
        score = None
        if score_layer is not None and score_layer is not mic:
            score = raw_data(score_layer)
            if np.ndim(raw) == 3 and np.shape(score)[0] != np.shape(raw)[0]:
                raise CryodiagInputError(f"the layer to score on ({score_layer.name}) has {np.shape(score)[0]} "
                                         f"micrographs, the micrographs ({mic.name}) {np.shape(raw)[0]}")
        tl = self.templates.value
        templates = None if tl is None else np.asarray(tl.data, dtype=np.float32)
        return dict(layer=mic, raw=raw, score=score, apix=apix, keys=list(md.get("keys") or []) or None,
                    names=[str(p) for p in (md.get("names") or md.get("paths") or [])] or None,
                    templates=templates, template_apix=None if tl is None else pixel_size_A(tl))

    # ------------------------------------------------------------------ scoring
    def compute_scores(self):
        """(Re)compute NCC and power for every pick of the set; the set's scores are replaced.
        Returns the worker (None when it could not start)."""
        s = self.session
        ps = s.pickset
        if ps is None:
            self.dock.report("choose a picks layer first", "warning")
            return None
        try:
            o = self._job_inputs()
            opts = self.scoring.value
            if opts.diameter_A is None and "diameter_px" not in ps.table.columns:
                raise CryodiagInputError("the picks do not record a particle diameter: enter it "
                                         "(particle diameter, Å) and press Compute again")
        except CryodiagInputError as err:
            self.dock.error(err)
            return None
        table = ps.table
        d_text = f"{opts.diameter_A:g} Å" if opts.diameter_A else "the picks' diameter"

        job = self._score_job(o, table, opts)

        def done(scored):
            if s.pickset is not ps:
                return
            ps.set_scores(scored)
            s.set_pickset(ps)
            info = scored.attrs.get("cryodiag_scoring", {})
            msg = (f"scored {info.get('n_picks', len(scored)):,} picks on {info.get('n_micrographs_scored', '?')} "
                   f"micrographs (diameter {d_text}); {info.get('n_nan', 0):,} without a score (too close to an "
                   f"edge), {info.get('n_unmatched', 0):,} on micrographs that are not open")
            self.note.value = msg
            self.dock.report(msg)

        return self.dock.run(job, on_done=done, controls=self.controls, description="compute scores")

    @staticmethod
    def _score_job(o: dict, table, opts):
        """The scoring job of ``table`` on the job inputs ``o`` (:meth:`_job_inputs`)."""
        def job():
            return (yield from iter_score(o["raw"], table, opts, pixel_size_A=o["apix"], keys=o["keys"],
                                          score_micrographs=o["score"], templates=o["templates"],
                                          template_pixel_size_A=o["template_apix"]))

        return job

    def _on_rows_changed(self, kind, rows):
        """Score picks added or moved by hand (micrographs open, the set has NCC/power)."""
        s = self.session
        ps = s.pickset
        if kind not in ("added", "moved") or ps is None or not {"ncc", "power"} & set(ps.table.columns):
            return
        try:
            o = self._job_inputs()
        except CryodiagInputError:
            return
        opts = self.scoring.value
        d = opts.diameter_A or s.diameter_A()
        if not d:
            return  # no diameter known: the new picks keep NaN scores (they are kept anyway)
        opts = dataclasses.replace(opts, diameter_A=d)
        rows = np.asarray(rows, dtype=np.int64)
        sub = ps.table.iloc[rows].copy()
        sub.attrs = dict(ps.table.attrs)
        from napari.qt.threading import thread_worker

        job = self._score_job(o, sub, opts)

        def done(scored):
            if s.pickset is not ps:
                return
            cols = {c: scored[c].to_numpy() for c in ("ncc", "power") if c in scored.columns}
            ps.update_values(rows, cols)
            s.view_changed.emit()
            s.apply()

        w = thread_worker(job, start_thread=False)()
        w.returned.connect(done)
        w.errored.connect(lambda err: self.dock.report(f"scores of the picks placed by hand: {err}", "warning"))
        w.start()
        self._scoring_rows = w

    # ------------------------------------------------------------------ picker
    def run_picker(self, all_micrographs: bool = True):
        """Pick the shown (or every) micrograph; the picks become a new picks layer. Returns the worker."""
        try:
            o = self._job_inputs()
        except CryodiagInputError as err:
            self.dock.error(err)
            return None
        if not o["apix"]:
            self.dock.error("the micrographs have no pixel size: the picker needs it")
            return None
        mic = o["layer"]
        raw, keys, names, score = o["raw"], o["keys"], o["names"], o["score"]
        n = raw.shape[0] if np.ndim(raw) == 3 else 1
        keys = keys or [f"{mic.name}_{i:05d}" for i in range(n)]
        names = names or keys
        if not all_micrographs and np.ndim(raw) == 3:
            i = int(round((self.dock.viewer.dims.point[-3] - mic.translate[-3]) / mic.scale[-3]))
            i = min(max(i, 0), n - 1)
            raw, keys, names = raw[i:i + 1], keys[i:i + 1], names[i:i + 1]
            score = None if score is None else score[i:i + 1]
        popts, sopts = self.picker.value, self.scoring.value
        ctf = None
        from ...workflows.picks import defocus_per_micrograph

        if self.session.ctf is not None:
            ctf = self.session.ctf.reset_index().rename(columns={"index": "micrograph"})
            if "micrograph" not in ctf.columns:
                ctf = ctf.rename(columns={ctf.columns[0]: "micrograph"})
        elif self.session.pickset is not None and "defocus_A" in self.session.pickset.table.columns:
            ctf = defocus_per_micrograph(self.session.pickset.table).reset_index()

        def job():
            return (yield from iter_pick(raw, popts, sopts, pixel_size_A=o["apix"], keys=keys, names=names,
                                         score_micrographs=score, templates=o["templates"],
                                         template_pixel_size_A=o["template_apix"], ctf=ctf))

        def done(table):
            msg = f"picker: {len(table):,} picks on {table['micrograph'].nunique() if len(table) else 0} micrographs"
            if ctf is None:
                msg += " (no defocus known: open a CTF table to calibrate)"
            self.note.value = msg
            self.dock.report(msg)
            self.dock.add_picks_layer(table, f"picks ({mic.name})")

        return self.dock.run(job, on_done=done, controls=self.controls, description="picker")
