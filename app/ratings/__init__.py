"""Ratings (好差评), rectification of bad ratings, appeals, complaints, satisfaction figures."""
