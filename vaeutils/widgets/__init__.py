"""Interactive views for the notebooks: thin ipywidgets over pure, tested functions.

One submodule per widget: ``kl`` (unit 01), ``recon`` (unit 02), ``beta`` and ``live`` (unit 05 and
the app), ``free_bits`` (unit 07). The package exports the function that builds each; to add a
widget, add its module, one import line and its name in ``__all__``.
"""

from .beta import beta_explorer
from .free_bits import free_bits_explorer
from .kl import kl_explorer
from .live import live_beta_trainer
from .recon import recon_explorer

__all__ = ["beta_explorer", "free_bits_explorer", "kl_explorer", "live_beta_trainer",
           "recon_explorer"]
