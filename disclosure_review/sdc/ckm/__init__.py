"""The cell key method: perturbation tables (`ptable`) and consistent perturbation of table cells (`cellkey`).

Anchored on the R packages ptable and cellKey (sdcTools); see docs/reference/cell-key-method.md.
"""
