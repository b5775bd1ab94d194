"""The local platform: every data stack of the mission as a real server process on loopback.

One module per data stack in stacks/ (its programs, config, health, provisioning), started in
order by platform.py over the shared kernel (infra/kernel): `python -m infra.local up|down|status`.
"""
