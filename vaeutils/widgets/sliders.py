"""ipywidgets' float sliders, refusing NaN: theirs clamp the value into [min, max] by comparing, and
NaN fails every comparison, so a slider set to NaN kept it and each redraw after it failed. Ours
raise :class:`SliderValueError` and keep the old value, so the view stays as it was."""

from __future__ import annotations

import math

import ipywidgets as widgets
from traitlets import TraitError, validate


class SliderValueError(TraitError, ValueError):
    """A slider set to NaN. A ``TraitError``, so traitlets rolls back a value that the browser sent
    (a held change) as well as one set in Python; a ``ValueError`` for everyone else."""


def _finite(slider, value) -> None:
    if isinstance(value, float) and math.isnan(value):
        raise SliderValueError(f"value of the {slider.description!r} slider must be a number, got "
                               f"{value!r}; drag the slider or set a number between its ends (the "
                               "view keeps the old value)")


class FloatSlider(widgets.FloatSlider):
    """``ipywidgets.FloatSlider`` that refuses NaN."""

    @validate("value")
    def _validate_value(self, proposal):
        _finite(self, proposal["value"])
        return super()._validate_value(proposal)


class FloatLogSlider(widgets.FloatLogSlider):
    """``ipywidgets.FloatLogSlider`` that refuses NaN."""

    @validate("value")
    def _validate_value(self, proposal):
        _finite(self, proposal["value"])
        return super()._validate_value(proposal)
