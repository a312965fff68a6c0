"""Regression tests for the defects an outside review found in schemes C and E (issue 6).

Each test is named ``test_review_<n>_...`` after the numbered defect it pins; most failed on
the code as it stood before the hardening. Tests for items that live with their own module
(the audit chain, key rotation, the CLI, the web pages) sit there, under the same names.
"""

from support.stack import clock, stack, stack_factory

__all__ = ["clock", "stack", "stack_factory"]
