"""Helpers shared by the test files (the machine, brokers, databases, media, configs)."""
