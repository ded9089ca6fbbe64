"""The record: the MLflow store, the recorder of a run's and a sweep's lifecycle, the run schema (every
name a run writes and the report reads), checkpoints and claims beside the store, and the runs-table view
the UI opens (the UI and the server themselves are seedvar.serving's)."""
