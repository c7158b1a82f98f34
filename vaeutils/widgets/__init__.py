"""Interactive views for the notebooks: thin ipywidgets over pure, tested functions.

One submodule per widget; each line below re-exports one of them. To add a widget, add its
module and one import line here.
"""

from .beta import beta_explorer, live_beta_trainer  # noqa: F401  (notebook 04)
from .free_bits import free_bits_explorer  # noqa: F401  (notebook 05)
from .kl import kl_explorer  # noqa: F401  (notebook 01)
from .recon import recon_explorer  # noqa: F401  (notebook 02)
