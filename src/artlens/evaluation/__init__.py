"""Evaluation: pure metric functions and harnesses that read from every stage."""
