"""A plain PyTorch loop, logged by plain MLflow, tested by seedvar: an MLP with dropout 0.1 and 0.5 on
scikit-learn's digits, 3 seeds each. Then `seedvar report --experiment own_loop --by dropout`.

    python examples/own_loop/plain.py [--tracking-uri URI] [--experiment NAME]
"""

from __future__ import annotations

import argparse

import mlflow
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import seedvar


def digits() -> tuple[TensorDataset, TensorDataset]:
    """sklearn's 8x8 digits, scaled to [0, 1], one fixed stratified split (the test set is the same for every seed)."""
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    t = lambda a, dt: torch.tensor(a, dtype=dt)  # noqa: E731
    return TensorDataset(t(xtr, torch.float32), t(ytr, torch.long)), TensorDataset(
        t(xte, torch.float32), t(yte, torch.long)
    )


def train_one(seed: int, dropout: float, train: TensorDataset, epochs: int = 15) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(train, batch_size=32, shuffle=True)
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
    return model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db")
    ap.add_argument("--experiment", default="own_loop")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment)
    train, test = digits()
    for dropout in (0.1, 0.5):
        for seed in range(args.seeds):
            with mlflow.start_run(run_name=f"dropout{dropout}-seed{seed}"):
                mlflow.log_params({"dropout": dropout, "seed": seed})
                model = train_one(seed, dropout, train)
                seedvar.log_test_modes(model, DataLoader(test, batch_size=256), passes=10)
    print(
        f"logged {2 * args.seeds} runs to {args.experiment}; now: seedvar report --experiment {args.experiment} --by dropout"
    )


if __name__ == "__main__":
    main()
