"""The GANs on the real MNIST, scored in the feature space of an MNIST classifier trained here.

Every score comes from ``src/sample.py`` (10,000 samples against the 10,000 test images), as a user
would run it; the floor (real train vs test) and ceiling (uniform noise vs test) use the same code.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from runner import ROOT, train

TITLE = "GANs on MNIST (classifier-space FID, confidence, class coverage)"
LOGS = ROOT / "logs" / "results"
ASSETS = ROOT / "assets"
CLASSIFIER = ["model=cnn", "data=mnist", "trainer.max_epochs=3", "logger=csv"]
GANS = [  # experiment, what it is, asset name
    ("seed_gan_mnist", "dense GAN (reference recipe: 5,000 iterations, batch 32)", "gan_mnist.png"),
    (
        "dcgan_mnist",
        "DCGAN (width 32, batch 64, lazy R1, bf16 + channels_last, <= 14 min)",
        "dcgan_mnist.png",
    ),
    (
        "cdcgan_mnist",
        "class-conditional DCGAN (`dcgan_mnist` + `model.conditional=true`)",
        "cdcgan_mnist.png",
    ),
]


def classifier(data_dir: Path) -> tuple[str, float]:
    """The scoring classifier: the reference CNN on 1-channel MNIST, trained once and cached under logs/."""
    run_dir = LOGS / "gan_mnist_classifier"
    metrics_file = run_dir / "metrics.json"
    if metrics_file.exists():
        metrics = json.loads(metrics_file.read_text())
        if metrics.get("status") == "completed" and Path(metrics["best"]["ckpt_path"]).exists():
            return metrics["best"]["ckpt_path"], metrics["test"]["test/acc"]
    metrics = train([*CLASSIFIER, f"paths.data_dir={data_dir}"], run_dir)
    return metrics["best"]["ckpt_path"], metrics["test"]["test/acc"]


def score(ckpt: Path, classifier_ckpt: str, data_dir: Path, run_dir: Path) -> dict:
    overrides = [f"ckpt_path={ckpt}", f"classifier_ckpt={classifier_ckpt}", f"paths.data_dir={data_dir}"]
    return train([*overrides, "per_class=true"], run_dir, script="sample")


def reference_scores(classifier_ckpt: str, data_dir: Path) -> dict[str, dict[str, float]]:
    """FID of real train images (the floor) and of uniform noise (the ceiling) against the test set."""
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    import litlab  # noqa: F401  (torchvision shim first)
    from litlab.metrics.gan_scores import load_classifier, quality_scores

    features, datamodule = load_classifier(classifier_ckpt, data_dir)
    datamodule.setup("fit")  # the floor needs real training images as well as the test set
    test, train_images = datamodule.splits["test"].tensors[0], datamodule.splits["train"].tensors[0]
    noise = torch.randint(0, 256, test.shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return {
        "real train (floor)": quality_scores(features, train_images[: len(test)], test),
        "uniform noise (ceiling)": quality_scores(features, noise, test),
    }


def row(name: str, scores: dict[str, float], extra: str) -> str:
    return f"| {name} | {scores['fid']:.2f} | {scores['confidence']:.3f} | {scores['class_entropy']:.3f} | {extra} |"


def run(data_dir: Path) -> str:
    classifier_ckpt, accuracy = classifier(data_dir)
    lines = [
        f"Scoring classifier: reference CNN on 1-channel MNIST, test accuracy **{100 * accuracy:.2f} %** "
        f"(`python src/train.py {' '.join(CLASSIFIER)}`). FID uses its 128-d penultimate layer; 10,000 "
        "generated images vs the 10,000 test images.",
        "",
        "| images | FID | mean confidence | class entropy | training |",
        "|---|---|---|---|---|",
    ]
    for name, scores in reference_scores(classifier_ckpt, data_dir).items():
        lines.append(row(name, scores, "-"))
    traces = []
    ASSETS.mkdir(exist_ok=True)
    for experiment, what, asset in GANS:
        run_dir = LOGS / experiment
        metrics = train([f"experiment={experiment}", f"paths.data_dir={data_dir}", "logger=csv"], run_dir)
        epochs = sorted((run_dir / "checkpoints").glob("epoch_*.ckpt"))
        trace = [
            score(ckpt, classifier_ckpt, data_dir, run_dir / "scores" / ckpt.stem)["scores"]["fid"]
            for ckpt in epochs
        ]
        final = score(
            run_dir / "checkpoints" / "last.ckpt", classifier_ckpt, data_dir, run_dir / "scores" / "last"
        )
        shutil.copyfile(final["grid"], ASSETS / asset)
        shutil.copyfile(final["per_class_grid"], ASSETS / asset.replace(".png", "_per_class.png"))
        iterations = metrics["global_step"] // 2
        lines.append(
            row(
                f"`{experiment}`: {what}",
                final["scores"],
                f"{iterations} iterations, {metrics['train_time_s']:.0f} s",
            )
        )
        traces.append(
            f"- `{experiment}` FID after each epoch: {' -> '.join(f'{f:.2f}' for f in trace)}; "
            f"grid `assets/{asset}`, per-class grid `assets/{asset.replace('.png', '_per_class.png')}`"
        )
    lines += ["", *traces, ""]
    lines.append(
        "Targets: DCGAN class entropy >= 0.97 and mean confidence >= 0.90, its FID falling over training and "
        "closer to the floor than the dense GAN's; each GAN trained in <= 15 minutes. The conditional DCGAN is "
        "scored on 1,000 samples of each class (its labels), the others on unlabelled samples. Commands: "
        "`python src/train.py experiment=<name> paths.data_dir=<data>`, then "
        "`python src/sample.py ckpt_path=<run>/checkpoints/last.ckpt classifier_ckpt=<classifier> per_class=true`."
    )
    return "\n".join(lines) + "\n"
