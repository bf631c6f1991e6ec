"""Scheduled jobs: APScheduler wiring and the jobs themselves."""
