"""The one place that silences what a litlab run would print but no user can act on.

Each filter below names why nobody can act on its message. ``import litlab`` installs them, so they
hold in every process that runs litlab code: the entry scripts, and the joblib workers of a
multirun, which unpickle litlab's task before composing their job's config. Nothing here imports
Lightning: a filter matches by message, and Lightning's loggers are looked up by name.
"""

from __future__ import annotations

import logging
import os
import warnings

UNACTIONABLE_WARNINGS = {
    # conf/hydra/launcher/{joblib,submitit_*}.yaml set litlab's defaults and are checked against the
    # plugins' schemas of the same name, as intended; Hydra warns that this matching is deprecated.
    "hydra_schema_matching": r"(?s).*is validated against ConfigStore schema",
    # Lightning 2.6's own pytree helper uses the LeafSpec that torch 2.13 deprecates: fixed by a
    # Lightning release, not by anything in a run.
    "leafspec_deprecation": r".*isinstance\(treespec, LeafSpec\)` is deprecated",
    # litlab's data sets are tensors in memory (on the training device, or batched by index): worker
    # processes would only copy them, so num_workers=0 is the fast setting, not a bottleneck.
    "few_dataloader_workers": r"(?s).*does not have many workers",
    # the model summary sizes parameters in fp32 under bf16/16-mixed (auto_precision's choice);
    # the estimate is still the one to read, and the precision is right.
    "summary_precision": r"Precision .* is not supported by the model summary",
}
# Lightning suggests `srun` whenever the command exists; outside a SLURM allocation (a login node,
# a box with SLURM tools installed) a local run is what was meant. Inside one the hint can help.
SRUN_HINT = r"The `srun` command is available on your system but is not used"
# Lightning advertises its cloud logger at every Trainer construction: an advert, not a problem.
LIGHTNING_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
ADVERT_PREFIX = "💡 Tip"


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ADVERT_PREFIX)


_ADVERT_FILTER = _DropAdverts()


def silence_unactionable_warnings() -> None:
    """Idempotent: warnings' filter list drops duplicates, and each logger gets the filter once."""
    for message in UNACTIONABLE_WARNINGS.values():
        warnings.filterwarnings("ignore", message=message)
    if "SLURM_JOB_ID" not in os.environ:
        warnings.filterwarnings("ignore", message=SRUN_HINT)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if _ADVERT_FILTER not in logger.filters:
            logger.addFilter(_ADVERT_FILTER)
