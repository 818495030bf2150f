"""`make results`: rerun the accuracy experiments on the real data and regenerate RESULTS.md."""

from runner import assemble

if __name__ == "__main__":
    assemble(
        "results",
        "RESULTS",
        "Every figure below comes from a real run on the real data set, made by `make results` "
        '(sections: `make results ARGS="--only <section>"`). Test accuracy is on the official test '
        "split, from the best-validation checkpoint.",
    )
