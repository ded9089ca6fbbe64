"""The engine: train and test one run (`compute`: data, model, training, test passes; pure, no MLflow and
no store) and the launchers that run a job per config (`executors`: this process, worker processes, Ray),
recording nothing. What records lives in the record room; the sweep room (seedvar.sweeper) joins them."""
