"""Identity profiles: the team library (see issue "Team profile library"). Not built yet."""
