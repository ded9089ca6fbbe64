"""The analysis: statistics by topic and the report, reading runs from MLflow only.

Statistics (plain functions on arrays): `spread` (mean, std, bootstrap CIs, per source), `components`
(variance between and within trained models), `flips` (flip rate, churn), `compare` (tests between
models, power). The report is a one-way pipeline: `load` -> `tables` -> `sentences` -> `figures` ->
`render`, put together by `report`.
"""
