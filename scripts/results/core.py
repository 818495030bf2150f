"""The reference results of the teaching material, reproduced on the real CIFAR-10 and MNIST."""

from __future__ import annotations

from pathlib import Path

from runner import ROOT, train

TITLE = "Reference recipes (core)"

EXPERIMENTS = [  # experiment, recipe, reference figure, target test accuracy
    ("seed_mlp_cifar10", "MLP 3072-100-10, CIFAR-10", "49.96 %", 0.4996),
    ("seed_cnn_cifar10", "reference CNN, CIFAR-10", "75.52 %", 0.7552),
    ("keras_cnn_cifar10", "Keras-style CNN, CIFAR-10", "70.65 %", 0.7065),
    ("seed_mlp_mnist", "MLP 784-100-50-10, MNIST", "> 97 %", 0.97),
]


def run(data_dir: Path) -> str:
    rows = [
        "| experiment | recipe | reference | ours (test acc) | met | epochs | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, recipe, reference, target in EXPERIMENTS:
        metrics = train(
            [f"experiment={name}", f"paths.data_dir={data_dir}"], ROOT / "logs" / "results" / name
        )
        acc = metrics["test"]["test/acc"]
        rows.append(
            f"| `{name}` | {recipe} | {reference} | {100 * acc:.2f} % | {'yes' if acc >= target else 'NO'} "
            f"| {metrics['epochs']} | {metrics['wall_time_s']:.0f} s |"
        )
    toy = train(["experiment=seed_perceptron"], ROOT / "logs" / "results" / "seed_perceptron")
    prediction = toy["predictions"][0]
    rows.append(
        f"| `seed_perceptron` | one sigmoid unit, truth table | p([1,0,0]) > 0.99 | p = {prediction:.5f} "
        f"| {'yes' if prediction > 0.99 else 'NO'} | {toy['epochs']} | {toy['wall_time_s']:.0f} s |"
    )
    return (
        "\n".join(rows)
        + "\n\nCommand per row: `python src/train.py experiment=<name> paths.data_dir=<data>`.\n"
    )
