"""Patients and their screenings."""
