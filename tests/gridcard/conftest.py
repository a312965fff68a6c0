from support.stack import clock, stack, stack_factory

__all__ = ["clock", "stack", "stack_factory"]
