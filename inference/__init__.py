"""Inference: one prompt builder and truncation rule (``prompts``), one loader of saved model folders
(``loading``), one batched greedy / sampled session generator (``session_generator``), and the engine
of ``hetlm generate`` that predicts every user of an event log (``batch_generation``).

Example:
    >>> from inference.prompts import build_prompt
    >>> callable(build_prompt)
    True
"""
