"""Sources of extra training data for the downstream models, next to the real windows.

- :mod:`.classical`: flips, rotations, mixup and noise of real batches
  (:func:`~specdm.augment.classical.classical_augment`);
- :mod:`.synthetic`: a synthetic data set read as normalized training arrays
  (:func:`~specdm.augment.synthetic.load_synthetic`).

Both feed the benchmark's arms the same way (see
:mod:`specdm.evaluation.benchmark.run`); ``specdm evaluate`` reads synthetic
sets through the same loader. Imports only :mod:`specdm.output`,
:mod:`specdm.data` and :mod:`specdm.errors`.
"""
