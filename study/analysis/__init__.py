"""The report, as a one-way pipeline reading runs from MLflow only: `load` -> `tables` (with `setup`, `maps`,
and `conditions` for conditions compared on any metric) -> `sentences` and `stages` -> `figures` -> `render`,
put together by `report`; `foreign` and `metric_report` do the same for runs seedvar did not train.
The statistics themselves are seedvar.stats.
"""
