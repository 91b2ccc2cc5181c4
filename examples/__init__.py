"""Runnable examples of using the backbone from outside (each is executed by a test)."""
