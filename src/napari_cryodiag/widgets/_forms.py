"""magicgui forms built from the option dataclasses of ``compute`` and ``workflows``.

The core declares its options as plain dataclasses; a field's ``metadata`` may carry how it is
shown (no GUI import in the core)::

    lowpass_A: float = field(default=15.0, metadata={"label": "low-pass (Å)", "min": 0.0, "max": 100.0})
    method: Literal["theil-sen", "huber"] = "theil-sen"
    bfactor_A2: float | None = field(default=None, metadata={"none": "fitted", "min": -1000, "max": 1000})

Keys: ``label``, ``tooltip``, ``min``, ``max``, ``step``, ``choices``, ``widget_type`` (magicgui
options), ``none`` (for ``X | None`` numbers: the text shown at the lowest value, which stands for
None), ``special`` (for numbers whose lowest value means something else, e.g. 0 = "auto": the
text shown there), ``hidden`` (not shown; the default is used). Without metadata, the label is the field name
with its unit suffix written out (``lowpass_A`` -> "lowpass (Å)").

:func:`options_form` returns an :class:`OptionsForm`: a magicgui ``Container`` with one value
widget per field (``form.lowpass_A.value``), ``form.value`` the dataclass instance of the current
values, ``form.set_value(obj)`` to fill it, and ``form.changed_value`` emitting the new instance.
One dataclass can be shown in several forms (tabs or sections of a dock): ``include`` names the
fields a form shows (the others keep their defaults), and :meth:`OptionsForm.field_values` gives
the shown fields only, to merge the forms back into one instance.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal, get_args, get_origin

from magicgui.widgets import Container, create_widget
from psygnal import Signal

__all__ = ["show_special", "OptionsForm", "options_form", "unit_label"]

_UNITS = {"_A2": " (Å²)", "_A": " (Å)", "_px": " (px)", "_deg": " (°)", "_rad": " (rad)", "_invA": " (1/Å)",
          "_kV": " (kV)", "_mm": " (mm)", "_um": " (µm)"}
_NONE_SENTINEL_STEPS = 1.0


def unit_label(name: str) -> str:
    """``lowpass_A`` -> ``lowpass (Å)``; ``n_angles`` -> ``n angles``."""
    for suffix, unit in _UNITS.items():
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("_", " ") + unit
    return name.replace("_", " ")


def _unwrap(tp):
    """(base type, allows None, metadata dict from Annotated)."""
    extra: dict = {}
    if get_origin(tp) is typing.Annotated:
        tp, *ann = get_args(tp)
        for a in ann:
            if isinstance(a, dict):
                extra.update(a)
    nullable = False
    if get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", object)):
        args = [a for a in get_args(tp) if a is not type(None)]
        nullable = len(args) < len(get_args(tp))
        tp = args[0] if len(args) == 1 else tp
    return tp, nullable, extra



def show_special(widget, text: str) -> None:
    """Say what a number widget's lowest value means (0 = "auto"): as the spin box's text where Qt
    shows it (QSpinBox, QDoubleSpinBox), else in the label (superqt's large-int spin box, which
    magicgui uses for ints, shows no special text)."""
    from qtpy.QtWidgets import QDoubleSpinBox, QSpinBox

    q = widget.native
    if isinstance(q, (QSpinBox, QDoubleSpinBox)):
        q.setSpecialValueText(text)
    else:
        lo = getattr(widget, "min", 0)
        widget.label = f"{widget.label} ({lo:g} = {text})"

class OptionsForm(Container):
    """A form for one options dataclass (see the module docstring)."""

    changed_value = Signal(object)

    def __init__(self, cls, *, exclude=(), include=None, overrides: dict | None = None, **container_kwargs):
        self._cls = cls
        self._nullable: dict[str, float] = {}  # field -> the sentinel value that stands for None
        self._hidden: dict[str, Any] = {}
        hints = typing.get_type_hints(cls, include_extras=True)
        widgets = []
        overrides = overrides or {}
        include = None if include is None else set(include)
        for f in dataclasses.fields(cls):
            if f.name in exclude or not f.init:
                continue
            if include is not None and f.name not in include:
                if f.default is not dataclasses.MISSING:
                    self._hidden[f.name] = f.default
                elif f.default_factory is not dataclasses.MISSING:
                    self._hidden[f.name] = f.default_factory()
                continue
            tp, nullable, extra = _unwrap(hints.get(f.name, Any))
            md = {**extra, **dict(f.metadata or {}), **overrides.get(f.name, {})}
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            if md.pop("hidden", False):
                self._hidden[f.name] = default
                continue
            label = md.pop("label", unit_label(f.name))
            tooltip = md.pop("tooltip", None)
            none_text = md.pop("none", None)
            special = md.pop("special", None)
            options = dict(md)
            if get_origin(tp) is Literal:
                options.setdefault("choices", list(get_args(tp)))
                annotation = None
                value = default
                w = create_widget(value=value, name=f.name, label=label, options=options,
                                  widget_type=options.pop("widget_type", "ComboBox"))
            elif nullable and tp in (int, float):
                lo = float(options.get("min", 0.0))
                step = float(options.get("step", 1.0 if tp is int else 0.1))
                sentinel = lo - step * _NONE_SENTINEL_STEPS
                options["min"] = sentinel
                options.setdefault("step", step)
                value = sentinel if default is None else default
                w = create_widget(value=value, annotation=tp, name=f.name, label=label, options=options)
                w.native.setSpecialValueText(none_text or "none")
                self._nullable[f.name] = sentinel
            else:
                annotation = tp if tp is not Any else None
                w = create_widget(value=default, annotation=annotation, name=f.name, label=label, options=options)
            if special:
                show_special(w, special)
            if tooltip:
                w.tooltip = tooltip
            widgets.append(w)
        super().__init__(widgets=widgets, **container_kwargs)
        for w in widgets:
            w.changed.connect(self._emit)

    def _emit(self, *_):
        try:
            self.changed_value.emit(self.value)
        except (TypeError, ValueError):
            pass

    def _get(self, name: str):
        w = getattr(self, name)
        v = w.value
        if name in self._nullable and v is not None and v <= self._nullable[name] + 1e-12:
            return None
        return v

    def field_values(self) -> dict:
        """``{field: value}`` of the fields this form shows (None for a number shown as 'none')."""
        return {w.name: self._get(w.name) for w in self}

    @property
    def value(self):
        """The options dataclass of the current values."""
        kw = dict(self._hidden)
        for w in self:
            kw[w.name] = self._get(w.name)
        return self._cls(**kw)

    @value.setter
    def value(self, obj) -> None:
        self.set_value(obj)

    def set_value(self, obj=None, **kwargs) -> None:
        """Fill the form from a dataclass instance and/or field values (None -> the 'none' text)."""
        vals = dataclasses.asdict(obj) if obj is not None else {}
        vals.update(kwargs)
        for name, v in vals.items():
            if name in self._hidden:
                self._hidden[name] = v
                continue
            w = getattr(self, name, None)
            if w is None:
                continue
            if v is None and name in self._nullable:
                v = self._nullable[name]
            w.value = v


def options_form(cls, *, exclude=(), include=None, overrides: dict | None = None,
                 **container_kwargs) -> OptionsForm:
    """An :class:`OptionsForm` for the dataclass ``cls``: the fields of ``include`` (default: all)
    except those in ``exclude`` (the others keep their defaults); ``overrides`` maps field names
    to extra widget options (``label``, ``min``, ``max``, ``tooltip`` …)."""
    return OptionsForm(cls, exclude=exclude, include=include, overrides=overrides, **container_kwargs)
