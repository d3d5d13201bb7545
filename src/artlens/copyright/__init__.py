"""Copyright checks against a registry of protected works (the KOLAA system, and better).

- :mod:`~artlens.copyright.registry`: ``CopyrightRegistry``, a collection of works with owners and
  licences plus the detectors trained on it.
- :mod:`~artlens.copyright.cvae`: the paper's convolutional VAE and its two-key search.
- :mod:`~artlens.copyright.robust`: an edit-invariant descriptor (projection head on pooled backbone
  taps, trained contrastively on edited views) with a calibrated threshold.
- :mod:`~artlens.copyright.distractors`: generated distractors whose best score floors the threshold.
- :mod:`~artlens.copyright.general`: the general copy head, built once per machine (``registry general-head``).
- :mod:`~artlens.copyright.code_shortlist`: ``CodeShortlist``, the robust detector's fast mode (ITQ codes
  of the registered descriptors, a Hamming shortlist re-ranked with the float descriptors).
- :mod:`~artlens.copyright.extractors`: ``register_extractors()``, the detectors' inputs (``copy-taps``,
  ``thumb-SIZE``) as feature extractors; opening a registry registers them.
- :mod:`~artlens.copyright.check`: ``CopyrightChecker``, verdicts plus free alternatives.
- :mod:`~artlens.copyright.edits` and :mod:`~artlens.copyright.queries`: the seeded edited-copy generator.
- :mod:`artlens.metrics.copy_detection` (outside the package: pure): µAP, recall at precision, per-transform recall.
- :mod:`~artlens.copyright.evaluate`: ``artlens eval copyright`` (its report folder, ``report.md``,
  ``report.json`` and PNG figures, is written by :mod:`artlens.reports.copyright`).
"""

from artlens.copyright.config import CopyrightConfig, CVAEConfig, RobustConfig

__all__ = ["CopyrightConfig", "CVAEConfig", "RobustConfig"]
