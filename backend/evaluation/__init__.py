"""Judging a head from outside: rendered views, re-detected faces, and the metrics and targets."""
