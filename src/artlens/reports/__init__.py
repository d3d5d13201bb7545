"""Reports: the seed papers' tables on a collection and the files every evaluation writes.

The top of the library: a report reads from any stage (metrics, features, heads, indexes, search,
copyright, the study) and nothing below reads from it. One module per report or part of one:

- :mod:`~artlens.reports.papers`: ``artlens eval report``, its configuration, stages and ``report.json``;
- :mod:`~artlens.reports.retrieval`, :mod:`~artlens.reports.learned`, :mod:`~artlens.reports.annotation`:
  the rows of its retrieval, AICRS and annotation tables;
- :mod:`~artlens.reports.figures`, :mod:`~artlens.reports.markdown`: its PNG figures and ``report.md``;
- :mod:`~artlens.reports.references`: the figures the papers reported, shown beside ours;
- :mod:`~artlens.reports.hashing`, :mod:`~artlens.reports.copyright`, :mod:`~artlens.reports.study`: the
  report folders of ``artlens eval hashing``, ``artlens eval copyright`` and ``artlens study analyse``.
"""
