"""`ragtune train` and `ragtune export`: LoRA adapters from a synthesized dataset, and merged models."""
