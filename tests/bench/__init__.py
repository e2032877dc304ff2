"""`make bench`: the import function measured against hand-written floors, in one run.

Every figure is a ratio against a floor measured in the same run, interleaved, with
medians, so a busy machine slows both sides alike. See __main__.py for the run and
RESULTS.md for the last one.
"""
