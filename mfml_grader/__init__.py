"""Grading engine of the Math Foundations for Machine Learning course (see README.md)."""
