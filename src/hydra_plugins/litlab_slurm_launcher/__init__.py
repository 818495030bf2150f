"""litlab's SLURM launcher for Hydra (``hydra/launcher=submitit_slurm``); see ``slurm_launcher``."""
