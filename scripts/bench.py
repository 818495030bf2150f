"""`make bench`: throughput and startup benchmarks; regenerates BENCHMARKS.md."""

from runner import assemble

if __name__ == "__main__":
    assemble(
        "bench",
        "BENCHMARKS",
        "Ratios are measured within one run of `make bench`, on the machine named in each section. "
        'Sections: `make bench ARGS="--only <section>"`.',
    )
