"""Serving the store: `seedvar ui` (the MLflow UI on a study's runs) and `seedvar server` (a tracking server
for a team), and the supervision of the process trees they start. Above the record room (it reads the store
and the runs-table view the record writes); nothing below imports it.
"""
