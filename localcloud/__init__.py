"""The local cloud: an AWS look-alike on 127.0.0.1 (moto control plane, real data plane).

Start and stop it with `python -m localcloud up|down`; the course's `helpers.connect("local")`
starts it on demand. Callers outside this package use `localcloud.client` only.
"""
