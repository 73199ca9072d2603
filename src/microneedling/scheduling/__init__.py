"""Scheduling: courses, phased appointments and the reservations that cannot overlap."""
