"""The local platform: every data stack of the mission as a real server process on loopback.

config -> render -> supervisor -> provision: `python -m infra.local up|down|status|smoke`.
"""
