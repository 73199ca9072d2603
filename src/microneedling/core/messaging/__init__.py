"""When messages may go out: quiet hours in the patient's zone, local send times."""

from microneedling.core.messaging.timing import local_moment, outside_quiet_hours

__all__ = ["local_moment", "outside_quiet_hours"]
