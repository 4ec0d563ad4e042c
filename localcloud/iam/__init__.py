"""IAM as other services see it: moto keeps the roles; this package adds AWS's propagation.

IAM is moto's (see `moto_served.py`). What the local cloud adds are the rules of the AWS
timing profile (`localcloud/timing.py`) that Lambda and ECS apply when they are handed a role:
a new role cannot be assumed for a while, and ECS needs its service-linked role first.
"""
