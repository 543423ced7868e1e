"""A small training script: fits y = 3x + 2 by gradient descent, in plain Python.

It runs unchanged on Azure ML, under mlboot's local backend, and by hand (``python train.py``):
``mlboot.log_metric`` sends each value to wherever the run is, and files written to
``mlboot.output_dir()`` (``./outputs``) are kept with the run.
"""

# ruff: noqa: T201, INP001  (an example script, not a package: it prints to the run's log)

from __future__ import annotations

import argparse
import json
import random
import time

import mlboot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=0.5)
    args = parser.parse_args()

    rng = random.Random(0)  # noqa: S311  (seeded toy data, not cryptography)
    xs = [rng.uniform(-1.0, 1.0) for _ in range(200)]
    data = [(x, 3.0 * x + 2.0 + rng.gauss(0.0, 0.1)) for x in xs]
    w = b = 0.0
    for epoch in range(args.epochs):
        grad_w = sum(2.0 * (w * x + b - y) * x for x, y in data) / len(data)
        grad_b = sum(2.0 * (w * x + b - y) for x, y in data) / len(data)
        w -= args.learning_rate * grad_w
        b -= args.learning_rate * grad_b
        loss = sum((w * x + b - y) ** 2 for x, y in data) / len(data)
        mlboot.log_metric("loss", loss, step=epoch)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss:.4f}", flush=True)
        time.sleep(0.15)  # real epochs take a while; this one lets you watch the log stream
    mlboot.log_metrics({"w": w, "b": b})

    model = mlboot.output_dir() / "model.json"
    model.write_text(json.dumps({"w": w, "b": b}, indent=2) + "\n", encoding="utf-8")
    print(f"saved the model: w={w:.3f}, b={b:.3f}")


if __name__ == "__main__":
    main()
