"""The CCC's desks (notices, checks, teams, vehicles, its own mail) and what they share of a
hub."""
