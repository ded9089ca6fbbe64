"""The engine: train and test one run (`compute`, pure: no MLflow), the lifecycle around it (`runner`:
claim, resume, checkpoint, record), the sweep, and the executors that run a sweep's runs."""
