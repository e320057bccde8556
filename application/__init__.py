"""The application layer: the ``hetlm`` command line, the end-to-end experiment and its resumable
stages, config files and the experiment's report.

Example:
    >>> from application.cli import build_parser
    >>> build_parser().prog
    'hetlm'
"""
