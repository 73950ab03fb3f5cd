"""Sources of extra training data for the downstream models, next to the real windows.

- :mod:`.classical`: classical recipes of real batches by name (:data:`~specdm.augment.classical.RECIPES`):
  flips, rotations, mixup and noise (:func:`~specdm.augment.classical.classical_augment`), radiation and
  same-class mixture noise, class-region copy-paste and CutMix;
- :mod:`.synthetic`: a synthetic data set read as normalized training arrays
  (:func:`~specdm.augment.synthetic.load_synthetic`);
- :mod:`.fidelity`: label fidelity, a random forest of real training pixels scoring synthetic labels;
- :mod:`.cleaning`: its verdicts applied to synthetic samples: pixel-level label cleaning, hard-class targets;
- :mod:`.painting`: class-aware decoding, each class region repainted from real training data of its class.

Both feed the benchmark's arms the same way (see
:mod:`specdm.evaluation.benchmark.run`); ``specdm evaluate`` reads synthetic
sets through the same loader. Imports only :mod:`specdm.output`,
:mod:`specdm.data` and :mod:`specdm.errors`.
"""
