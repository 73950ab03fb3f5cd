"""``specdm benchmark``: does synthetic data help a downstream model? Held-out numbers, paired seeds.

- :mod:`.plan`: what to train: the arms (:class:`~.plan.Arm`, :func:`~.plan.plan_arms`) and the
  command-line lists they come from (:func:`~.plan.parse_synthetic`, :func:`~.plan.parse_amounts`);
- :mod:`.run`: training and scoring every (model, arm, seed), the paired summary, ``benchmark.json``
  (:func:`~.run.benchmark`);
- :mod:`.stats`: paired t-test, minimum detectable effect, Holm's correction on ``{unit: difference}``;
- :mod:`.classical_choice`: the classical recipe chosen on validation rows of the training regions;
- :mod:`.rgb`: ``--rgb-model``: pixel classification on RGB, RGB -> HyperLDM spectra and real spectra
  (:func:`~.rgb.rgb_benchmark`; the pipeline comes in as ``load_model`` from the caller);
- :mod:`.report`: ``report.md``, ``report.html`` and plots from ``benchmark.json`` alone (either experiment).
"""
