"""The directory: organisations, locations, rooms, devices, providers and services."""
