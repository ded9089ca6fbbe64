"""The report, as one pipeline reading runs from MLflow (or a table) only: `load` (a study's runs) or
`foreign` (one metric of runs seedvar did not train) -> the one sample shape (seedvar.stats.samples) ->
the tables and sections declared in `registry` (functions in `tables`, `setup`, `maps`, `conditions`,
`twins`, `claims`; words in `sections`, `sentences`, `glance`, `stages`; `figures`), computed by `pipeline`
-> `render`; `report` puts it together. The statistics themselves are seedvar.stats.
"""
