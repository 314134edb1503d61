"""The spec: what to run. Experiment files (:mod:`.experiment`), the one schema of a run
(:mod:`.config`: :class:`~.config.TrainConfig`, checked once and resolved into objects) and
the limits every input is checked against (:mod:`.limits`). Imports nothing else of
``offswitch.experiments``."""
