"""daiban: the backend of a WeChat mini-program for village proxy services (帮办代办)."""
