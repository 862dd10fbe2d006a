"""The paper experiments: one script per experiment, their runner and the plumbing they share.

Not part of the installed library (nothing in ``operators``, ``denoisers`` or ``recon`` imports
it): run from the repository root,

* ``python -m demos [NAME ...] [--quick] [--out DIR]``: the runner (:mod:`demos.run`), every
  demo by default, then one summary table (``<out>/summary.md``);
* ``python -m demos.NAME [--quick] [...]``: one demo with all its options (``--help``).

``common.py`` holds what the demos share (arguments, tables, figures, timing, tuning, the
report of the two dynamic demos); each ``<modality>_<method>.py`` holds only its experiment.
"""
