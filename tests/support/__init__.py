"""Helpers for the tests that need a separate ML environment (vLLM CPU, torch, transformers)."""
