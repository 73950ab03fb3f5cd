"""Scoring synthetic data: against the real data (``specdm evaluate``) and through downstream models
(``specdm benchmark``).

- :mod:`.fit`: the one training loop (:func:`~.fit.fit`), paired batch streams, tiled prediction;
- :mod:`.segmentation`, :mod:`.change`, :mod:`.classification`: the task models and their scores;
- :mod:`.tasks`: the model registry (:func:`~.tasks.build_model`, :data:`~.tasks.MODEL_NAMES`, scores per model);
- :mod:`.downstream`: :func:`~.downstream.train_downstream`, a task model on real plus extra data;
- :mod:`.selftrain`: pseudo labels of a trained model, the self-training control;
- :mod:`.features`: feature encoders for FD / KID, trained on the real training split;
- :mod:`.evaluate`: ``specdm evaluate``; :mod:`.benchmark`: ``specdm benchmark`` (plan, run, report);
- :mod:`.records`: JSON records and progress lines shared by both commands.

Imports data, metrics, output and augment; never the models, training, pipelines or recipes.
"""
