"""Failover drills: each kills one part of a data stack under a steady write load, measures
the seconds until writes succeed again and counts acknowledged writes that were lost.

`make failover` runs them against the running local platform; the test suite runs them
against its own (tests/failover). Each drill leaves the platform healthy again.
"""
