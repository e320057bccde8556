"""Inference: prompts from a user's sessions, loading saved models, batched (sampled) generation, and
the engine of ``hetlm generate`` that predicts every user of an event log.

Example:
    >>> from inference.session_generator import build_prompt
    >>> callable(build_prompt)
    True
"""
