"""Training recipes that build on `or_env`, `agents` and `calm` (verl 0.9: SFT and GRPO)."""
