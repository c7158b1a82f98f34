"""VAE Loss Lab helpers: the reusable parts of the notebooks.

Modules (each small, each tested):
config (device, seed, smoke switch, paths), data, losses, models, train, cache,
metrics, plots, widgets. Notebooks import what they need, e.g.
``from vaeutils import losses``.
"""

__version__ = "1.0.0"
