"""Interactive views for the notebooks: thin ipywidgets over pure, tested functions.

One submodule per widget; each line below re-exports one of them. To add a widget, add its
module and one import line here.
"""

from .beta import beta_explorer  # noqa: F401  (unit 05, the app)
from .free_bits import free_bits_explorer  # noqa: F401  (unit 07)
from .kl import kl_explorer  # noqa: F401  (unit 01)
from .live import live_beta_trainer  # noqa: F401  (unit 05, the app)
from .recon import recon_explorer  # noqa: F401  (unit 02)
