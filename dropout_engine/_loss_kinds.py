"""The engine's loss kinds: the codes of ``de_loss_t`` in the C loop.

A module of their own because both the loss objects (``losses``) and the
target checks (``_validation.targets``, which knows what each loss expects
of ``y``) need them, and neither should import the other.
"""
MSE, MAE, BCE, CCE, SCCE = range(5)
