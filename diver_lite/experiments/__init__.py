"""Experiments that produce and judge distilled sets (stage 1, students, priors); not needed to recover."""
