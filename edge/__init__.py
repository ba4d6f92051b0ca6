"""Edge emotion-risk appliance: one process per device, only risk levels leave the box."""

__version__ = "0.1.0"
