"""Evaluation with mteb 2.x: `tasks` defines the tasks, `run` runs them (both import mteb)."""
