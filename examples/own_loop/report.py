"""Train the plain-loop example (3 seeds at dropout 0.1 and 0.5), then print seedvar's answer for it.

python examples/own_loop/report.py [--tracking-uri URI] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys

import seedvar


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracking-uri", default="sqlite:///mlruns/mlflow.db")
    ap.add_argument("--experiment", default="own_loop")
    ap.add_argument("--out", default="reports/own_loop")
    args = ap.parse_args()
    from plain import main as train

    sys.argv = [sys.argv[0], "--tracking-uri", args.tracking_uri, "--experiment", args.experiment]
    train()
    rep = seedvar.report(args.experiment, args.out, by="dropout", tracking_uri=args.tracking_uri)
    print("\n".join(rep.answer))
    print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
